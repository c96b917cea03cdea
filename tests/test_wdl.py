"""WDL: wrappers, parameter expressions, key resolution; round trips and mutations."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import expressions, ident, keys, mutated
from tune.adl.model import Source
from tune.errors import ExpressionError, ParseError, TuneError, WrapperResolutionError
from tune.wdl import resolve as resolve_mod
from tune.wdl.expr import Literal, Scope, Template, Var, evaluate, parse_expression, unparse, variables
from tune.wdl.model import Param, Wrapper, WrapperMethod
from tune.wdl.parser import parse_wdl, to_xml
from tune.wdl.resolve import check_wrapper, resolve_class, resolve_method

VM = b"""<?xml version="1.0"?>
<wrapper name="VM">
  <method name="start" key="pkg.vm.XenVM" method="boot">
    <param value="$this.srname"/>
    <param value="$this.memory"/>
    <param>$arg2</param>
  </method>
  <!-- a comment -->
  <method name="stop" key="pkg.vm.XenVM"/>
</wrapper>
"""


def test_parse_wrapper():
    w = parse_wdl("vm.wdl", VM)
    assert w.name == "VM" and w.file == "vm.wdl" and w.source == Source("vm.wdl", 2)
    assert list(w.methods) == ["start", "stop"]
    start = w.methods["start"]
    assert (start.key, start.method, start.source) == ("pkg.vm.XenVM", "boot", Source("vm.wdl", 3))
    assert [p.text for p in start.params] == ["$this.srname", "$this.memory", "$arg2"]
    assert [p.expr for p in start.params] == [Var("this", ("srname",)), Var("this", ("memory",)),
                                             Var("arg", (), 2)]
    assert [p.source.line for p in start.params] == [4, 5, 6]
    stop = w.methods["stop"]
    assert (stop.method, stop.params, stop.source.line) == ("stop", [], 9)  # method defaults to the name


def test_to_xml_round_trip():
    w = parse_wdl("vm.wdl", VM)
    assert parse_wdl("vm.wdl", to_xml(w).encode()) == w


@pytest.mark.parametrize("text,expr", [
    ("", Literal("")),
    ("256", Literal("256")),
    ("$this", Var("this")),
    ("$this.srname", Var("this", ("srname",))),
    ("$this.nodeName", Var("this", ("nodeName",))),
    ("$this.dirLocal", Var("this", ("dirLocal",))),
    ("$this.memory", Var("this", ("memory",))),
    ("$VM.memory", Var("VM", ("memory",))),
    ("$arg", Var("arg", (), None)),
    ("$arg1", Var("arg", (), 1)),
    ("$arg12", Var("arg", (), 12)),
    ("$arg.cpu", Var("arg", ("cpu",), None)),
    ("$new.srname", Var("new", ("srname",))),
    ("${this.srname}", Var("this", ("srname",))),
    ("$$", Literal("$")),
    ("cost: $$5", Literal("cost: $5")),
    ("$this.dirLocal/probe.log", Template((Var("this", ("dirLocal",)), Literal("/probe.log")))),
    ("${this.srname}x", Template((Var("this", ("srname",)), Literal("x")))),
    ("$this.srnamex", Var("this", ("srnamex",))),
    ("vm-${arg2}-$$", Template((Literal("vm-"), Var("arg", (), 2), Literal("-$")))),
    ("vm-$arg2-x", Template((Literal("vm-"), Var("arg2-x"),))),  # '-' belongs to names: use ${...}
    ("$this.", Template((Var("this"), Literal(".")))),
    ("a $VM.srname b", Template((Literal("a "), Var("VM", ("srname",)), Literal(" b")))),
    ("$args", Var("args")),
])
def test_expressions(text, expr):
    assert parse_expression(text) == expr
    assert parse_expression(unparse(expr)) == expr


def test_var_str_and_variables():
    assert str(Var("arg", ("x",), 2)) == "$arg2.x" and str(Var("arg")) == "$arg"
    assert list(variables(parse_expression("$a.b-$this-x"))) == [Var("a", ("b-",)), Var("this-x")]
    assert list(variables(Literal("x"))) == []
    assert list(variables(parse_expression("$x/$y.z"))) == [Var("x"), Var("y", ("z",))]


@pytest.mark.parametrize("text", ["$", "a $", "$1", "$arg0", "${this", "${}", "$.x", "${this..x}",
                                  "x" * 5000, None])
def test_bad_expressions(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


class _Inst:
    def __init__(self, srname, **attrs):
        self.srname = srname
        self.attrs = dict(attrs, srname=srname)


class _Resolver:
    def __init__(self):
        self.vm1 = _Inst("VM1", memory="256", nodeName="dom0-a")
        self.vm2 = _Inst("VM2", memory="512", nodeName="dom0-b")
        self.p1 = _Inst("Probe1", threshold="80")

    def instance_attribute(self, inst, name):
        return inst.attrs[name]

    def find_instance(self, name):
        return {"VM1": self.vm1, "VM2": self.vm2}[name]

    def bound(self, inst, comp):
        return [self.vm1] if comp == "VM" else []

    def instances(self, comp):
        return [self.vm1, self.vm2] if comp == "VM" else []


def test_evaluate():
    r = _Resolver()
    scope = Scope(r, this=r.p1, args=("VM2", "dom0-c"))
    ev = lambda text: evaluate(parse_expression(text), scope)  # noqa: E731
    assert ev("$this") is r.p1
    assert ev("$this.threshold") == "80"
    assert ev("$this.srname") == "Probe1"
    assert ev("$arg") == "VM2" and ev("$arg1") == "VM2" and ev("$arg2") == "dom0-c"
    assert ev("$arg3") is None  # optional extra arguments
    assert ev("$arg.memory") == "512"
    assert ev("$VM.nodeName") == "dom0-a"  # through the binding: one value
    assert ev("$VM") is r.vm1
    assert ev("on $VM.srname at $$$this.threshold") == "on VM1 at $80"
    assert ev("plain") == "plain"
    unbound = Scope(r, args=())
    assert evaluate(parse_expression("$VM.memory"), unbound) == ["256", "512"]  # a list
    assert evaluate(parse_expression("x$VM.srname"), unbound) == "xVM1,VM2"
    assert evaluate(parse_expression("$new.memory"), Scope(r, new=[r.vm2])) == "512"
    with pytest.raises(ExpressionError):
        evaluate(parse_expression("$this.x"), unbound)
    with pytest.raises(ExpressionError):
        evaluate(parse_expression("$arg.memory"), unbound)
    with pytest.raises(ExpressionError):
        evaluate(parse_expression("$new"), unbound)


def _doc(body: str) -> bytes:
    return f'<?xml version="1.0"?>\n<wrapper name="W">\n{body}\n</wrapper>\n'.encode()


BAD = [
    ('<method name="a" key="m.C"/>\n<method name="a" key="m.C"/>', 4, ParseError, "duplicate method 'a'"),
    ('<method key="m.C"/>', 3, ParseError, "needs a valid 'name'"),
    ('<method name="a"/>', 3, ParseError, "'key' must be a dotted path"),
    ('<method name="a" key="Cls"/>', 3, ParseError, "'key' must be a dotted path"),
    ('<method name="a" key="m.C; rm -rf /"/>', 3, ParseError, "'key' must be a dotted path"),
    ('<method name="a" key="m.C" method="_private"/>', 3, ParseError, "bad Python method name"),
    ('<method name="a" key="m.C" method="a b"/>', 3, ParseError, "bad Python method name"),
    ('<method name="$(x)" key="m.C"/>', 3, ParseError, "needs a valid 'name'"),
    ('<method name="a&#10;b" key="m.C"/>', 3, ParseError, "needs a valid 'name'"),
    ('<method name="%s" key="m.C"/>' % ("a" * 65), 3, ParseError, "needs a valid 'name'"),
    ('<method name="a" key="m.%s"/>' % ("C" * 300), 3, ParseError, "'key' must be a dotted path"),
    ('<method name="a" key="m.C">\n<param value="$"/></method>', 4, ExpressionError, "bad variable"),
    ('<method name="a" key="m.C">\n\n<param value="$arg0"/></method>', 5, ExpressionError, "$arg0"),
    ('<method name="a" key="m.C">\n<arg/></method>', 4, ParseError, "unexpected <arg> in <method>"),
    ('<function name="a"/>', 3, ParseError, "unexpected <function> in <wrapper>"),
    ('<x:method xmlns:x="urn:x" name="a" key="m.C"/>', 3, ParseError, "namespace"),
]


@pytest.mark.parametrize("body,line,cls,fragment", BAD, ids=[b[3] for b in BAD])
def test_bad_wrappers(body, line, cls, fragment):
    with pytest.raises(cls) as info:
        parse_wdl("w.wdl", _doc(body))
    assert (info.value.file, info.value.line) == ("w.wdl", line) and fragment in info.value.message


@pytest.mark.parametrize("doc,fragment", [
    (b'<wrapper/>', "needs a valid 'name'"), (b'<wrapper name="\xc3\xa9"/>', "needs a valid 'name'"),
    (b'<wrapper name="W" xmlns="urn:tune"/>', "namespace"), (b'<wdl name="W"/>', "expected <wrapper>"),
    (b'<wrapper name="W">', "malformed XML")])
def test_bad_roots(doc, fragment):
    with pytest.raises(ParseError) as info:
        parse_wdl("w.wdl", doc)
    assert (info.value.file, info.value.line) == ("w.wdl", 1) and fragment in info.value.message


# --- key resolution ------------------------------------------------------------------------
@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    (tmp_path / "tune_wdl_fixture_mod.py").write_text(
        "class Greeter:\n    def hello(self, who):\n        return 'hi ' + who\n    attr = 3\n"
        "def function():\n    pass\n")
    (tmp_path / "tune_wdl_broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.setattr(resolve_mod, "_cache", {})
    yield str(tmp_path)
    import sys
    for m in ("tune_wdl_fixture_mod", "tune_wdl_broken_mod"):
        sys.modules.pop(m, None)


def _method(key, method, line=7):
    return WrapperMethod(name="m", key=key, method=method, source=Source("w.wdl", line))


def test_resolve_ok(module_dir):
    cls, fn = resolve_method(_method("tune_wdl_fixture_mod.Greeter", "hello"), module_dir)
    assert cls.__name__ == "Greeter" and fn(cls(), "you") == "hi you"
    assert resolve_class("tune_wdl_fixture_mod.Greeter") is cls  # cached
    import sys
    assert module_dir not in sys.path  # the search path is not left behind


@pytest.mark.parametrize("key,method,fragment", [
    ("tune_wdl_no_such_module.Greeter", "hello", "cannot import 'tune_wdl_no_such_module'"),
    ("tune_wdl_broken_mod.Greeter", "hello", "RuntimeError: boom at import"),
    ("tune_wdl_fixture_mod.Nope", "hello", "has no class 'Nope'"),
    ("tune_wdl_fixture_mod.function", "hello", "has no class 'function'"),
    ("tune_wdl_fixture_mod.Greeter", "bye", "has no method 'bye'"),
    ("tune_wdl_fixture_mod.Greeter", "attr", "has no method 'attr'"),
])
def test_resolution_errors_name_file_and_line(module_dir, key, method, fragment):
    with pytest.raises(WrapperResolutionError) as info:
        resolve_method(_method(key, method), module_dir)
    assert (info.value.file, info.value.line) == ("w.wdl", 7) and fragment in info.value.message


def test_check_wrapper_lists_every_problem(module_dir):
    w = Wrapper("W", {"a": _method("tune_wdl_fixture_mod.Greeter", "hello", 3),
                      "b": _method("tune_wdl_no_such_module.X", "x", 4),
                      "c": _method("tune_wdl_fixture_mod.Greeter", "nope", 5)}, file="w.wdl")
    assert [(e.file, e.line) for e in check_wrapper(w, module_dir)] == [("w.wdl", 4), ("w.wdl", 5)]


# --- properties ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=1000)
@given(expressions())
def test_expression_round_trip(expr):
    assert parse_expression(unparse(expr)) == expr


@st.composite
def wrappers(draw):
    names = draw(st.lists(ident, min_size=0, max_size=4, unique=True))
    methods = {}
    for n in names:
        params = [Param(unparse(e), e) for e in draw(st.lists(expressions(), max_size=3))]
        methods[n] = WrapperMethod(n, draw(keys), draw(ident.filter(lambda s: not s.startswith("_"))), params)
    return Wrapper(draw(ident), methods, file="w.wdl")


@settings(max_examples=80, deadline=2000)
@given(wrappers())
def test_wrapper_round_trip(w):
    parsed = parse_wdl("w.wdl", to_xml(w).encode())
    assert parsed == w
    assert [p.expr for m in parsed.methods.values() for p in m.params] == \
        [p.expr for m in w.methods.values() for p in m.params]


@settings(max_examples=200, deadline=1000)
@given(st.text(max_size=30))
def test_any_expression_text_only_raises_expression_errors(text):
    try:
        expr = parse_expression(text)
    except ExpressionError:
        return
    assert parse_expression(unparse(expr)) == expr


@settings(max_examples=150, deadline=1000)
@given(st.data())
def test_mutations_only_raise_tune_errors(data):
    try:
        parse_wdl("m.wdl", data.draw(mutated(VM)))
    except TuneError as exc:
        assert exc.file == "m.wdl"


@settings(max_examples=200, deadline=1000)
@given(expressions(), st.data())
def test_mutated_expressions_only_raise_expression_errors(expr, data):
    raw = data.draw(mutated(unparse(expr).encode() or b"$", xml=False)).decode("utf-8", "replace")
    try:
        parsed = parse_expression(raw)
    except ExpressionError:
        return
    assert parse_expression(unparse(parsed)) == parsed
