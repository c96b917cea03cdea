"""``tune validate`` through ``tune.cli.main``: exit codes, every problem as file:line, --json,
and no traceback for any class of bad input."""

import json
import os

import pytest

from test_validate import APP, MANY_PROBLEMS, PROBE_WDL, START, VM_WDL, write_app
from tune.adl.cdl import parse_cdl
from tune.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "data", "bad")


def run(capsys, *argv):
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def test_the_example_is_valid(capsys, example_dir):
    path = os.path.join(example_dir, "app.xml")
    code, out, err = run(capsys, path)
    assert code == 0 and err == ""
    app = parse_cdl(path)  # the example grows; derive what the summary must say from it
    components = ", ".join(f"{c.name} x{c.initial}" for c in app.components.values())
    assert out.startswith(f"{path}: valid application 'xen-attitune': {components}; families dom0 (6 slots)")
    assert out.endswith(f"; diagrams {', '.join(sorted(app.diagrams))}\n") and out.count("\n") == 1


def test_the_example_json(capsys, example_dir):
    code, out, _ = run(capsys, os.path.join(example_dir, "app.xml"), "--json")
    assert code == 0
    data = json.loads(out)
    app = parse_cdl(os.path.join(example_dir, "app.xml"))
    assert data["valid"] is True and data["components"] == {c.name: c.initial for c in app.components.values()}
    assert data["components"]["VM"] == 4 and data["components"]["Probe"] == 4
    assert data["families"]["dom0"] == 6 and "Probe->VM 1/1" in data["bindings"]
    assert data["diagrams"] == sorted(app.diagrams) and {"overload", "start", "stop"} <= set(data["diagrams"])


def test_every_problem_is_listed_as_file_line_message(capsys):
    path = os.path.join(BAD, "many", "app.xml")
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[-1] == f"tune: {len(MANY_PROBLEMS)} problem(s)"
    base = os.path.dirname(path)
    assert sorted(lines[:-1]) == sorted(f"{os.path.join(base, f)}:{line}: {msg}" for f, line, msg in MANY_PROBLEMS)


def test_every_problem_in_json(capsys):
    path = os.path.join(BAD, "many", "app.xml")
    code, out, err = run(capsys, path, "--json")
    assert code == 2
    data = json.loads(out)
    assert data["error"] == "ValidationFailed" and data["exit_code"] == 2
    base = os.path.dirname(path)
    got = sorted((os.path.relpath(p["file"], base), p["line"], p["message"]) for p in data["problems"])
    assert got == sorted(MANY_PROBLEMS)


CDL_CASES = [  # fixture file, line, message fragment
    ("malformed.xml", 4, "malformed XML: Opening and ending tag mismatch"),
    ("wrong_root.xml", 2, "expected <application> (no namespace), found <app>"),
    ("namespace_root.xml", 2, "expected <application> (no namespace)"),
    ("namespace_child.xml", 3, "namespace 'http://tune/cdl' not expected ('component')"),
    ("missing_name.xml", 3, "<component> needs a 'name' attribute"),
    ("missing_to.xml", 3, "<binding> needs a 'to' attribute"),
    ("duplicate_family.xml", 4, "duplicate family 'f'"),
    ("duplicate_component.xml", 4, "duplicate component 'C'"),
    ("duplicate_attribute.xml", 5, "component C: duplicate attribute 'x'"),
    ("duplicate_diagram.xml", 4, "two diagrams for event 'e'"),
    ("multiplicity_3__1.xml", 5, "impossible multiplicity '3..1'"),
    ("multiplicity_0.xml", 5, "impossible multiplicity '0'"),
    ("multiplicity_x.xml", 5, "bad multiplicity 'x'"),
    ("long_name.xml", 3, "bad component name 'CCCC"),
    ("hostile_rm.xml", 3, "bad component name '\"; rm -rf /'"),
    ("hostile_subst.xml", 3, "bad family name '$(x)'"),
    ("hostile_newline.xml", 3, "bad component name 'a\\nb'"),
    ("hostile_tab.xml", 3, "bad component name 'a\\tb'"),
    ("hostile_control.xml", 3, "malformed XML: xmlParseCharRef: invalid xmlChar value 27"),
    ("hostile_raw_control.xml", 3, "malformed XML"),
    ("hostile_unicode.xml", 3, "bad component name '\u00e9t\u00e9'"),
    ("hostile_bidi.xml", 3, "bad event name 'e\\u202e'"),
    ("../xxe_passwd.xml", 1, "refused entity"),
    ("../billion_laughs.xml", 1, "DTD entity declarations are not allowed"),
]


@pytest.mark.parametrize("name,line,fragment", CDL_CASES, ids=[c[0] for c in CDL_CASES])
def test_bad_cdl_files(capsys, name, line, fragment):
    path = os.path.normpath(os.path.join(BAD, "cdl", name))
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert err.startswith(f"tune: error: {path}:{line}: ") and fragment in err
    assert err.count("\n") == 1  # one line, no traceback
    assert "root:x:0" not in err
    code, out, _ = run(capsys, path, "--json")
    data = json.loads(out)
    assert code == 2 and (data["file"], data["line"], data["exit_code"]) == (path, line, 2)
    assert err == f"tune: error: {path}:{line}: {data['message']}\n"
    if "entit" in fragment:
        assert data["error"] == "XMLSecurityError"


