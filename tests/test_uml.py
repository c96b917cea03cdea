"""The UML (Papyrus / Eclipse UML2 XMI) form of an application: tune.adl.uml."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import Counter

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tune.adl.cdl import parse_cdl
from tune.adl.graph import graph_signature
from tune.adl.model import (
    ALLOCATIONS,
    NAME_RE,
    PROTOCOLS,
    Application,
    Binding,
    ComponentType,
    DiagramRef,
    Family,
    Multiplicity,
)
from tune.adl.uml import parse_uml, to_uml
from tune.diagrams import diagram_problems, parse_rdl
from tune.diagrams.model import Diagram, DiagramNode, NodeKind
from tune.diagrams.rdl import make_action_node, make_transition
from tune.errors import ExpressionError, ParseError, TuneError, ValidationError, XMLSecurityError

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "xen_attitune")
UML_EXAMPLE = os.path.join(EXAMPLE, "xen_attitune.uml")
DATA = os.path.join(HERE, "data", "uml")

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<uml:Model xmi:version="20131001" xmlns:xmi="http://www.omg.org/spec/XMI/20131001" '
        'xmlns:uml="http://www.eclipse.org/uml2/5.0.0/UML" xmi:id="_model" name="t">\n')
TAIL = "</uml:Model>\n"


def uml(body: str, head: str = HEAD) -> Application:
    return parse_uml("t.uml", (head + body + TAIL).encode())


def fails(body: str, exc=ParseError, match: str = "", head: str = HEAD) -> TuneError:
    with pytest.raises(exc, match=match or None) as info:
        uml(body, head)
    err = info.value
    assert err.file == "t.uml"
    assert isinstance(err.line, int) and err.line >= 1
    return err


def cls(xid: str, name: str, attrs: str = "") -> str:
    return f'<packagedElement xmi:type="uml:Class" xmi:id="{xid}" name="{name}">{attrs}</packagedElement>\n'


def prop(name: str, literal: str | None, value: str | None = None, xid: str | None = None) -> str:
    xid = xid or f"p_{name}"
    if literal is None:
        return f'<ownedAttribute xmi:id="{xid}" name="{name}"/>'
    v = "" if value is None else f' value="{value}"'
    return (f'<ownedAttribute xmi:id="{xid}" name="{name}"><defaultValue xmi:type="uml:{literal}" '
            f'xmi:id="{xid}_v"{v}/></ownedAttribute>')


_ids = itertools.count()


def bounds(lower: str | None, upper: str | None) -> str:
    out = ""
    if lower is not None:
        out += f'<lowerValue xmi:type="uml:LiteralInteger" xmi:id="lo{next(_ids)}"' + (
            f' value="{lower}"/>' if lower != "" else "/>")
    if upper is not None:
        out += f'<upperValue xmi:type="uml:LiteralUnlimitedNatural" xmi:id="up{next(_ids)}"' + (
            f' value="{upper}"/>' if upper != "" else "/>")
    return out


def assoc(a_mult: str = "", b_mult: str = "", member_end: str = 'memberEnd="ea eb"', nav: str = "") -> str:
    """Undirected association A (end ea) — B (end eb), both ends owned by the association."""
    return (cls("A", "A") + cls("B", "B") +
            f'<packagedElement xmi:type="uml:Association" xmi:id="as" {member_end} {nav}>'
            f'<ownedEnd xmi:id="ea" type="A" association="as">{a_mult}</ownedEnd>'
            f'<ownedEnd xmi:id="eb" type="B" association="as">{b_mult}</ownedEnd></packagedElement>\n')


def sm(name: str, region: str, extra: str = "") -> str:
    return (f'<packagedElement xmi:type="uml:StateMachine" xmi:id="sm_{name}" name="{name}">{extra}'
            f'<region xmi:id="r_{name}">{region}</region></packagedElement>\n')


def pseudo(xid: str, kind: str = "", name: str = "") -> str:
    k = f' kind="{kind}"' if kind else ""
    n = f' name="{name}"' if name else ""
    return f'<subvertex xmi:type="uml:Pseudostate" xmi:id="{xid}"{n}{k}/>'


def state(xid: str, name: str = "", entry: str | None = None, inner: str = "") -> str:
    n = f' name="{name}"' if name else ""
    e = (f'<entry xmi:type="uml:OpaqueBehavior" xmi:id="{xid}_e"><language>TUNe</language>'
         f'<body>{entry}</body></entry>') if entry is not None else ""
    return f'<subvertex xmi:type="uml:State" xmi:id="{xid}"{n}>{e}{inner}</subvertex>'


def final(xid: str, name: str = "") -> str:
    n = f' name="{name}"' if name else ""
    return f'<subvertex xmi:type="uml:FinalState" xmi:id="{xid}"{n}/>'


def tr(xid: str, s: str, t: str, guard: str | None = None) -> str:
    if guard is None:
        return f'<transition xmi:id="{xid}" source="{s}" target="{t}"/>'
    return (f'<transition xmi:id="{xid}" guard="{xid}_g" source="{s}" target="{t}">'
            f'<ownedRule xmi:id="{xid}_g" name="guard"><specification xmi:type="uml:OpaqueExpression" '
            f'xmi:id="{xid}_s"><language>TUNe</language><body>{guard}</body></specification></ownedRule>'
            f'</transition>')


def shape(d: Diagram) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for n in d.nodes.values():
        g.add_node(n.id, kind=n.kind.value, text=n.text)
    for t in d.transitions:
        g.add_edge(t.source, t.target, guard=t.guard_text)
    return g


def same_shape(a: Diagram, b: Diagram) -> bool:
    return nx.is_isomorphic(shape(a), shape(b), node_match=lambda x, y: x == y,
                            edge_match=lambda x, y: sorted(v["guard"] or "" for v in x.values())
                            == sorted(v["guard"] or "" for v in y.values()))


def normalised(app: Application) -> Application:
    """Drop what depends on the file the application was read from."""
    app = dataclasses.replace(app, path=None)
    app.diagram_graphs = {k: dataclasses.replace(d, file=None) for k, d in app.diagram_graphs.items()}
    return app


# --- the example ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def example() -> Application:
    return parse_uml(UML_EXAMPLE)


@pytest.fixture(scope="module")
def native() -> Application:
    return parse_cdl(os.path.join(EXAMPLE, "app.xml"))


def test_example_is_the_native_application(example, native):
    assert graph_signature(example) == graph_signature(native)
    assert example.name == native.name
    assert example.families == native.families
    assert example.components == native.components
    assert example.bindings == native.bindings == [Binding("Probe", "VM", Multiplicity(1, 1), Multiplicity(1, 1))]
    assert example.components["VM"].wrapper == "wrappers/vm.wdl"
    assert example.resolve(example.components["Probe"].legacy_file) == os.path.join(EXAMPLE, "probe.tar.gz")
    assert os.path.exists(example.resolve(example.components["VM"].wrapper))
    assert sorted(example.diagrams) == sorted(native.diagrams) == ["consolidate", "overload", "start", "stop"]
    assert all(ref.file is None and ref.event == ev for ev, ref in example.diagrams.items())


@pytest.mark.parametrize("event", ["start", "stop", "overload"])
def test_example_diagrams_match_the_native_ones(example, native, event):
    ours = example.diagram_graphs[event]
    theirs = parse_rdl(native.resolve(native.diagrams[event].file))
    assert diagram_problems(ours) == []
    assert Counter((n.kind, n.text) for n in ours.nodes.values()) == \
        Counter((n.kind, n.text) for n in theirs.nodes.values())
    assert Counter(t.guard_text for t in ours.transitions) == Counter(t.guard_text for t in theirs.transitions)
    assert same_shape(ours, theirs)
    assert all(n.source.file == UML_EXAMPLE and n.source.line for n in ours.nodes.values())


def test_example_loads_and_validates_like_the_native_one():
    """The whole chain (loader: nodefiles, wrappers, validation) accepts the UML example."""
    from tune.adl.loader import load_application
    uml_app = load_application(UML_EXAMPLE)
    xml_app = load_application(os.path.join(EXAMPLE, "app.xml"))
    assert graph_signature(uml_app) == graph_signature(xml_app)
    assert uml_app.families["dom0"].nodes == xml_app.families["dom0"].nodes
    assert sorted(uml_app.wrappers) == sorted(xml_app.wrappers)


def test_example_start_is_a_composite_state_turned_fork_join(example):
    d = example.diagram_graphs["start"]
    fork, join = d.nodes["start.fork"], d.nodes["start.join"]
    assert (fork.kind, join.kind) == (NodeKind.FORK, NodeKind.JOIN)
    assert sorted(t.target for t in d.outgoing("start.fork")) == ["probes", "vms"]
    assert sorted(t.source for t in d.incoming("start.join")) == ["probes", "vms"]
    assert [t.target for t in d.outgoing("i")] == ["start.fork"]
    # after the join the consolidator starts, then the diagram ends
    assert [t.target for t in d.outgoing("start.join")] == ["consolidator"]
    assert [t.target for t in d.outgoing("consolidator")] == ["end"]


def test_example_round_trips_through_to_uml(example):
    text = to_uml(example)
    assert 'xmlns:uml="http://www.eclipse.org/uml2/5.0.0/UML"' in text and 'xmi:version="20131001"' in text
    again = parse_uml("again.uml", text.encode())
    assert normalised(again) == normalised(example)
    assert graph_signature(again) == graph_signature(example)
    for ev, d in example.diagram_graphs.items():
        assert same_shape(again.diagram_graphs[ev], d)


def test_native_application_written_as_uml(native, tmp_path):
    """to_uml reads diagrams only referenced by file; the result parses back to the same graph."""
    out = tmp_path / "app.uml"
    out.write_text(to_uml(native), encoding="utf-8")
    back = parse_uml(str(out))
    assert graph_signature(back) == graph_signature(native)
    for ev, ref in native.diagrams.items():
        assert same_shape(back.diagram_graphs[ev], parse_rdl(native.resolve(ref.file)))


@pytest.mark.parametrize("uml_ns,xmi_ns,version", [
    ("http://www.eclipse.org/uml2/4.0.0/UML", "http://www.omg.org/spec/XMI/20131001", "20131001"),
    ("http://www.eclipse.org/uml2/4.0.0/UML", "http://www.omg.org/XMI", "2.0"),
    ("http://www.eclipse.org/uml2/3.0.0/UML", "http://www.omg.org/XMI", "2.0"),
    ("http://www.eclipse.org/uml2/2.1.0/UML", "http://schema.omg.org/spec/XMI/2.1", "2.1"),
    ("http://www.eclipse.org/uml2/5.0.0/UML", "http://www.omg.org/XMI", "2.0"),
])
def test_older_namespaces(example, uml_ns, xmi_ns, version):
    with open(UML_EXAMPLE, encoding="utf-8") as fh:
        text = fh.read()
    text = (text.replace("http://www.eclipse.org/uml2/5.0.0/UML", uml_ns)
            .replace("http://www.omg.org/spec/XMI/20131001", xmi_ns)
            .replace('xmi:version="20131001"', f'xmi:version="{version}"'))
    app = parse_uml("old.uml", text.encode())
    assert graph_signature(app) == graph_signature(example)
    assert normalised(app) == normalised(example)


def test_xmi_wrapped_uml21_with_profile_and_child_references():
    app = parse_uml(os.path.join(DATA, "wrapped_uml21.uml"))
    assert app.name == "web"
    assert app.families == {"cluster": Family("cluster", user="root", protocol="ssh", port=2222,
                                              attributes={"rack": "B12"})}
    assert app.components["Apache"] == ComponentType("Apache", host_family="cluster", initial=2,
                                                     attributes={"port": "0"})
    assert app.components["Tomcat"] == ComponentType("Tomcat", host_family="cluster", initial=4)
    # no navigable end: the first memberEnd (Apache) is `from`; 1..4 written at the Tomcat end
    assert app.bindings == [Binding("Apache", "Tomcat", Multiplicity(0, None), Multiplicity(1, 4))]
    d = app.diagram_graphs["repair"]
    assert d.on_failure == "panic"
    assert [(n.id, n.kind.value, n.text) for n in d.nodes.values()] == [
        ("i", "initial", ""), ("Tomcat.restart", "action", "Tomcat.restart"), ("f", "final", "")]
    assert diagram_problems(d) == []


# --- small exact cases ---------------------------------------------------------------------
def test_default_values_of_each_literal_type():
    app = uml(cls("c", "C", "".join([
        prop("s", "LiteralString", "hello"), prop("s0", "LiteralString"),
        prop("i", "LiteralInteger", "-7"), prop("i0", "LiteralInteger"),
        prop("b", "LiteralBoolean", "true"), prop("b0", "LiteralBoolean"),
        prop("u", "LiteralUnlimitedNatural", "*"), prop("u3", "LiteralUnlimitedNatural", "3"),
        prop("u0", "LiteralUnlimitedNatural"),
        prop("r", "LiteralReal", "2.5"), prop("r0", "LiteralReal"),
        prop("n", "LiteralNull"), prop("none", None),
        ('<ownedAttribute xmi:id="p_o" name="o"><defaultValue xmi:type="uml:OpaqueExpression" xmi:id="p_ov">'
         '<language>OCL</language><body> 6 * 7 </body></defaultValue></ownedAttribute>'),
        ('<ownedAttribute xmi:id="p_pw" name="pw"><eAnnotations xmi:id="p_pwa" source="tune">'
         '<details xmi:id="p_pwd" key="secret" value="true"/></eAnnotations>'
         '<defaultValue xmi:type="uml:LiteralString" xmi:id="p_pwv" value="hunter2"/></ownedAttribute>'),
    ])))
    c = app.components["C"]
    assert c.attributes == {"s": "hello", "s0": "", "i": "-7", "i0": "0", "b": "true", "b0": "false",
                            "u": "-1", "u3": "3", "u0": "0", "r": "2.5", "r0": "0.0", "n": "", "none": "",
                            "o": "6 * 7", "pw": "hunter2"}
    assert c.secret == frozenset({"pw"})
    assert (c.wrapper, c.legacy_file, c.host_family, c.initial) == (None, None, None, 1)


def test_reserved_component_attributes():
    app = uml(cls("c", "Web", prop("wrapper", "LiteralString", "w/web.wdl") + prop("legacyFile", "LiteralString")
                  + prop("host-family", "LiteralString", "front") + prop("initial", "LiteralInteger", "5")
                  + prop("port", "LiteralInteger", "80")))
    assert app.components["Web"] == ComponentType("Web", wrapper="w/web.wdl", legacy_file=None,
                                                  host_family="front", initial=5, attributes={"port": "80"})


@pytest.mark.parametrize("a,b,from_m,to_m", [
    ("", "", "1", "1"),                                  # missing lowerValue/upperValue = 1
    (bounds("0", "1"), bounds("1", "4"), "0..1", "1..4"),
    (bounds("0", "*"), bounds("2", "*"), "*", "2..*"),
    (bounds("", "*"), bounds(None, "3"), "*", "1..3"),  # LiteralInteger without value = 0
    (bounds("3", None), bounds("1", "1"), "3", "1"),     # missing upper = 1 ... with lower 3 is refused below
])
def test_multiplicities(a, b, from_m, to_m):
    if from_m == "3":
        fails(assoc(a, b), match="impossible multiplicity")
        return
    app = uml(assoc(a, b))
    assert app.bindings == [Binding("A", "B", Multiplicity.parse(from_m), Multiplicity.parse(to_m))]


def test_from_is_the_first_member_end_without_navigability():
    app = uml(assoc(bounds("1", "1"), bounds("0", "*"), member_end='memberEnd="eb ea"'))
    assert app.bindings == [Binding("B", "A", Multiplicity.parse("*"), Multiplicity.parse("1"))]


def test_navigable_owned_end_is_to_whatever_the_order():
    app = uml(assoc(bounds("1", "1"), bounds("0", "*"), member_end='memberEnd="eb ea"',
                    nav='navigableOwnedEnd="eb"'))
    assert app.bindings == [Binding("A", "B", Multiplicity.parse("1"), Multiplicity.parse("*"))]


def test_class_owned_end_is_navigable_papyrus_directed_association():
    body = (cls("A", "Front", f'<ownedAttribute xmi:id="ab" name="back" type="B" association="as">'
                f'{bounds("1", "4")}</ownedAttribute>' + prop("colour", "LiteralString", "red"))
            + cls("B", "Back")
            + '<packagedElement xmi:type="uml:Association" xmi:id="as" memberEnd="ab ba">'
              '<ownedEnd xmi:id="ba" name="front" type="A" association="as">'
            + bounds("0", "1") + "</ownedEnd></packagedElement>")
    app = uml(body)
    assert app.bindings == [Binding("Front", "Back", Multiplicity.parse("0..1"), Multiplicity.parse("1..4"))]
    assert app.components["Front"].attributes == {"colour": "red"}  # the end is not a free attribute


def test_member_ends_as_children_and_no_member_end_at_all():
    a = uml(assoc("", bounds("0", "1"), member_end="").replace(
        '<ownedEnd xmi:id="ea"', '<memberEnd xmi:idref="ea"/><memberEnd xmi:idref="eb"/><ownedEnd xmi:id="ea"')
        .replace("</uml:Model>", ""))
    b = uml(assoc("", bounds("0", "1"), member_end=""))
    assert a.bindings == b.bindings == [Binding("A", "B", Multiplicity(1, 1), Multiplicity(0, 1))]


def test_families_in_nested_grid_package():
    body = ('<packagedElement xmi:type="uml:Package" xmi:id="g" name="grid">'
            + cls("f", "lab", prop("protocol", "LiteralString", "ssh") + prop("nodefile", "LiteralString", "hosts")
                  + prop("key", "LiteralString", "~/.ssh/id") + prop("allocation", "LiteralString", "spread")
                  + prop("python", "LiteralString", "python3") + prop("gpu", "LiteralBoolean", "true"))
            + "</packagedElement>" + cls("c", "Worker", prop("host-family", "LiteralString", "lab")))
    app = uml(body)
    assert app.families == {"lab": Family("lab", nodefile="hosts", protocol="ssh", key="~/.ssh/id",
                                          allocation="spread", python="python3", attributes={"gpu": "true"})}
    assert list(app.components) == ["Worker"]


def test_state_names_are_ids_and_actions_when_there_is_no_entry():
    region = (pseudo("i1") + state("s1", "VM.start") + state("s2", "go", "$arg.migrate $arg2")
              + state("s3", "Probe.stop") + state("s4", "Probe.stop") + final("e1")
              + tr("t1", "i1", "s1") + tr("t2", "s1", "s2") + tr("t3", "s2", "s3") + tr("t4", "s3", "s4")
              + tr("t5", "s4", "e1"))
    d = uml(sm("go", region)).diagram_graphs["go"]
    # duplicate names fall back to xmi:ids; a nameless pseudostate too
    assert [(n.id, n.kind.value, n.text) for n in d.nodes.values()] == [
        ("i1", "initial", ""), ("VM.start", "action", "VM.start"), ("go", "action", "$arg.migrate $arg2"),
        ("s3", "action", "Probe.stop"), ("s4", "action", "Probe.stop"), ("e1", "final", "")]
    assert diagram_problems(d) == []


def test_junction_merge_and_choice_guards_and_on_failure():
    region = (pseudo("i") + pseudo("c", "choice", "hot") + state("m", "VM.migrate") + state("l", "VM.log")
              + pseudo("j", "junction", "merge") + final("e")
              + tr("t1", "i", "c") + tr("t2", "c", "m", "$arg.cpu &gt;= 90") + tr("t3", "c", "l", "else")
              + tr("t4", "m", "j") + tr("t5", "l", "j") + tr("t6", "j", "e"))
    extra = prop("on-failure", "LiteralString", "undo")
    d = uml(sm("heat", region, extra)).diagram_graphs["heat"]
    assert d.on_failure == "undo"
    assert d.nodes["merge"].kind is NodeKind.CHOICE
    assert [(t.source, t.target, t.guard_text) for t in d.transitions] == [
        ("i", "hot", None), ("hot", "VM.migrate", "$arg.cpu >= 90"), ("hot", "VM.log", "else"),
        ("VM.migrate", "merge", None), ("VM.log", "merge", None), ("merge", "e", "else")]
    assert d.transitions[1].guard is not None
    assert diagram_problems(d) == []


def test_guard_forms_child_constraint_and_literal_string():
    region = (pseudo("i") + pseudo("c", "choice") + state("a", "VM.a") + final("e")
              + tr("t1", "i", "c")
              + '<transition xmi:id="t2" source="c" target="a"><guard xmi:type="uml:Constraint" xmi:id="g2">'
                '<specification xmi:type="uml:LiteralString" xmi:id="g2s" value="VM.count &lt; 3"/></guard>'
                '</transition>'
              + '<transition xmi:id="t3" source="c" target="e"><guard xmi:idref="g3"/>'
                '<ownedRule xmi:id="g3"><specification xmi:type="uml:OpaqueExpression" xmi:id="g3s" '
                'body="else"/></ownedRule></transition>'
              + tr("t4", "a", "e"))
    d = uml(sm("g", region)).diagram_graphs["g"]
    assert [t.guard_text for t in d.transitions] == [None, "VM.count < 3", "else", None]
    assert diagram_problems(d) == []


def test_nested_composite_states_with_entry():
    inner = ('<region xmi:id="ra">' + pseudo("ai") + state("a1", "VM.start") + final("af")
             + tr("ta1", "ai", "a1") + tr("ta2", "a1", "af") + "</region>"
             + '<region xmi:id="rb">' + pseudo("bi")
             + state("deep", "deep", None, '<region xmi:id="rd">' + pseudo("di") + state("d1", "X.one")
                     + final("df") + tr("td1", "di", "d1") + tr("td2", "d1", "df") + "</region>"
                     '<region xmi:id="re">' + pseudo("ei") + state("e1", "X.two") + final("ef")
                     + tr("te1", "ei", "e1") + tr("te2", "e1", "ef") + "</region>")
             + final("bf") + tr("tb1", "bi", "deep") + tr("tb2", "deep", "bf") + "</region>")
    region = (pseudo("i") + state("par", "par", "Log.open", inner) + final("end")
              + tr("t1", "i", "par") + tr("t2", "par", "end"))
    d = uml(sm("nest", region)).diagram_graphs["nest"]
    assert diagram_problems(d) == []
    kinds = Counter(n.kind for n in d.nodes.values())
    assert kinds == Counter({NodeKind.FORK: 2, NodeKind.JOIN: 2, NodeKind.ACTION: 4, NodeKind.INITIAL: 1,
                             NodeKind.FINAL: 1})
    edges = {(t.source, t.target) for t in d.transitions}
    assert {("i", "par"), ("par", "par.fork"), ("par.fork", "VM.start"), ("VM.start", "par.join"),
            ("par.fork", "deep.fork"), ("deep.fork", "X.one"), ("deep.fork", "X.two"), ("X.one", "deep.join"),
            ("X.two", "deep.join"), ("deep.join", "par.join"), ("par.join", "end")} == edges
    assert d.nodes["par"].text == "Log.open"


def test_state_machine_as_owned_behavior_and_terminate():
    region = pseudo("i") + state("s", "VM.kill") + pseudo("x", "terminate", "x") + tr("a", "i", "s") + tr("b", "s", "x")
    body = cls("c", "VM", f'<ownedBehavior xmi:type="uml:StateMachine" xmi:id="sm" name="kill">'
                          f'<region xmi:id="r">{region}</region></ownedBehavior>')
    app = uml(body)
    assert app.components["VM"].attributes == {}
    d = app.diagram_graphs["kill"]
    assert d.nodes["x"].kind is NodeKind.FINAL and diagram_problems(d) == []
    assert app.diagrams == {"kill": DiagramRef("kill", None)}


# --- bad input -----------------------------------------------------------------------------
def test_wrong_uml_namespace():
    fails(cls("c", "C"), match="not a known UML namespace",
          head=HEAD.replace("http://www.eclipse.org/uml2/5.0.0/UML", "http://example.org/UML"))


def test_wrong_xmi_namespace():
    fails(cls("c", "C"), match="no known XMI namespace",
          head=HEAD.replace("http://www.omg.org/spec/XMI/20131001", "http://example.org/XMI"))


def test_wrong_root():
    with pytest.raises(ParseError, match="expected a uml:Model") as info:
        parse_uml("t.uml", b'<application name="x" xmlns:xmi="http://www.omg.org/XMI"/>')
    assert info.value.line == 1
    with pytest.raises(ParseError, match="exactly one uml:Model"):
        parse_uml("t.uml", b'<xmi:XMI xmlns:xmi="http://www.omg.org/XMI" '
                           b'xmlns:uml="http://www.eclipse.org/uml2/5.0.0/UML"/>')


def test_dangling_member_end():
    err = fails(assoc(member_end='memberEnd="ea nowhere"'), match="'nowhere', which does not exist")
    assert err.line == 5  # the association (line 1: declaration, 2: model, 3-4: classes)


def test_dangling_type_and_transition_target():
    fails(cls("A", "A") + cls("B", "B") + '<packagedElement xmi:type="uml:Association" xmi:id="as" memberEnd="x y">'
          '<ownedEnd xmi:id="x" type="A" association="as"/><ownedEnd xmi:id="y" type="Q" association="as"/>'
          '</packagedElement>', match="'Q', which does not exist")
    fails(sm("s", pseudo("i") + final("e") + tr("t", "i", "ghost")), match="'ghost', which does not exist")


def test_missing_ids():
    fails('<packagedElement xmi:type="uml:Class" name="C"/>', match="class has no xmi:id")
    fails(sm("s", pseudo("i") + '<subvertex xmi:type="uml:FinalState"/>'), match="vertex has no xmi:id")


def test_duplicates():
    err = fails(cls("a", "C") + cls("a", "D"), match="duplicate xmi:id 'a'")
    assert err.line == 4
    fails(cls("a", "C") + cls("b", "C"), match="duplicate component 'C'")
    fails(cls("a", "C", prop("x", "LiteralString", "1") + prop("x", "LiteralString", "2", xid="x2")),
          match="duplicate attribute 'x'")
    fails(assoc() + '<packagedElement xmi:type="uml:Association" xmi:id="as2" memberEnd="f g">'
          '<ownedEnd xmi:id="f" type="B" association="as2"/><ownedEnd xmi:id="g" type="A" association="as2"/>'
          '</packagedElement>', match="duplicate binding")
    fails(sm("s", pseudo("i") + final("e") + tr("t", "i", "e"))
          + sm("s", pseudo("i2") + final("e2") + tr("t2", "i2", "e2")).replace('_s"', '_s2"'),
          match="two state machines")


@pytest.mark.parametrize("body,match,exc", [
    (cls("c", "C", prop("initial", "LiteralInteger", "many")), "not an integer", ParseError),
    (cls("c", "C", prop("initial", "LiteralString", "-3")), "out of range", ParseError),
    (cls("c", "C", prop("b", "LiteralBoolean", "maybe")), "not true or false", ParseError),
    (cls("c", "C", prop("name", "LiteralString", "x")), "reserved", ParseError),
    (cls("c", "bad name"), "bad component name", ParseError),
    (assoc("", bounds("0", "0")), "impossible multiplicity", ParseError),
    (assoc(bounds("*", "1"), ""), "cannot be '\\*'", ParseError),
    ('<packagedElement xmi:type="uml:Package" xmi:id="g" name="grid">'
     + cls("f", "f", prop("protocol", "LiteralString", "telnet")) + "</packagedElement>", "unknown protocol",
     ParseError),
    (sm("s", pseudo("i", "deepHistory")), "not supported", ParseError),
    (sm("s", pseudo("i") + state("a", "not an action!") + final("e") + tr("1", "i", "a") + tr("2", "a", "e")),
     "cannot read action", ExpressionError),
    (sm("s", pseudo("i") + pseudo("c", "choice") + final("e") + tr("1", "i", "c") + tr("2", "c", "e", "1 +")),
     "guard", ExpressionError),
    (sm("s", pseudo("i") + final("e") + '<transition xmi:id="t" source="i" target="e">'
        '<effect xmi:type="uml:OpaqueBehavior" xmi:id="ef"><body>VM.x</body></effect></transition>'),
     "effects are not supported", ParseError),
    (sm("s", pseudo("i") + final("e") + tr("t", "e", "i")), "cannot leave a final state", ParseError),
    (sm("s", "") + "", "", None),
])
def test_bad_values(body, match, exc):
    if exc is None:  # an empty state machine parses; tune validate reports it
        d = uml(body).diagram_graphs["s"]
        assert diagram_problems(d)
        return
    fails(body, exc, match)


def test_billion_laughs_and_external_entities_are_refused():
    laughs = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
              + HEAD.split("\n", 1)[1].encode() + b'<packagedElement xmi:type="uml:Class" xmi:id="c" name="&lol2;"/>'
              + TAIL.encode())
    with pytest.raises(XMLSecurityError) as info:
        parse_uml("t.uml", laughs)
    assert info.value.file == "t.uml" and info.value.line
    external = (b'<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                + HEAD.split("\n", 1)[1].encode() + b'<packagedElement xmi:type="uml:Class" xmi:id="c" name="&x;"/>'
                + TAIL.encode())
    with pytest.raises(XMLSecurityError):
        parse_uml("t.uml", external)


def test_to_uml_refuses_what_it_cannot_write():
    app = Application("a", families={"f": Family("f", attributes={"user": "x"})})
    with pytest.raises(ValidationError, match="family field"):
        to_uml(app)
    app = Application("a", diagrams={"start": DiagramRef("start")})
    with pytest.raises(ValidationError, match="neither a graph nor a file"):
        to_uml(app)
    app = Application("a", bindings=[Binding("A", "B")])
    with pytest.raises(ValidationError, match="does not exist"):
        to_uml(app)


def test_unreadable_file(tmp_path):
    with pytest.raises(ParseError, match="cannot read"):
        parse_uml(str(tmp_path / "missing.uml"))


# --- properties ----------------------------------------------------------------------------
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,10}", fullmatch=True).filter(lambda s: bool(NAME_RE.match(s)))
texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n "), max_size=20)
opt_texts = st.none() | texts.filter(lambda s: s != "")
multiplicities = st.sampled_from(["1", "0..1", "1..4", "*", "2..*", "3", "0..7"]).map(Multiplicity.parse)
ACTIONS = ["VM.start", "$arg.migrate $arg2", "Probe++ 2", "VM.memory = 512", "$arg--", "$arg.Probe.follow",
           "Monitor.log 'a b' $arg; VM.stop", "$new.start"]
GUARDS = ['$arg.cpu >= 90', 'VM.count > 4', '$arg.state == "started"', 'not $arg.x < 2 and true']
node_ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,12}", fullmatch=True)


@st.composite
def diagrams(draw, name: str) -> Diagram:
    """A valid diagram: initial → blocks (action, fork/join, choice) → final."""
    ids = iter(draw(st.lists(node_ids, min_size=40, max_size=40, unique=True)))
    d = Diagram(name=name, on_failure=draw(st.none() | names))

    def node(kind: NodeKind, text: str = "") -> str:
        nid = next(ids)
        d.nodes[nid] = make_action_node(nid, text, d.source) if kind is NodeKind.ACTION else DiagramNode(nid, kind)
        return nid

    def edge(a: str, b: str, guard: str | None = None) -> None:
        d.transitions.append(make_transition(a, b, guard, d.source))

    last = node(NodeKind.INITIAL)
    for block in draw(st.lists(st.sampled_from(["action", "fork", "choice"]), max_size=4)):
        if block == "action":
            a = node(NodeKind.ACTION, draw(st.sampled_from(ACTIONS)))
            edge(last, a)
            last = a
        elif block == "fork":
            f, j = node(NodeKind.FORK), None
            edge(last, f)
            branches = [node(NodeKind.ACTION, draw(st.sampled_from(ACTIONS)))
                        for _ in range(draw(st.integers(1, 3)))]
            j = node(NodeKind.JOIN)
            for b in branches:
                edge(f, b)
                edge(b, j)
            last = j
        else:
            c = node(NodeKind.CHOICE)
            edge(last, c)
            a = node(NodeKind.ACTION, draw(st.sampled_from(ACTIONS)))
            b = node(NodeKind.ACTION, draw(st.sampled_from(ACTIONS)))
            edge(c, a, draw(st.sampled_from(GUARDS)))
            edge(c, b, "else")
            after = node(NodeKind.ACTION, draw(st.sampled_from(ACTIONS)))
            edge(a, after)
            edge(b, after)
            last = after
    edge(last, node(NodeKind.FINAL))
    return d


@st.composite
def applications(draw) -> Application:
    app = Application(name=draw(names))
    for fname in draw(st.lists(names, max_size=2, unique=True)):
        app.families[fname] = Family(
            name=fname, nodefile=draw(opt_texts), user=draw(opt_texts), protocol=draw(st.sampled_from(PROTOCOLS)),
            dirlocal=draw(texts.filter(lambda s: s != "")), python=draw(opt_texts), key=draw(opt_texts),
            port=draw(st.none() | st.integers(0, 65535)), allocation=draw(st.sampled_from(ALLOCATIONS)),
            driver=draw(opt_texts),
            attributes=draw(st.dictionaries(names.filter(lambda n: n not in ("name", "nodefile", "user", "protocol",
                                                                              "dirlocal", "python", "key", "port",
                                                                              "allocation", "driver")),
                                            texts, max_size=3)))
    free = names.filter(lambda n: n not in ("name", "wrapper", "legacyFile", "host-family", "initial"))
    for cname in draw(st.lists(names, max_size=4, unique=True)):
        attrs = draw(st.dictionaries(free, texts, max_size=4))
        app.components[cname] = ComponentType(
            name=cname, wrapper=draw(opt_texts), legacy_file=draw(opt_texts),
            host_family=draw(st.none() | st.sampled_from(sorted(app.families) or ["nowhere"])),
            initial=draw(st.integers(0, 1000)), attributes=attrs,
            secret=frozenset(draw(st.sets(st.sampled_from(sorted(attrs)), max_size=2)) if attrs else ()))
    comps = sorted(app.components)
    if comps:
        pairs = draw(st.lists(st.tuples(st.sampled_from(comps), st.sampled_from(comps)), max_size=4,
                              unique_by=lambda p: tuple(sorted(p))))
        for a, b in pairs:
            app.bindings.append(Binding(a, b, draw(multiplicities), draw(multiplicities)))
    for event in draw(st.lists(names, max_size=3, unique=True)):
        app.diagrams[event] = DiagramRef(event)
        app.diagram_graphs[event] = draw(diagrams(event))
    return app


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications())
def test_generated_applications_round_trip(app):
    back = parse_uml("gen.uml", to_uml(app).encode("utf-8"))
    assert graph_signature(back) == graph_signature(app)
    assert normalised(back) == normalised(app)
    for ev, d in app.diagram_graphs.items():
        got = back.diagram_graphs[ev]
        assert got.nodes == d.nodes and got.transitions == d.transitions and got.on_failure == d.on_failure
        assert diagram_problems(got) == []


with open(UML_EXAMPLE, "rb") as _fh:
    EXAMPLE_BYTES = _fh.read()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(EXAMPLE_BYTES) - 1), st.integers(0, 3), st.binary(max_size=8)),
                min_size=1, max_size=6))
def test_mutated_example_raises_only_tune_errors(mutations):
    data = bytearray(EXAMPLE_BYTES)
    for pos, op, payload in mutations:
        pos = min(pos, max(len(data) - 1, 0))
        if op == 0:
            del data[pos:pos + len(payload) + 1]
        elif op == 1:
            data[pos:pos] = payload
        elif op == 2:
            data[pos:pos + len(payload)] = payload
        else:  # swap a quote or bracket-ish byte for a structural one
            data[pos:pos + 1] = bytes([b'"<>/= _'[len(payload) % 7]])
    try:
        parse_uml("mut.uml", bytes(data))
    except TuneError as exc:
        assert exc.file == "mut.uml"


TOKENS = ['"_xaVM"', '"_xaProbe"', '"_nothing"', 'kind="fork"', 'kind="join"', 'kind="junction"', '"uml:State"',
          '"uml:Pseudostate"', '"uml:FinalState"', '"uml:Class"', '"uml:Association"', '"uml:LiteralInteger"',
          '"*"', '"0"', '"-1"', '""', 'name="grid"', "</region>", "<region>", "$arg", "else", "==", "ownedEnd"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(TOKENS), st.integers(0, 5)), min_size=1,
                max_size=4))
def test_token_swapped_example_raises_only_tune_errors(swaps):
    """Mutations that keep the XML well-formed more often, to reach the UML-level checks."""
    text = EXAMPLE_BYTES.decode("utf-8")
    for old, new, nth in swaps:
        start = -1
        for _ in range(nth + 1):
            start = text.find(old, start + 1)
            if start < 0:
                break
        if start >= 0:
            text = text[:start] + new + text[start + len(old):]
    try:
        parse_uml("mut.uml", text.encode())
    except TuneError as exc:
        assert exc.file == "mut.uml"
