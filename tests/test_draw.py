"""``tune draw``: deployment graph, UML activity diagrams and the live SR, drawn by Graphviz."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from tune.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE = os.path.join(ROOT, "examples", "xen_attitune")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's 'dot' is not installed (apt-get install graphviz)")
pytest.importorskip("graphviz", reason="the 'graphviz' Python package is not installed (pip install graphviz)")


def draw(capsys, *argv):
    code = main(["draw", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def svg_texts(path: str) -> list[str]:
    """Every text of the picture (SVG parses as XML), with runs of spaces collapsed."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg"
    return [" ".join("".join(t.itertext()).split()) for t in root.iter(f"{SVG_NS}text")]


def svg_tooltips(path: str) -> list[str]:
    root = ET.parse(path).getroot()
    return [v for el in root.iter() for k, v in el.attrib.items() if k.endswith("title")]


def check_png(path: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    assert head == PNG_SIGNATURE and os.path.getsize(path) > 1000


# --- the application ------------------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("model", ["app.xml", "xen_attitune.uml"])
def test_draw_the_example(capsys, tmp_path, model):
    out_dir = tmp_path / "pics"
    code, out, err = draw(capsys, os.path.join(EXAMPLE, model), "-o", str(out_dir))
    assert code == 0 and err == ""
    from tune.adl.loader import load_application
    events = sorted(load_application(os.path.join(EXAMPLE, model)).diagram_graphs)
    assert {"overload", "start", "stop"} <= set(events)
    stems = ["deployment"] + [f"diagram-{e}" for e in events]
    assert sorted(os.listdir(out_dir)) == sorted(f"{s}.{f}" for s in stems for f in ("png", "svg"))
    assert out.splitlines() == [f"wrote {out_dir / s}.{f}" for s in sorted(stems) for f in ("svg", "png")]
    for s in stems:
        check_png(str(out_dir / f"{s}.png"))

    dep = svg_texts(str(out_dir / "deployment.svg"))
    for label in ("application xen-attitune", "«component»", "VM", "Probe", "«host family»", "dom0",
                  "3 nodes, 6 slots", "memory = 1024", "threshold = 80", "initial: 4", "family: dom0",
                  "placed beside VM", "«deploy»", "dom0-a ×2"):
        assert label in dep, label
    assert dep.count("1") >= 2  # the Probe-VM binding's multiplicity at each end

    over = svg_texts(str(out_dir / "diagram-overload.svg"))
    assert "diagram overload" in over and "on event overload" in over
    assert '[$arg.state == "started"]' in over and "[else]" in over
    assert "$arg.migrate" in over and "$arg.Probe.follow" in over
    app = load_application(os.path.join(EXAMPLE, model))
    for event, d in app.diagram_graphs.items():  # every node is drawn, as what it is
        tips = set(svg_tooltips(str(out_dir / f"diagram-{event}.svg")))
        assert {f"{n.kind.value} {n.id}" for n in d.nodes.values()} <= tips
    kinds = {n.kind.value for n in app.diagram_graphs["start"].nodes.values()}
    assert {"fork", "join"} <= kinds
    assert {"VM.start", "Probe.start"} <= set(svg_texts(str(out_dir / "diagram-start.svg")))


def write_web_app(tmp_path) -> str:
    """Three tiers, every kind of multiplicity, a secret, a diagram with every node kind."""
    (tmp_path / "diagrams").mkdir()
    (tmp_path / "front.nodes").write_text("f1\n")
    (tmp_path / "back.nodes").write_text("b1\nb1\nb2\nb3\n")
    methods = "".join(f'<method name="{m}" key="examples.xen_attitune.vm.XenVM" method="start"/>'
                      for m in ("start", "restart", "reload", "check", "log"))
    (tmp_path / "generic.wdl").write_text(f'<wrapper name="Generic">{methods}</wrapper>')
    (tmp_path / "app.xml").write_text(textwrap.dedent("""\
        <application name="web-3tier">
          <family name="front" nodefile="front.nodes" protocol="sim"/>
          <family name="back" nodefile="back.nodes" protocol="sim"/>
          <component name="Apache" wrapper="generic.wdl" host-family="front" initial="1">
            <attribute name="port" value="80"/>
          </component>
          <component name="Tomcat" wrapper="generic.wdl" host-family="back" initial="2">
            <attribute name="heap" value="512m"/>
          </component>
          <component name="MySQL" wrapper="generic.wdl" host-family="back" initial="1">
            <attribute name="password" value="s3cr3t" secret="true"/>
          </component>
          <component name="Probe" wrapper="generic.wdl" initial="2"/>
          <binding from="Apache" to="Tomcat" from-multiplicity="1" to-multiplicity="1..4"/>
          <binding from="Tomcat" to="MySQL" from-multiplicity="*" to-multiplicity="1"/>
          <binding from="Probe" to="Tomcat" from-multiplicity="1" to-multiplicity="1"/>
          <diagram event="repair" file="diagrams/repair.xml"/>
        </application>
        """))
    (tmp_path / "diagrams" / "repair.xml").write_text(textwrap.dedent("""\
        <diagram name="repair" on-failure="repair">
          <initial id="i"/>
          <choice id="c"/>
          <action id="grow">Tomcat++ 2; $new.start</action>
          <action id="restart">$arg.restart</action>
          <fork id="f"/>
          <action id="a">Apache.reload</action>
          <fork id="f2"/>
          <action id="b">MySQL.check</action>
          <action id="b2">Probe.log "a &lt;b&gt; &amp; c"</action>
          <join id="j2"/>
          <join id="j"/>
          <final id="end"/>
          <final id="quick"/>
          <transition from="i" to="c"/>
          <transition from="c" to="grow" guard="Tomcat.count &lt; 4 and $arg.cpu &gt;= 90"/>
          <transition from="c" to="restart" guard="else"/>
          <transition from="restart" to="quick"/>
          <transition from="grow" to="f"/>
          <transition from="f" to="a"/><transition from="f" to="f2"/>
          <transition from="f2" to="b"/><transition from="f2" to="b2"/>
          <transition from="b" to="j2"/><transition from="b2" to="j2"/>
          <transition from="a" to="j"/><transition from="j2" to="j"/>
          <transition from="j" to="end"/>
        </diagram>
        """))
    return str(tmp_path / "app.xml")


@needs_dot
def test_draw_multiplicities_secrets_guards_and_odd_characters(capsys, tmp_path):
    app = write_web_app(tmp_path)
    code, out, _ = draw(capsys, app, "-o", str(tmp_path / "pics"), "--json")
    assert code == 0
    data = json.loads(out)
    files = sorted(os.path.basename(f) for f in data["files"])
    assert files == ["deployment.png", "deployment.svg", "diagram-repair.png", "diagram-repair.svg"]
    assert data["application"] == "web-3tier" and data["diagrams"] == ["repair"]

    dep = svg_texts(str(tmp_path / "pics" / "deployment.svg"))
    for label in ("Apache", "Tomcat", "MySQL", "Probe", "front", "back", "1 node", "3 nodes, 4 slots",
                  "1..4", "*", "password = ***", "placed beside Tomcat", "b1 ×2"):
        assert label in dep, label
    raw = (tmp_path / "pics" / "deployment.svg").read_text()
    assert "s3cr3t" not in raw
    assert "each Apache bound to 1..4 Tomcat, each Tomcat to 1 Apache" in " ".join(
        svg_tooltips(str(tmp_path / "pics" / "deployment.svg")))

    rep = svg_texts(str(tmp_path / "pics" / "diagram-repair.svg"))
    assert "[Tomcat.count < 4 and $arg.cpu >= 90]" in rep and "[else]" in rep
    assert "Tomcat++ 2" in rep and "$new.start" in rep  # one line per action of the node
    assert 'Probe.log "a <b> & c"' in rep
    assert "on event repair; on failure: repair" in rep
    tips = svg_tooltips(str(tmp_path / "pics" / "diagram-repair.svg"))
    assert {"fork f", "fork f2", "join j", "join j2", "final end", "final quick", "choice c"} <= set(tips)


@needs_dot
def test_format_option(capsys, tmp_path):
    code, _, _ = draw(capsys, os.path.join(EXAMPLE, "app.xml"), "-o", str(tmp_path), "--format", "svg,dot")
    assert code == 0
    names = os.listdir(tmp_path)
    assert {f"{s}.{f}" for s in ("deployment", "diagram-overload", "diagram-start", "diagram-stop")
            for f in ("svg", "dot")} <= set(names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"svg", "dot"}
    assert (tmp_path / "deployment.dot").read_text().startswith("digraph")


def test_dot_source_needs_no_graphviz_program(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    code, _, err = draw(capsys, os.path.join(EXAMPLE, "app.xml"), "-o", str(tmp_path), "--format", "dot")
    assert code == 0 and err == ""
    code, _, err = draw(capsys, os.path.join(EXAMPLE, "app.xml"), "-o", str(tmp_path))
    assert code == 2 and "Graphviz's 'dot' program" in err and "apt-get install graphviz" in err


def test_missing_python_package_is_a_clear_usage_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz -> ImportError
    code, _, err = draw(capsys, os.path.join(EXAMPLE, "app.xml"), "-o", str(tmp_path))
    assert code == 2 and "'graphviz' Python package" in err and "pip install graphviz" in err


@pytest.mark.parametrize("argv,message", [
    ([], "give an application file"),
    (["APP", "--sr"], "not both"),
    (["APP", "--sr-file", "x.json"], "--sr-file goes with --sr"),
    (["APP", "--format", "gif"], "unknown picture format gif"),
])
def test_usage_errors(capsys, tmp_path, argv, message):
    argv = [os.path.join(EXAMPLE, "app.xml") if a == "APP" else a for a in argv]
    code, _, err = draw(capsys, *argv, "-o", str(tmp_path))
    assert code == 2 and message in err


def test_invalid_application_is_refused_with_its_problems(capsys, tmp_path):
    (tmp_path / "app.xml").write_text('<application name="x"><component name="A" host-family="nope"/>'
                                      "</application>")
    code, _, err = draw(capsys, str(tmp_path / "app.xml"), "-o", str(tmp_path / "pics"))
    assert code == 2 and "nope" in err
    assert not (tmp_path / "pics").exists()


# --- the System Representation --------------------------------------------------------------
SNAPSHOT = {
    "application": "demo", "version": 7,
    "nodes": [
        {"id": "h1", "family": "dom0", "host": "h1", "address": "10.0.0.1", "slots": 2, "state": "up"},
        {"id": "h2", "family": "dom0", "host": "h2", "slots": 1, "state": "down"},
        {"id": "h3", "family": "dom0", "host": "h3", "slots": 1, "state": "off"},
    ],
    "instances": [
        {"srname": "VM1", "type": "VM", "state": "started", "node": "h1", "uses_slot": True},
        {"srname": "Probe1", "type": "Probe", "state": "starting", "node": "h1", "uses_slot": False},
        {"srname": "VM2", "type": "VM", "state": "failed", "node": "h2", "error": "xl create: <no memory>"},
        {"srname": "VM3", "type": "VM", "state": "stopped", "node": None},
    ],
    "bindings": [["Probe1", "VM1"]],
}


@needs_dot
def test_sr_from_a_saved_snapshot(capsys, tmp_path):
    snap = tmp_path / "sr.json"
    snap.write_text(json.dumps(SNAPSHOT))
    code, out, _ = draw(capsys, "--sr", "--sr-file", str(snap), "-o", str(tmp_path / "pics"))
    assert code == 0 and out.splitlines() == [f"wrote {tmp_path / 'pics' / 'sr.svg'}",
                                               f"wrote {tmp_path / 'pics' / 'sr.png'}"]
    check_png(str(tmp_path / "pics" / "sr.png"))
    texts = svg_texts(str(tmp_path / "pics" / "sr.svg"))
    for label in ("system representation demo", "version 7", "h1", "h2", "h3", "not placed", "VM1", "Probe1",
                  "VM2", "VM3", "started", "starting", "failed", "stopped", "xl create: <no memory>",
                  "10.0.0.1 · family dom0 · up · 1/2 slots", "family dom0 · down · 1/1 slots",
                  "family dom0 · off · 0/1 slots", "(empty)"):
        assert label in texts, label
    raw = (tmp_path / "pics" / "sr.svg").read_text()
    for colour in ("#8fd18f", "#fff2a8", "#f28b82", "#d9d9d9"):  # started, starting, failed, stopped
        assert f'fill="{colour}"' in raw
    assert {"Probe Probe1", "VM VM2"} <= set(svg_tooltips(str(tmp_path / "pics" / "sr.svg")))
    # the binding is an edge between the two instances
    root = ET.parse(str(tmp_path / "pics" / "sr.svg")).getroot()
    edges = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]
    assert len(edges) == 1


@pytest.mark.parametrize("content,message", [("{not json", "not a JSON SR snapshot"),
                                             ('["a list"]', "not a System Representation")])
def test_sr_file_errors(capsys, tmp_path, content, message):
    snap = tmp_path / "sr.json"
    snap.write_text(content)
    code, _, err = draw(capsys, "--sr", "--sr-file", str(snap), "-o", str(tmp_path / "pics"))
    assert code == 2 and message in err
    code, _, err = draw(capsys, "--sr", "--sr-file", str(tmp_path / "none.json"), "-o", str(tmp_path))
    assert code == 2 and "cannot read SR snapshot" in err


def test_sr_without_a_running_manager(capsys, tmp_path):
    (tmp_path / "st").mkdir()
    code, _, err = draw(capsys, "--sr", "--state-dir", str(tmp_path / "st"), "-o", str(tmp_path / "pics"))
    assert code == 1 and err.startswith("tune: ")


@needs_dot
def test_sr_live_from_a_running_manager(capsys, tmp_path):
    from tune.adl.loader import load_application
    from tune.clock import SimClock
    from tune.manager import Manager

    m = Manager(load_application(os.path.join(EXAMPLE, "app.xml")), clock=SimClock(50),
                state_dir=str(tmp_path / "st"))
    try:
        m.deploy()
        code, out, err = draw(capsys, "--sr", "--state-dir", str(tmp_path / "st"), "-o", str(tmp_path / "live"),
                              "--json")
        assert code == 0, err
        data = json.loads(out)
        sr = m.sr.to_dict()
        assert data["application"] == "xen-attitune"
        assert data["instances"] == len(sr["instances"]) >= 8 and data["nodes"] == len(sr["nodes"]) >= 3
        texts = svg_texts(str(tmp_path / "live" / "sr.svg"))
        for inst in sr["instances"]:
            assert inst["srname"] in texts and inst["state"] in texts
        for label in ("VM1", "VM2", "VM3", "VM4", "Probe1", "Probe4", "dom0-a", "dom0-b", "dom0-c", "started",
                      "family dom0 · up · 2/2 slots"):
            assert label in texts, label
        check_png(str(tmp_path / "live" / "sr.png"))
        root = ET.parse(str(tmp_path / "live" / "sr.svg")).getroot()
        edges = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]
        assert len(edges) == len(sr["bindings"]) >= 4  # at least Probe i -> VM i
        # the manager's saved snapshot draws the same picture
        code, _, _ = draw(capsys, "--sr", "--sr-file", str(tmp_path / "st" / "sr.json"), "-o", str(tmp_path / "saved"))
        assert code == 0
        assert sorted(svg_texts(str(tmp_path / "saved" / "sr.svg"))) == sorted(texts)
    finally:
        m.shutdown()


def test_safe_stem():
    from tune.draw import safe_stem
    assert safe_stem("overload") == "overload"
    assert safe_stem("../../etc/passwd") == "_.._etc_passwd"
    assert safe_stem("") == "unnamed" and safe_stem("a b/c") == "a_b_c"
