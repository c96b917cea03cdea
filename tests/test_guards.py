"""Guards: parsing (precedence, parentheses, leaves, nesting limit), evaluation, round trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import guards
from tune.diagrams.guards import MAX_DEPTH, Guard, evaluate_guard, parse_guard
from tune.errors import ExpressionError
from tune.wdl.expr import Var

N = lambda v: Guard("num", value=float(v))  # noqa: E731
S = lambda v: Guard("str", value=v)  # noqa: E731
A = lambda c, a: Guard("attr", value=(c, a))  # noqa: E731
T, F = Guard("bool", value=True), Guard("bool", value=False)


def cmp(a, op, b):
    return Guard("cmp", (a, b), op)


@pytest.mark.parametrize("text,tree", [
    ("true", T), ("false", F), ("42", N(42)), ("-1.5", N(-1.5)), ('"x"', S("x")), ("'it\\'s'", S("it's")),
    ('"a\\"b\\\\"', S('a"b\\')),
    ("VM.count", Guard("count", value=("VM", "count"))),
    ("VM.load", A("VM", "load")),
    ("$arg.cpu", Guard("var", value=Var("arg", ("cpu",)))),
    ("${arg2.state}", Guard("var", value=Var("arg", ("state",), 2))),
    ("$this.x", Guard("var", value=Var("this", ("x",)))),
    ("VM.count >= 4", cmp(Guard("count", value=("VM", "count")), ">=", N(4))),
    ("a.b==1", cmp(A("a", "b"), "==", N(1))),
    # not > and > or
    ("a.x or a.y and not a.z", Guard("or", (A("a", "x"), Guard("and", (A("a", "y"), Guard("not", (A("a", "z"),))))))),
    ("not a.x == 1", Guard("not", (cmp(A("a", "x"), "==", N(1)),))),
    ("not not true", Guard("not", (Guard("not", (T,)),))),
    ("a.x and a.y and a.z", Guard("and", (A("a", "x"), A("a", "y"), A("a", "z")))),
    ("(a.x or a.y) and a.z", Guard("and", (Guard("or", (A("a", "x"), A("a", "y"))), A("a", "z")))),
    ("((true))", T),
    ("(1 == 1) == true", cmp(cmp(N(1), "==", N(1)), "==", T)),
])
def test_parse(text, tree):
    assert parse_guard(text) == tree
    assert parse_guard(str(tree)) == tree


def test_str():
    assert str(parse_guard("a.x or not b.count > 2.5")) == "(a.x or not b.count > 2.5)"
    assert str(N(0.0000001)) == "0.0000001" and str(N(1e20)) == "100000000000000000000"
    assert str(parse_guard("(not true) == false")) == "(not true) == false"


@pytest.mark.parametrize("text,fragment", [
    ("", "empty guard"), ("   ", "empty guard"), ("a.x ==", "expected a value"), ("== 1", "unexpected '=='"),
    ("(true", "missing ')'"), ("true)", "unexpected ')'"), ("1 == 2 == 3", "unexpected '=='"),
    ("and", "misplaced 'and'"), ("true or", "expected a value"), ("word", "bare word"),
    ("a.b.c", "bare word"), ("$arg.x = 1", "unexpected"), ("x; rm -rf /", "unexpected"),
    ("__import__('os')", "bare word"), ("1 +", "unexpected"), ('"open', "unexpected"),
    ("$", "unexpected"), ("$arg0", "$arg0"), ("x" * 2000, "longer than"),
    ("not " * (MAX_DEPTH + 1) + "true", "nested too deeply"),
    ("(" * (MAX_DEPTH + 1) + "true" + ")" * (MAX_DEPTH + 1), "nested too deeply"),
])
def test_bad(text, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_guard(text)
    assert fragment in info.value.message


def test_nesting_up_to_the_limit_is_fine():
    assert parse_guard("(" * MAX_DEPTH + "true" + ")" * MAX_DEPTH) == T
    assert evaluate_guard(parse_guard("not " * MAX_DEPTH + "true"), lambda g: None) is (MAX_DEPTH % 2 == 0)


VALUES = {("var", Var("arg", ("cpu",))): "95", ("var", Var("arg", ("state",))): "started",
          ("count", ("VM", "count")): 3, ("attr", ("VM", "load")): "9", ("attr", ("VM", "name")): "abc"}


def lookup(g):
    return VALUES[(g.kind, g.value)]


@pytest.mark.parametrize("text,result", [
    ("true", True), ("false", False), ("not false", True),
    ("$arg.cpu >= 90", True), ("$arg.cpu > 95", False), ("$arg.cpu == 95.0", True),
    ('$arg.state == "started"', True), ("$arg.state != 'started'", False),
    ("VM.count < 4", True), ("VM.count <= 2", False), ("VM.count == 3", True),
    ("VM.load < 10", True),        # numeric: 9 < 10
    ('VM.load < "10"', True),      # still numeric: both sides read as numbers
    ('VM.name < "abd"', True),     # strings compare as strings
    ('VM.name > "10"', True),      # mixed: compared as strings ("abc" > "10")
    ("1 == 1 and 2 == 3 or true", True), ("1 == 1 and (2 == 3 or false)", False),
    ("not VM.count == 3 or $arg.cpu < 0", False), ("true == 1", True),
])
def test_evaluate(text, result):
    assert evaluate_guard(parse_guard(text), lookup) is result


def test_evaluate_short_circuits_and_only_looks_up_leaves():
    seen = []

    def spy(g):
        seen.append(g.value)
        return 1
    assert evaluate_guard(parse_guard("false and VM.count == 1 or a.b == 1"), spy) is True
    assert seen == [("a", "b")]


def test_lookup_errors_propagate():
    def boom(g):
        raise ExpressionError("no such instance")
    with pytest.raises(ExpressionError):
        evaluate_guard(parse_guard("$arg.cpu > 1"), boom)


@settings(max_examples=300, deadline=1000)
@given(guards())
def test_round_trip(g):
    assert parse_guard(str(g)) == g


@settings(max_examples=300, deadline=1000)
@given(st.text(max_size=40) | st.lists(st.sampled_from(
    ["not", "and", "or", "(", ")", "==", "<", "1", "'s'", "$arg.x", "VM.count", " ", "true", "-", "\\"]),
    max_size=12).map(" ".join))
def test_any_text_only_raises_expression_errors(text):
    try:
        g = parse_guard(text)
    except ExpressionError:
        return
    assert parse_guard(str(g)) == g


@settings(max_examples=200, deadline=1000)
@given(guards(), st.data())
def test_mutated_guards_only_raise_expression_errors(g, data):
    from strategies import mutated
    text = data.draw(mutated(str(g).encode(), xml=False)).decode("utf-8", "replace")
    try:
        parsed = parse_guard(text)
    except ExpressionError:
        return
    assert parse_guard(str(parsed)) == parsed
