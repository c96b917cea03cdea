"""The documentation is executed: every command shown runs, every file shown is the real file,
every format example parses.

Markers (HTML comments just before a fenced block):
``<!-- file: PATH -->``  the block is exactly the content of PATH in the repository;
``<!-- run -->``         a shell block run with bash from the repository root (``set -e``);
``<!-- run: root -->``   the same, only as root with the namespace test bed available;
``<!-- run: python -->`` a Python block run from the repository root;
``<!-- validate: KIND -->`` a format example parsed by tune's own parser;
``<!-- not run: WHY -->`` a command that cannot run here (the reason is shown to the reader).
A ``sh`` block without any marker fails the test: nothing shown goes unchecked.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "docs/tutorial.md", "docs/formats.md", "docs/python-api.md"]
BLOCK_RE = re.compile(r"(?:<!--\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```(?P<lang>[a-z-]*)\n(?P<body>.*?)\n```", re.S)


def blocks(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as fh:
        text = fh.read()
    for m in BLOCK_RE.finditer(text):
        yield (m.group("marker") or "").strip(), m.group("lang"), m.group("body"), text[:m.start()].count("\n") + 1


ALL = [(doc, *b) for doc in DOCS if os.path.exists(os.path.join(ROOT, doc)) for b in blocks(doc)]


def ids(items):
    return [f"{doc}:{line}" for doc, _m, _l, _b, line in items]


def root_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces, sshd, QEMU)"
    try:
        from tune.testbed.netns import testbed_missing_reason
    except ImportError:  # pragma: no cover
        return "test bed not available"
    return testbed_missing_reason()


def test_every_shell_block_is_run_or_says_why():
    unmarked = [f"{doc}:{line}" for doc, marker, lang, _b, line in ALL
                if lang in ("sh", "bash", "console") and not marker]
    assert unmarked == [], "shell blocks without a run/not-run marker"


FILES = [x for x in ALL if x[1].startswith("file:")]


@pytest.mark.parametrize("doc,marker,lang,body,line", FILES, ids=ids(FILES))
def test_shown_files_are_the_real_files(doc, marker, lang, body, line):
    path = marker.split(":", 1)[1].strip()
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        assert fh.read().rstrip("\n") == body.rstrip("\n"), f"{doc}:{line} differs from {path}"


def _validate(kind, body, tmp_path):
    from tune.adl.cdl import parse_cdl, parse_grid
    from tune.adl.nodefile import parse_nodefile_text
    from tune.diagrams.guards import parse_guard
    from tune.diagrams.rdl import parse_rdl
    from tune.diagrams.validate import diagram_problems
    from tune.events.event import parse_pipe_line
    from tune.wdl.parser import parse_wdl
    data = body.encode()
    if kind == "cdl":
        app = parse_cdl("doc.xml", data)
        assert app.components and app.bindings
    elif kind == "grid":
        p = tmp_path / "grid.xml"
        p.write_bytes(data)
        assert parse_grid(str(p))
    elif kind == "nodefile":
        assert parse_nodefile_text(body)
    elif kind == "inventory-ini":
        from tune.adl.inventory import parse_inventory
        p = tmp_path / "hosts.ini"
        p.write_text(body)
        assert parse_inventory(str(p), group="dom0")
    elif kind == "uml":
        from tune.adl.uml import parse_uml
        assert parse_uml("doc.uml", data).components
    elif kind == "wdl":
        assert parse_wdl("doc.wdl", data).methods
    elif kind == "rdl":
        d = parse_rdl("doc.xml", data)
        assert diagram_problems(d) == []
    elif kind == "guard":
        parse_guard(body.strip())
    elif kind == "event-line":
        assert parse_pipe_line(body.strip()).args
    elif kind == "scenario":
        from tune.manager.scenario import parse_scenario
        p = tmp_path / "s.yaml"
        p.write_text(body)
        assert parse_scenario(str(p)).steps
    else:
        raise AssertionError(f"unknown validate kind {kind!r}")


VALIDATE = [x for x in ALL if x[1].startswith("validate:")]


@pytest.mark.parametrize("doc,marker,lang,body,line", VALIDATE, ids=ids(VALIDATE))
def test_format_examples_parse(doc, marker, lang, body, line, tmp_path):
    _validate(marker.split(":", 1)[1].strip(), body, tmp_path)


RUN = [x for x in ALL if x[1] == "run" or x[1].startswith("run:")]


_GROUPS: list[int] = []


def _stop_group(pgid):
    """SIGTERM (a manager undeploys on it), then SIGKILL, what a block left running."""
    import signal
    import time
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@pytest.fixture(scope="module", autouse=True)
def _stop_leftovers():
    """A block may leave a manager running for the next blocks (``tune deploy ... &``); whatever is
    still running when the documentation has been run is stopped."""
    yield
    while _GROUPS:
        _stop_group(_GROUPS.pop())


def _run_shell(body, tmp_path, timeout=600, cleanup=""):
    """Run a block in its own process group.  A failing block's leftovers are stopped at once
    (and a block that brought the test bed up takes it down); a passing block's stay for the
    next blocks, as they do for a reader following the tutorial."""
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), PYTHONPATH=ROOT)
    p = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + body], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    ok = False
    try:
        out, err = p.communicate(timeout=timeout)
        ok = p.returncode == 0
    finally:
        if ok:
            _GROUPS.append(p.pid)
        else:
            _stop_group(p.pid)
            if p.poll() is None:
                p.kill()
                p.wait()
            if cleanup:
                subprocess.run(["bash", "-c", cleanup], cwd=ROOT, env=env, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.mark.parametrize("doc,marker,lang,body,line", RUN, ids=ids(RUN))
def test_documented_commands_run(doc, marker, lang, body, line, tmp_path):
    kind = marker.split(":", 1)[1].strip() if ":" in marker else "sh"
    if kind == "root":
        reason = root_reason()
        if reason:
            pytest.skip(reason)
    if kind == "python":
        r = subprocess.run([sys.executable, "-c", body], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=ROOT))
    else:
        # a root block that brings the test bed up takes it down again, even when it fails
        cleanup = "python3 -m tune.testbed down" if "tune.testbed up" in body else ""
        r = _run_shell(body, tmp_path, cleanup=cleanup)
    assert r.returncode == 0, f"{doc}:{line} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr
