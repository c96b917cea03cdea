"""RDL diagrams: parsing every node kind, transitions, guards, on-failure; structural validation
with exact problems and lines; generated workflows round-trip; mutations raise only TuneErrors."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import blocks, diagram_xml, mutated
from tune.adl.model import Source
from tune.diagrams.actions import Call, Create, Target
from tune.diagrams.model import DiagramNode, NodeKind
from tune.diagrams.rdl import parse_rdl, to_xml
from tune.diagrams.validate import diagram_problems
from tune.errors import ExpressionError, ParseError, TuneError

EVERY = b"""<?xml version="1.0"?>
<diagram name="overload" on-failure="repair">
  <initial id="i"/>
  <choice id="c"/>
  <action id="a">$arg.VM.migrate $arg2; Probe++ [2]</action>
  <fork id="f"/>
  <action id="b">$arg.restart</action>
  <action id="d">Monitor.log "a;b" $arg</action>
  <join id="j"/>
  <final id="end"/>
  <transition from="i" to="c"/>
  <transition from="c" to="a" guard="$arg.cpu &gt;= 90 and VM.count &lt; 8"/>
  <transition from="c" to="end" guard=" else "/>
  <transition from="a" to="f"/>
  <transition from="f" to="b"/> <transition from="f" to="d"/>
  <transition from="b" to="j"/> <transition from="d" to="j"/>
  <transition from="j" to="end"/>
</diagram>
"""


def test_every_node_kind():
    d = parse_rdl("o.xml", EVERY, name="ignored")
    assert (d.name, d.on_failure, d.file, d.source) == ("overload", "repair", "o.xml", Source("o.xml", 2))
    assert [(n.id, n.kind) for n in d.nodes.values()] == [
        ("i", NodeKind.INITIAL), ("c", NodeKind.CHOICE), ("a", NodeKind.ACTION), ("f", NodeKind.FORK),
        ("b", NodeKind.ACTION), ("d", NodeKind.ACTION), ("j", NodeKind.JOIN), ("end", NodeKind.FINAL)]
    assert [n.source.line for n in d.nodes.values()] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert d.nodes["a"] == DiagramNode("a", NodeKind.ACTION, "$arg.VM.migrate $arg2; Probe++ [2]", [
        Call(Target("arg", via="VM"), "migrate", (parse_var("$arg2"),)), Create("Probe", 2)])
    assert d.nodes["d"].actions[0].args[0].value == "a;b"
    assert d.initial.id == "i" and [n.id for n in d.action_nodes()] == ["a", "b", "d"]
    assert [(t.source, t.target, t.guard_text) for t in d.transitions][:3] == [
        ("i", "c", None), ("c", "a", "$arg.cpu >= 90 and VM.count < 8"), ("c", "end", "else")]
    t = d.transitions[1]
    assert t.guard.kind == "and" and not t.is_else and d.transitions[2].is_else and d.transitions[2].guard is None
    assert [t.origin.line for t in d.transitions] == [11, 12, 13, 14, 15, 15, 16, 16, 17]
    assert [t.target for t in d.outgoing("f")] == ["b", "d"] and [t.source for t in d.incoming("j")] == ["b", "d"]
    assert sorted(d.graph().edges()) == sorted((t.source, t.target) for t in d.transitions)
    assert diagram_problems(d) == []


def parse_var(text):
    from tune.wdl.expr import parse_expression
    return parse_expression(text)


def test_name_defaults_to_the_event():
    d = parse_rdl("s.xml", b'<diagram><initial id="i"/></diagram>', name="start")
    assert d.name == "start" and d.on_failure is None


def test_round_trip_keeps_written_action_text():
    d = parse_rdl("o.xml", EVERY)
    again = parse_rdl("o.xml", to_xml(d).encode())
    assert again == d and again.nodes["a"].text == "$arg.VM.migrate $arg2; Probe++ [2]"


def test_to_xml_writes_canonical_actions_when_the_text_is_stale():
    d = parse_rdl("o.xml", EVERY)
    d.nodes["b"].text = "stale"
    assert parse_rdl("o.xml", to_xml(d).encode()).nodes["b"].text == "$arg.restart"


def test_the_example_diagrams(example_dir):
    for name in ("start", "stop", "overload"):
        d = parse_rdl(os.path.join(example_dir, "diagrams", f"{name}.xml"), name=name)
        assert d.name == name and diagram_problems(d) == []


def _doc(body: str, attrs: str = 'name="d"') -> bytes:
    return f'<?xml version="1.0"?>\n<diagram {attrs}>\n{body}\n</diagram>\n'.encode()


BAD = [
    ('<initial id="a"/>\n<final id="a"/>', 4, ParseError, "duplicate node id 'a'"),
    ('<action>VM.start</action>', 3, ParseError, "needs a valid 'id'"),
    ('<final id="a b"/>', 3, ParseError, "needs a valid 'id'"),
    ('<final id="a&#10;"/>', 3, ParseError, "needs a valid 'id'"),
    ('<final id="$(x)"/>', 3, ParseError, "needs a valid 'id'"),
    ('<final id="%s"/>' % ("a" * 129), 3, ParseError, "needs a valid 'id'"),
    ('<transition from="a"/>', 3, ParseError, "needs 'from' and 'to'"),
    ('<loop id="l"/>', 3, ParseError, "unexpected <loop>"),
    ('<action id="a">\n</action>', 3, ExpressionError, "node a: empty action"),
    ('<action id="a">VM.start;\nrm -rf /</action>', 3, ExpressionError, "node a: cannot read action"),
    ('\n<transition from="a" to="b" guard="x ==="/>', 4, ExpressionError, "in guard"),
    ('<x:final xmlns:x="urn:x" id="e"/>', 3, ParseError, "namespace"),
]


@pytest.mark.parametrize("body,line,cls,fragment", BAD, ids=[b[3] for b in BAD])
def test_bad_diagrams(body, line, cls, fragment):
    with pytest.raises(cls) as info:
        parse_rdl("d.xml", _doc(body))
    assert (info.value.file, info.value.line) == ("d.xml", line) and fragment in info.value.message


@pytest.mark.parametrize("doc,fragment", [
    (b'<workflow/>', "expected <diagram>"), (b'<diagram xmlns="urn:x"/>', "namespace"),
    (b'<diagram name="; rm -rf /"/>', "not a valid name"), (b'<diagram on-failure="$(x)"/>', "not a valid name"),
    (b'<diagram name="%s"/>' % (b"d" * 65), "not a valid name"), (b"<diagram>", "malformed XML")])
def test_bad_roots(doc, fragment):
    with pytest.raises(ParseError) as info:
        parse_rdl("d.xml", doc)
    assert (info.value.file, info.value.line) == ("d.xml", 1) and fragment in info.value.message


# --- structural validation --------------------------------------------------------------------
def problems(body: str):
    d = parse_rdl("d.xml", _doc(body))
    return [(p.line, p.message.removeprefix("diagram d: ")) for p in diagram_problems(d)]


OK_HEAD = '<initial id="i"/>\n<final id="e"/>\n'  # lines 3 and 4


def test_valid_linear_diagram_has_no_problem():
    assert problems(OK_HEAD + '<transition from="i" to="e"/>') == []


def test_no_initial_and_two_initials():
    assert problems('<final id="e"/>') == [(2, "needs exactly one initial node, has 0")]
    assert problems('<initial id="a"/>\n<initial id="b"/>\n<final id="e"/>\n'
                    '<transition from="a" to="e"/>\n<transition from="b" to="e"/>') == [
        (2, "needs exactly one initial node, has 2")]


def test_no_final():
    assert problems('<initial id="i"/>\n<action id="a">X.y</action>\n<transition from="i" to="a"/>\n'
                    '<transition from="a" to="a"/>') == [
        (2, "has no final node"), (4, "has a cycle that does not pass through a choice")]


def test_unreachable_node():
    assert problems(OK_HEAD + '<action id="lost">X.y</action>\n<transition from="i" to="e"/>\n'
                    '<transition from="lost" to="e"/>') == [(5, "node lost is unreachable from the initial node")]


def test_node_that_never_reaches_a_final():
    assert problems(OK_HEAD + '<fork id="f"/>\n<action id="a">X.y</action>\n<join id="j"/>\n'
                    '<transition from="i" to="f"/>\n<transition from="f" to="e"/>\n'
                    '<transition from="f" to="a"/>\n<transition from="a" to="j"/>') == [
        (7, "join j needs exactly one outgoing transition"),
        (6, "node a never reaches a final node (a branch that cannot end)"),
        (7, "node j never reaches a final node (a branch that cannot end)")]


@pytest.mark.parametrize("body,expected", [
    ('<transition from="i" to="e"/>\n<transition from="e" to="i"/>',
     [(3, "initial node i needs no incoming and exactly one outgoing transition"),
      (4, "final node e cannot have outgoing transitions"),
      (3, "has a cycle that does not pass through a choice")]),
    ('<action id="a">X.y</action>\n<transition from="i" to="a"/>\n<transition from="a" to="e"/>\n'
     '<transition from="a" to="e"/>',
     [(5, "action a needs exactly one outgoing transition (has 2); use a fork or a choice")]),
    ('<fork id="f"/>\n<transition from="i" to="f"/>',
     [(5, "fork f has no branch"), (4, "node e is unreachable from the initial node"),
      (3, "node i never reaches a final node (a branch that cannot end)"),
      (5, "node f never reaches a final node (a branch that cannot end)")]),
    ('<choice id="c"/>\n<transition from="i" to="c"/>',
     [(5, "choice c has no outgoing transition"), (4, "node e is unreachable from the initial node"),
      (3, "node i never reaches a final node (a branch that cannot end)"),
      (5, "node c never reaches a final node (a branch that cannot end)")]),
])
def test_degrees(body, expected):
    assert problems(OK_HEAD + body) == expected


def test_guards_only_after_a_choice_and_at_most_one_else():
    assert problems(OK_HEAD + '<transition from="i" to="e" guard="true"/>') == [
        (5, "guard on i->e is only allowed after a choice")]
    assert problems(OK_HEAD + '<choice id="c"/>\n<transition from="i" to="c"/>\n'
                    '<transition from="c" to="e" guard="else"/>\n<transition from="c" to="e" guard="else"/>\n'
                    '<transition from="c" to="e"/>') == [
        (5, "choice c has 2 'else' transitions"),
        (9, "transition c->e after choice needs a guard (or 'else')")]


def test_cycles_only_through_a_choice():
    loop = ('<choice id="c"/>\n<action id="a">X.y</action>\n<transition from="i" to="c"/>\n'
            '<transition from="c" to="a" guard="X.count &lt; 3"/>\n<transition from="a" to="c"/>\n'
            '<transition from="c" to="e" guard="else"/>')
    assert problems(OK_HEAD + loop) == []
    bad = ('<action id="a">X.y</action>\n<action id="b">X.z</action>\n<transition from="i" to="a"/>\n'
           '<transition from="a" to="b"/>\n<transition from="b" to="a"/>')
    assert problems(OK_HEAD + bad) == [
        (4, "node e is unreachable from the initial node"),
        (3, "node i never reaches a final node (a branch that cannot end)"),
        (5, "node a never reaches a final node (a branch that cannot end)"),
        (6, "node b never reaches a final node (a branch that cannot end)"),
        (5, "has a cycle that does not pass through a choice")]


def test_dangling_transition():
    assert problems(OK_HEAD + '<transition from="i" to="e"/>\n<transition from="e" to="ghost"/>') == [
        (6, "transition refers to unknown node 'ghost'"), (4, "final node e cannot have outgoing transitions")]


@settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(blocks(), st.booleans())
def test_generated_workflows_round_trip_and_validate(block, failure):
    text, expected = diagram_xml(block, on_failure="repair" if failure else None)
    d = parse_rdl("g.xml", text.encode())
    assert {nid: n.actions for nid, n in d.nodes.items() if n.kind is NodeKind.ACTION} == expected
    assert diagram_problems(d) == []
    again = parse_rdl("g.xml", to_xml(d).encode())
    assert again == d
    assert [t.guard for t in again.transitions] == [t.guard for t in d.transitions]


@settings(max_examples=150, deadline=2000)
@given(st.data())
def test_mutations_only_raise_tune_errors(data):
    try:
        d = parse_rdl("m.xml", data.draw(mutated(EVERY)))
    except TuneError as exc:
        assert exc.file == "m.xml"
        return
    for p in diagram_problems(d):
        assert p.file == "m.xml"
