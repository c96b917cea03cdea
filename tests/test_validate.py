"""Static validation across all the files of an application: exact problems, files and lines."""

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import mutated
from tune.adl.loader import load_application
from tune.adl.model import Application, Binding, ComponentType, Multiplicity
from tune.errors import Problem, TuneError, ValidationFailed
from tune.validate import application_problems, validate_file

APP = """<?xml version="1.0"?>
<application name="mini">
  <family name="g" nodefile="nodes" protocol="sim"/>
  <component name="VM" wrapper="vm.wdl" host-family="g" initial="2">
    <attribute name="memory" value="256"/>
  </component>
  <component name="Probe" wrapper="probe.wdl" initial="2"/>
  <binding from="Probe" to="VM"/>
  <diagram event="start" file="start.xml"/>
</application>
"""
VM_WDL = """<?xml version="1.0"?>
<wrapper name="VM">
  <method name="start" key="examples.xen_attitune.vm.XenVM" method="start">
    <param value="$this.srname"/>
    <param value="$this.memory"/>
  </method>
  <method name="migrate" key="examples.xen_attitune.vm.XenVM" method="migrate">
    <param value="$this.srname"/>
    <param value="$arg2"/>
  </method>
</wrapper>
"""
PROBE_WDL = """<?xml version="1.0"?>
<wrapper name="Probe">
  <method name="start" key="examples.xen_attitune.vm.XenVM" method="start">
    <param value="$VM.srname"/>
    <param value="$VM.memory"/>
  </method>
</wrapper>
"""
START = """<?xml version="1.0"?>
<diagram name="start">
  <initial id="i"/>
  <action id="a">VM.start</action>
  <final id="e"/>
  <transition from="i" to="a"/>
  <transition from="a" to="e"/>
</diagram>
"""
FILES = {"app.xml": APP, "vm.wdl": VM_WDL, "probe.wdl": PROBE_WDL, "start.xml": START, "nodes": "h1\nh1\nh2\n"}


def write_app(root, **changes):
    """The valid mini application, with files replaced (``name=text``) or removed (``name=None``)."""
    files = dict(FILES)
    for name, text in changes.items():
        files[name.replace("_", ".")] = text
    for name, text in files.items():
        if text is not None:
            (root / name).write_text(text)
    return str(root / "app.xml")


def problems_of(path):
    with pytest.raises(ValidationFailed) as info:
        load_application(path)
    base = os.path.dirname(path)
    return [(os.path.relpath(p.file, base) if p.file else None, p.line, p.message) for p in info.value.problems]


def test_the_mini_application_is_valid(tmp_path):
    app = load_application(write_app(tmp_path))
    assert list(app.wrappers) == ["VM", "Probe"] and list(app.diagram_graphs) == ["start"]
    assert sum(n.slots for n in app.families["g"].nodes) == 3
    assert application_problems(app) == []


def test_the_example_is_valid(example_dir):
    app = validate_file(os.path.join(example_dir, "app.xml"))
    assert app.name == "xen-attitune" and application_problems(app) == []


CASES = [
    ("unknown component in a diagram", {"start.xml": START.replace("VM.start", "Ghost.start")},
     [("start.xml", 4, "diagram start: unknown component 'Ghost'")]),
    ("unknown method", {"start.xml": START.replace("VM.start", "VM.fly")},
     [("start.xml", 4, "diagram start: component VM has no method 'fly' (known: migrate, start)")]),
    ("$arg method no wrapper has", {"start.xml": START.replace("VM.start", "$arg.fly")},
     [("start.xml", 4, "diagram start: no wrapper has a method 'fly'")]),
    ("$arg.Comp method", {"start.xml": START.replace("VM.start", "$arg.Probe.migrate")},
     [("start.xml", 4, "diagram start: component Probe has no method 'migrate' (known: start)")]),
    ("assign unknown attribute", {"start.xml": START.replace("VM.start", "VM.nope = 1")},
     [("start.xml", 4, "diagram start: component VM has no attribute 'nope'")]),
    ("action argument unknown component", {"start.xml": START.replace("VM.start", "VM.start $Ghost.x")},
     [("start.xml", 4, "$Ghost.x: unknown component 'Ghost'")]),
    ("create without placement", {"app.xml": APP.replace('<diagram', '<component name="Solo" initial="0"/>\n  <diagram'),
                                  "start.xml": START.replace("VM.start", "Solo++ 2")},
     [("start.xml", 4, "diagram start: Solo++ has no host family and no binding to place it by")]),
    ("unknown attribute in a wrapper param", {"vm.wdl": VM_WDL.replace("$this.memory", "$this.nope")},
     [("vm.wdl", 5, "$this.nope: component VM has no attribute 'nope'")]),
    ("$Comp.x for a component not bound",
     {"app.xml": APP.replace('<diagram', '<component name="Db" host-family="g" initial="1"/>\n  <diagram'),
      "vm.wdl": VM_WDL.replace("$arg2", "$Db.srname")},
     [("vm.wdl", 9, "$Db.srname: component VM is not bound to Db")]),
    ("$Comp.x unknown component", {"vm.wdl": VM_WDL.replace("$arg2", "$Ghost.srname")},
     [("vm.wdl", 9, "$Ghost.srname: unknown component 'Ghost'")]),
    ("$Comp.x unknown attribute", {"probe.wdl": PROBE_WDL.replace("$VM.memory", "$VM.nope")},
     [("probe.wdl", 5, "$VM.nope: component VM has no attribute 'nope'")]),
    ("impossible multiplicities", {"app.xml": APP.replace('wrapper="probe.wdl" initial="2"',
                                                          'wrapper="probe.wdl" initial="3"')},
     [("app.xml", 8, "binding Probe->VM: multiplicities 1 / 1 cannot be met with 3 Probe and 2 VM")]),
    ("lower bound above the count", {"app.xml": APP.replace('<binding from="Probe" to="VM"/>',
                                                            '<binding from="Probe" to="VM" to-multiplicity="3..*"/>')},
     [("app.xml", 8, "binding Probe->VM: each Probe needs at least 3 VM but only 2 are created"),
      ("app.xml", 8, "binding Probe->VM: multiplicities 1 / 3..* cannot be met with 2 Probe and 2 VM")]),
    ("binding to an unknown component", {"app.xml": APP.replace('<diagram', '<binding from="VM" to="Ghost"/>\n  <diagram')},
     [("app.xml", 9, "binding VM-Ghost: unknown component 'Ghost'")]),
    ("host family without nodes", {"nodes": "# none\n"},
     [("app.xml", 3, "host family g has no nodes (nodefile nodes is empty)")]),
    ("missing nodefile", {"nodes": None},
     [("nodes", None, "cannot read nodefile: [Errno 2] No such file or directory: '%s'"),
      ("app.xml", 3, "host family g has no nodes (nodefile nodes is empty)")]),
    ("unknown host family", {"app.xml": APP.replace('host-family="g"', 'host-family="h"')},
     [("app.xml", 4, "component VM: unknown host-family 'h'")]),
    ("no family and no binding", {"app.xml": APP.replace('<diagram', '<component name="Solo"/>\n  <diagram')},
     [("app.xml", 9, "component Solo: no host-family and no binding to place it by")]),
    ("missing legacyFile", {"app.xml": APP.replace('wrapper="probe.wdl"', 'wrapper="probe.wdl" legacyFile="p.tgz"')},
     [("app.xml", 7, "component Probe: legacyFile p.tgz not found")]),
    ("missing wrapper file", {"probe.wdl": None},
     [("probe.wdl", None, "cannot read: No such file or directory"),
      ("app.xml", 7, "component Probe: wrapper probe.wdl not found")]),
    ("wrapper key that does not import", {"vm.wdl": VM_WDL.replace("examples.xen_attitune.vm.XenVM\" method=\"migrate",
                                                                   "tune_no_such_mod.X\" method=\"migrate")},
     [("vm.wdl", 7, "cannot import 'tune_no_such_mod' for key 'tune_no_such_mod.X': "
                    "ModuleNotFoundError: No module named 'tune_no_such_mod'")]),
    ("class without the method", {"vm.wdl": VM_WDL.replace('method="migrate"', 'method="teleport"')},
     [("vm.wdl", 7, "class examples.xen_attitune.vm.XenVM has no method 'teleport' (wrapper method 'migrate')")]),
    ("unreachable diagram node", {"start.xml": START.replace('<final', '<action id="lost">VM.start</action>\n  <final')
                                  .replace("</diagram>", '<transition from="lost" to="e"/>\n</diagram>')},
     [("start.xml", 5, "diagram start: node lost is unreachable from the initial node")]),
    ("missing diagram file", {"start.xml": None}, [("start.xml", None, "cannot read: No such file or directory")]),
    ("on-failure to an unknown diagram", {"start.xml": START.replace('name="start"', 'name="start" on-failure="fix"')},
     [("start.xml", 2, "diagram start: on-failure names unknown diagram 'fix'")]),
    ("guard with unknown component and attribute",
     {"start.xml": START.replace('<action id="a">VM.start</action>', '<choice id="a"/>')
      .replace('<transition from="a" to="e"/>',
               '<transition from="a" to="e" guard="Ghost.count &gt; 1 or VM.nope == 2"/>\n'
               '<transition from="a" to="e" guard="else"/>')},
     [("start.xml", 7, "guard: component VM has no attribute 'nope'"),
      ("start.xml", 7, "guard: unknown component 'Ghost'")]),
    ("bad param expression", {"vm.wdl": VM_WDL.replace("$this.memory", "$")},
     [("vm.wdl", 5, "bad variable at '$' in '$'"),  # the wrapper is then unknown to the diagram
      ("start.xml", 4, "diagram start: component VM has no method 'start' (known: none (no wrapper))")]),
    ("hostile diagram node id", {"start.xml": START.replace('id="e"', 'id="e;rm"').replace('to="e"', 'to="e;rm"')},
     [("start.xml", 5, "<final> needs a valid 'id' (got 'e;rm')")]),
    ("namespaced wrapper", {"probe.wdl": PROBE_WDL.replace('<wrapper name', '<wrapper xmlns="urn:x" name')},
     [("probe.wdl", 2, "namespace 'urn:x' not expected ('wrapper')")]),
]