def test_no_such_file(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "nope.xml"))
    assert code == 2 and err == f"tune: error: {tmp_path / 'nope.xml'}: no such file\n"


OTHER_CASES = [  # (what, files to change, [(file, line, message fragment)])
    ("duplicate wrapper methods",
     {"probe.wdl": PROBE_WDL.replace("</wrapper>", '  <method name="start" key="a.B"/>\n</wrapper>')},
     [("probe.wdl", 7, "duplicate method 'start'")]),
    ("duplicate diagram node ids", {"start.xml": START.replace('<final id="e"/>', '<final id="a"/>')},
     [("start.xml", 5, "duplicate node id 'a'")]),
    ("dangling transition", {"start.xml": START.replace('from="a" to="e"', 'from="a" to="ghost"')},
     [("start.xml", 7, "transition refers to unknown node 'ghost'")]),
    ("cycle without a choice", {"start.xml": START.replace(
        '<transition from="a" to="e"/>', '<transition from="a" to="a"/>\n  <transition from="a" to="e"/>')},
     [("start.xml", 4, "action a needs exactly one outgoing transition (has 2)"),
      ("start.xml", 4, "has a cycle that does not pass through a choice")]),
    ("over-long method name", {"probe.wdl": PROBE_WDL.replace('name="start"', 'name="%s"' % ("s" * 65))},
     [("probe.wdl", 3, "<method> needs a valid 'name'")]),
    ("hostile method name", {"probe.wdl": PROBE_WDL.replace('name="start"', 'name="start; rm -rf /"')},
     [("probe.wdl", 3, "<method> needs a valid 'name' (got 'start; rm -rf /')")]),
    ("hostile key", {"vm.wdl": VM_WDL.replace('key="examples.xen_attitune.vm.XenVM" method="start"',
                                              'key="os.system(\'id\')" method="start"')},
     [("vm.wdl", 3, "'key' must be a dotted path module.Class")]),
    ("wrong wrapper root", {"probe.wdl": '<?xml version="1.0"?>\n<wdl name="Probe"/>\n'},
     [("probe.wdl", 2, "expected <wrapper>, found <wdl>")]),
    ("namespace in a diagram", {"start.xml": START.replace('<diagram name', '<diagram xmlns="urn:x" name')},
     [("start.xml", 2, "namespace 'urn:x' not expected ('diagram')")]),
    ("transition without to", {"start.xml": START.replace('<transition from="a" to="e"/>', '<transition from="a"/>')},
     [("start.xml", 7, "<transition> needs 'from' and 'to'")]),
    ("external entity in a diagram", {"start.xml": START.replace(
        '<?xml version="1.0"?>', '<?xml version="1.0"?><!DOCTYPE diagram [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
        .replace("VM.start", "VM.start &x;")},
     [("start.xml", 1, "DTD entity declarations are not allowed")]),
    ("malformed wrapper", {"vm.wdl": VM_WDL.replace("</wrapper>", "")},
     [("vm.wdl", 12, "malformed XML: Premature end of data in tag wrapper")]),
    ("bad nodefile line", {"nodes": "h1\nroot@h2:99999\n"}, [("nodes", 2, "bad port '99999'")]),
    ("unknown host family", {"app.xml": APP.replace('host-family="g"', 'host-family="nope"')},
     [("app.xml", 4, "component VM: unknown host-family 'nope'")]),
]


@pytest.mark.parametrize("changes,expected", [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_bad_wrappers_diagrams_and_nodefiles(capsys, tmp_path, changes, expected):
    path = write_app(tmp_path, **changes)
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert "root:x:0" not in err
    for name, line, fragment in expected:
        prefix = f"{tmp_path / name}:{line}: " if name != "app.xml" else f"{path}:{line}: "
        assert any(l.startswith(prefix) and fragment in l for l in lines), (prefix, fragment, lines)
    assert lines[-1].startswith("tune: ") and lines[-1].endswith("problem(s)")


def test_grid_option(capsys, tmp_path):
    path = write_app(tmp_path, nodes="# none\n")
    (tmp_path / "grid.xml").write_text('<grid><family name="g" nodefile="hosts" protocol="sim"/></grid>')
    (tmp_path / "hosts").write_text("a\nb\nb\n")
    code, out, _ = run(capsys, path, "--grid", str(tmp_path / "grid.xml"))
    assert code == 0 and "families g (3 slots)" in out
    (tmp_path / "grid.xml").write_text("<grid><node/></grid>")
    code, _, err = run(capsys, path, "--grid", str(tmp_path / "grid.xml"))
    assert code == 2 and err == f"tune: error: {tmp_path / 'grid.xml'}:1: unexpected <node> in <grid>\n"
