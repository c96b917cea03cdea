"""RDL actions: calls, creation, removal, assignment, sequences; round trips and fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import actions
from tune.diagrams.actions import (Assign, Call, Create, Remove, Target, parse_action, parse_actions,
                                   unparse_action)
from tune.errors import ExpressionError
from tune.wdl.expr import Literal, Template, Var

COMP = lambda c: Target("comp", component=c)  # noqa: E731


@pytest.mark.parametrize("text,action", [
    ("VM.start", Call(COMP("VM"), "start")),
    ("Monitor.log $arg", Call(COMP("Monitor"), "log", (Var("arg"),))),
    ("Monitor.log 'a b' \"c;d\" plain", Call(COMP("Monitor"), "log", (Literal("a b"), Literal("c;d"),
                                                                       Literal("plain")))),
    ("Monitor.log ''", Call(COMP("Monitor"), "log", (Literal(""),))),
    ("Monitor.log vm-$arg2.x", Call(COMP("Monitor"), "log", (Template((Literal("vm-"), Var("arg", ("x",), 2))),))),
    ("$arg.migrate", Call(Target("arg"), "migrate")),
    ("$arg.VM.migrate $arg2", Call(Target("arg", via="VM"), "migrate", (Var("arg", (), 2),))),
    ("$arg2.restart", Call(Target("arg", index=2), "restart")),
    ("$arg1.restart", Call(Target("arg", index=1), "restart")),
    ("$new.start", Call(Target("new"), "start")),
    ("$new.Probe.start", Call(Target("new", via="Probe"), "start")),
    ("VM++", Create("VM", 1)),
    ("VM ++", Create("VM", 1)),
    ("VM++ 3", Create("VM", 3)),
    ("VM++ [3]", Create("VM", 3)),
    ("VM++[ 3 ]", Create("VM", 3)),
    ("VM--", Remove(COMP("VM"))),
    ("$arg--", Remove(Target("arg"))),
    ("$arg2 --", Remove(Target("arg", index=2))),
    ("$new--", Remove(Target("new"))),
    ("$arg.Probe--", Remove(Target("arg", via="Probe"))),
    ("VM.load = 90", Assign(COMP("VM"), "load", Literal("90"))),
    ("$arg.state=stopped", Assign(Target("arg"), "state", Literal("stopped"))),
    ("$arg.VM.host = $arg2", Assign(Target("arg", via="VM"), "host", Var("arg", (), 2))),
    ("$new.where = on $this.nodeName", Assign(Target("new"), "where",
                                              Template((Literal("on "), Var("this", ("nodeName",)))))),
    ("VM.note =", Assign(COMP("VM"), "note", Literal(""))),
])
def test_single_actions(text, action):
    assert parse_action(text) == action
    assert parse_actions(text) == [action]
    assert parse_actions(unparse_action(action)) == [action]


def test_sequences_split_on_semicolons_outside_quotes():
    assert parse_actions("Probe.stop; $arg--;VM++ 2 ;  ; Log.write 'a;b' \"c;'d\"") == [
        Call(COMP("Probe"), "stop"), Remove(Target("arg")), Create("VM", 2),
        Call(COMP("Log"), "write", (Literal("a;b"), Literal("c;'d")))]


def test_target_str_and_components():
    assert str(Target("arg", index=2, via="VM")) == "$arg2.VM" and str(Target("arg")) == "$arg"
    assert str(Target("new", via="P")) == "$new.P" and str(COMP("VM")) == "VM"
    assert Target("arg", via="VM").component_names == ["VM"] and COMP("X").component_names == ["X"]
    assert Target("arg").component_names == []


@pytest.mark.parametrize("text,expected", [
    (Call(COMP("L"), "log", (Literal("=x"),)), "L.log '=x'"),
    (Call(Target("arg"), "m", (Literal("--"),)), "$arg.m '--'"),
    (Create("VM", 2), "VM++ 2"),
    (Remove(Target("arg", index=3)), "$arg3--"),
    (Assign(COMP("VM"), "a", Var("this", ("b",))), "VM.a = ${this.b}"),
])
def test_unparse(text, expected):
    assert unparse_action(text) == expected
    assert parse_action(expected) == text


@pytest.mark.parametrize("text,fragment", [
    ("", "empty action"), (" ; ;", "empty action"), ("VM", "cannot read action"),
    ("VM.start 'unterminated", "unterminated quote"), ("VM++ 0", "count must be between"),
    ("VM++ 10001", "count must be between"), ("VM++ [3", "cannot read action"), ("VM++ 3]", "cannot read action"),
    ("VM++ -1", "cannot read action"), ("$arg0.start", "$arg0"), ("$arg0--", "$arg0"),
    ("A.B.start", "cannot follow a binding"), ("A.B--", "cannot follow a binding"),
    ("VM.start $", "bad variable"), ("rm -rf /", "cannot read action"), ("$(x).start", "cannot read action"),
    ("VM.start\x00", "cannot read action"), ("x" * 5000, "longer than"),
    ("\u00e9t\u00e9.start", "cannot read action"),
])
def test_bad_actions(text, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_actions(text)
    assert fragment in info.value.message


@settings(max_examples=200, deadline=1000)
@given(st.lists(actions(), min_size=1, max_size=4))
def test_round_trip(acts):
    text = "; ".join(unparse_action(a) for a in acts)
    assert parse_actions(text) == acts


@settings(max_examples=300, deadline=1000)
@given(st.text(max_size=40) | st.lists(st.sampled_from(
    ["VM", ".", "start", "$arg", "$new", "2", "++", "--", " ", ";", "'", '"', "=", "[", "]", "$", "x"]),
    max_size=12).map("".join))
def test_any_text_only_raises_expression_errors(text):
    try:
        acts = parse_actions(text)
    except ExpressionError:
        return
    assert parse_actions("; ".join(unparse_action(a) for a in acts)) == acts


@settings(max_examples=200, deadline=1000)
@given(st.lists(actions(), min_size=1, max_size=3), st.data())
def test_mutated_actions_only_raise_expression_errors(acts, data):
    from strategies import mutated
    text = "; ".join(unparse_action(a) for a in acts)
    raw = data.draw(mutated(text.encode(), xml=False)).decode("utf-8", "replace")
    try:
        parsed = parse_actions(raw)
    except ExpressionError:
        return
    assert parse_actions("; ".join(unparse_action(a) for a in parsed)) == parsed