@pytest.mark.parametrize("changes,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problems(tmp_path, changes, expected):
    path = write_app(tmp_path, **changes)
    got = problems_of(path)
    expected = [(f, line, msg % (tmp_path / "nodes") if "%s" in msg else msg) for f, line, msg in expected]
    assert got == expected


def test_every_problem_at_once_from_the_bad_fixture():
    path = os.path.join(os.path.dirname(__file__), "data", "bad", "many", "app.xml")
    assert sorted(problems_of(path)) == sorted(MANY_PROBLEMS)


MANY_PROBLEMS = [
    ("app.xml", 4, "host family empty has no nodes (nodefile empty.nodes is empty)"),
    ("app.xml", 8, "component Probe: legacyFile missing.tar.gz not found"),
    ("app.xml", 10, "binding Probe->VM: multiplicities 1 / 1 cannot be met with 3 Probe and 2 VM"),
    ("vm.wdl", 5, "$this.nope: component VM has no attribute 'nope'"),
    ("vm.wdl", 6, "$Db.srname: component VM is not bound to Db"),
    ("db.wdl", 3, "cannot import 'tune_no_such_module_for_tests' for key 'tune_no_such_module_for_tests.Db': "
                  "ModuleNotFoundError: No module named 'tune_no_such_module_for_tests'"),
    ("db.wdl", 4, "class examples.xen_attitune.vm.XenVM has no method 'nope' (wrapper method 'stop')"),
    ("start.xml", 4, "diagram start: unknown component 'Ghost'"),
    ("start.xml", 5, "diagram start: component VM has no method 'fly' (known: start)"),
    ("start.xml", 6, "diagram start: node lost is unreachable from the initial node"),
]


def test_resolve_keys_false_skips_imports(tmp_path):
    path = write_app(tmp_path, vm_wdl=VM_WDL.replace("examples.xen_attitune.vm.XenVM", "tune_no_such_mod.X"))
    assert load_application(path, resolve_keys=False).name == "mini"


def test_a_bad_cdl_is_a_parse_error_not_a_list(tmp_path):
    path = write_app(tmp_path, app_xml=APP.replace("<family", "<famly"))
    with pytest.raises(TuneError) as info:
        load_application(path)
    assert (info.value.file, info.value.line) == (path, 3) and "unexpected <famly>" in info.value.message


def test_grid_replaces_families(tmp_path):
    path = write_app(tmp_path, nodes="# none\n")
    grid = tmp_path / "sub"
    grid.mkdir()
    (grid / "grid.xml").write_text('<grid><family name="g" nodefile="hosts" protocol="sim"/></grid>')
    (grid / "hosts").write_text("x\ny\n")
    app = load_application(path, grid=str(grid / "grid.xml"))
    assert [n.host for n in app.families["g"].nodes] == ["x", "y"]


# --- multiplicities against initial counts ----------------------------------------------------
def _binding_app(n_from, n_to, from_m, to_m):
    app = Application("m")
    app.components["A"] = ComponentType("A", host_family=None, initial=n_from)
    app.components["B"] = ComponentType("B", host_family=None, initial=n_to)
    app.bindings.append(Binding("A", "B", Multiplicity.parse(from_m), Multiplicity.parse(to_m)))
    return app


@pytest.mark.parametrize("n_from,n_to,from_m,to_m,ok", [
    (4, 4, "1", "1", True), (3, 2, "1", "1", False), (2, 3, "1", "1", False),
    (3, 1, "*", "1", True), (3, 1, "1..2", "1", False), (3, 1, "1..3", "1", True),
    (2, 4, "1", "1..4", True), (2, 4, "1", "2", True), (2, 5, "1", "2", False),
    (0, 3, "0..1", "1", True), (0, 3, "1", "1", False), (5, 0, "1", "0..1", True),
    (1, 1, "1", "2..*", False), (2, 2, "2..*", "2..*", True), (3, 3, "*", "*", True),
    (0, 0, "1", "1", True),
])
def test_multiplicities_against_initial_counts(n_from, n_to, from_m, to_m, ok):
    probs = [p for p in application_problems(_binding_app(n_from, n_to, from_m, to_m))
             if p.message.startswith("binding")]
    assert (probs == []) is ok, probs


def test_problem_str():
    assert str(Problem("m", "f", 3)) == "f:3: m" and str(Problem("m", "f")) == "f: m" and str(Problem("m")) == "m"
    exc = ValidationFailed([Problem("a", "f", 1), Problem("b")])
    assert str(exc) == "f:1: a\nb" and exc.exit_code == 2 and exc.message == "2 problem(s); first: f:1: a"


# --- mutations of the example folder ----------------------------------------------------------
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "xen_attitune")
TARGETS = ["app.xml", "nodes.sim", "wrappers/vm.wdl", "wrappers/probe.wdl", "diagrams/start.xml",
           "diagrams/overload.xml", "diagrams/stop.xml"]


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_example_only_raises_tune_errors(data):
    target = data.draw(st.sampled_from(TARGETS))
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "app")
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.uml"))
        with open(os.path.join(root, target), "rb") as fh:
            raw = fh.read()
        with open(os.path.join(root, target), "wb") as fh:
            fh.write(data.draw(mutated(raw, xml=not target.endswith(".sim"))))
        try:
            load_application(os.path.join(root, "app.xml"))
        except ValidationFailed as exc:
            assert exc.problems and all(p.message for p in exc.problems)
        except TuneError as exc:
            assert exc.file and exc.file.startswith(root)
