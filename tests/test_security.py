"""Security on the manager's side: private state, other users refused, secrets never written
out, and nothing run that a file or an event names except the declared wrapper classes.

(Host-key policies are covered by ``test_ssh.py`` and ``test_remote_hostkeys.py``; hostile
values through SSH commands by ``test_security_ssh.py``.)
"""

import json
import logging
import os
import shutil
import socket
import stat
import sys

import pytest

from tune.adl.loader import load_application
from tune.clock import SimClock
from tune.events.control import SOCKET_NAME, request
from tune.manager import Manager
from tune.testing import CALLS, wait_for

HERE = os.path.dirname(__file__)
WEB_DIR = os.path.join(HERE, "apps", "web")
NOBODY = 65534
SECRET = "hunter2"


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.reset()
    yield
    CALLS.reset()


def web_with_secret_param(tmp_path):
    """The web tier whose ``configure`` also hands the secret password to the wrapper."""
    d = tmp_path / "app"
    shutil.copytree(WEB_DIR, d)
    wdl = (d / "service.wdl").read_text()
    wdl = wdl.replace('<param value="$arg"/>', '<param value="$arg"/>\n    <param value="$this.password"/>', 1)
    (d / "service.wdl").write_text(wdl)
    app = (d / "app.xml").read_text().replace('    <attribute name="password" value="hunter2" secret="true"/>\n', "")
    app = app.replace('<attribute name="sleep" value="0"/>',
                      f'<attribute name="sleep" value="0"/><attribute name="password" value="{SECRET}" secret="true"/>')
    (d / "app.xml").write_text(app)
    return load_application(str(d / "app.xml"))


def as_nobody(fn):
    """Run ``fn()`` in a child process as uid/gid 65534; returns what it returned (a short str)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest, no threads of ours matter; report and leave
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                out = fn()
            except Exception as exc:  # noqa: BLE001
                out = f"{type(exc).__name__}: {exc}"
            os.write(w, out.encode()[:4000])
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode()


def _connect_and_ask(path):
    def go():
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(path)
        try:
            s.sendall(b'{"op": "status"}\n')
        except BrokenPipeError:
            pass  # the server answered and closed first
        reply = s.recv(65536)
        s.close()
        return "REPLY " + reply.decode()
    return go


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_state_is_private_and_other_users_are_refused(tmp_path):
    import pathlib
    import tempfile
    parent = tempfile.mkdtemp(prefix="tune-sec-")         # /tmp/pytest-of-root is 0700: use a
    os.chmod(parent, 0o711)                               # parent other users may traverse
    state = pathlib.Path(parent) / "state"
    m = Manager(load_application(os.path.join(WEB_DIR, "app.xml")), clock=SimClock(100), state_dir=str(state))
    try:
        m.deploy()
        sock = os.path.join(state, SOCKET_NAME)
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        # every file the manager keeps (SR snapshot, journal, known hosts) is the owner's only;
        # the simulated nodes' folders (simgrid/) stand for remote hosts and are left out
        for root, dirs, files in os.walk(state):
            dirs[:] = [d for d in dirs if os.path.join(root, d) != str(state / "simgrid")]
            for name in dirs + files:
                mode = stat.S_IMODE(os.lstat(os.path.join(root, name)).st_mode)
                assert mode & 0o077 == 0, (os.path.join(root, name), oct(mode))
        assert os.path.exists(state / "sr.json")
        # another user cannot even reach the socket or read the SR (0700 directory)
        out = as_nobody(_connect_and_ask(sock))
        assert out.startswith("PermissionError"), out
        out = as_nobody(lambda: open(state / "sr.json").read()[:10])
        assert out.startswith("PermissionError"), out
        # and if the directory were opened up by mistake, the socket itself checks the peer's uid
        os.chmod(state, 0o711)
        os.chmod(sock, 0o666)
        try:
            out = as_nobody(_connect_and_ask(sock))
        finally:
            os.chmod(state, 0o700)
            os.chmod(sock, 0o600)
        assert out.startswith("REPLY ") and json.loads(out[6:]) == {"ok": False, "error": "permission denied"}
        assert request(str(state), {"op": "status"})["ok"]      # the owner still gets in
    finally:
        m.shutdown()
        shutil.rmtree(parent, ignore_errors=True)


def test_secrets_never_appear_in_logs_sr_status_timeline_or_state_files(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    state = tmp_path / "state"
    m = Manager(web_with_secret_param(tmp_path), clock=SimClock(100), state_dir=str(state))
    try:
        m.deploy()
        m.emit("configure", "Web1", "x")
        m.emit("scale")
        request(str(state), {"op": "event", "name": "configure", "args": ["Web2", "y"]})
        assert wait_for(lambda: len(CALLS.of("configure")) >= 2 and not m._running, 10)
        # the secret did reach the wrapper that needs it ...
        assert any(SECRET in c.args for c in CALLS.of("configure"))
        # ... and nowhere else
        outputs = [caplog.text, json.dumps(m.status(), default=str), m.sr.to_json(),
                   json.dumps([e.to_dict() for e in m.timeline], default=str),
                   json.dumps(request(str(state), {"op": "sr"}), default=str),
                   json.dumps(request(str(state), {"op": "status"}), default=str),
                   json.dumps(request(str(state), {"op": "timeline"}), default=str)]
        assert all(SECRET not in text for text in outputs)
        assert "***" in m.sr.to_json()
    finally:
        m.shutdown()
    assert SECRET not in caplog.text
    for root, dirs, files in os.walk(state):       # sr.json, the journal, anything else kept
        dirs[:] = [d for d in dirs if d != "simgrid"]
        for name in files:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, "rb") as fh:
                    assert SECRET.encode() not in fh.read(), path


BAIT = "tune_bait_module"


@pytest.fixture
def bait(tmp_path, monkeypatch):
    """A module that, if ever imported or called, leaves a mark."""
    mark = tmp_path / "imported"
    (tmp_path / "bait").mkdir()
    (tmp_path / "bait" / f"{BAIT}.py").write_text(
        f"open({str(mark)!r}, 'a').write('import\\n')\n"
        "class Bait:\n"
        "    def __init__(self, *a):\n"
        f"        open({str(mark)!r}, 'a').write('call\\n')\n"
        "    def run(self, *a):\n"
        f"        open({str(mark)!r}, 'a').write('run\\n')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "bait"))
    yield mark
    sys.modules.pop(BAIT, None)


HOSTILE_NAMES = [f"{BAIT}.Bait.run", f"{BAIT}.Bait", "os.system", "__import__", "eval", "exec",
                 "tune.testing.RecordingService.start", "subprocess.run", "stop"]
HOSTILE_ARGS = [f"{BAIT}.Bait.run", "__import__('os').system('touch /tmp/x')", "$(touch /tmp/x)",
                "tune.testing.RecordingService.stop", "os.system", "; rm -rf /", "Web1.stop"]


def test_events_never_import_or_call_what_they_name(tmp_path, bait):
    state = tmp_path / "state"
    m = Manager(load_application(os.path.join(WEB_DIR, "app.xml")), clock=SimClock(100), state_dir=str(state))
    try:
        m.deploy()
        CALLS.reset()
        modules = set(sys.modules)
        pipe = m.executor("n1").path("/srv/tune/webtier/tune.pipe")
        lines = []
        for name in HOSTILE_NAMES:
            for arg in HOSTILE_ARGS:
                if name == "stop":                     # from Python or the socket, stop is legitimate
                    lines.append(f"{name};{arg}\n")
                    continue
                try:
                    m.emit(name, arg)
                except Exception:  # noqa: BLE001 - refused at the door is fine too
                    pass
                try:
                    request(str(state), {"op": "event", "name": name, "args": [arg]})
                except Exception:  # noqa: BLE001
                    pass
                lines.append(f"{name};{arg}\n")
        # diagram events whose arguments name code: the arguments stay strings
        for arg in HOSTILE_ARGS:
            m.emit("configure", "Web1", arg)
            lines.append(f"configure;Web2;{arg}\n")
        with open(pipe, "w") as fh:
            fh.write("".join(lines))
        assert wait_for(lambda: m.bus.counters["received"] >= len(HOSTILE_ARGS) * 2, 10)
        assert wait_for(lambda: m.bus.idle.is_set() and not m._running, 10)
        assert not bait.exists() and BAIT not in sys.modules
        new = {name for name in set(sys.modules) - modules if not name.startswith(("encodings", "_"))}
        assert not new, new
        # only declared wrapper methods ran, with the hostile text as a plain argument
        assert {c.method for c in CALLS.calls} <= {"configure"}
        assert {c.args for c in CALLS.of("configure")} == {("Web1", "Web1"), ("Web2", "Web2")}
        for arg in HOSTILE_ARGS:                       # an instance named by code is no instance
            m.emit("configure", arg)
        assert wait_for(lambda: m.bus.idle.is_set() and not m._running, 10)
        assert {c.args for c in CALLS.of("configure")} == {("Web1", "Web1"), ("Web2", "Web2")}
        assert m.bus.counters["rejected"] >= len(HOSTILE_ARGS)
        assert not m.stopping                          # "stop" from a node pipe was refused
        assert any(e.kind == "event.rejected" and "stop" in e.data["event"] for e in m.timeline)
    finally:
        m.shutdown()


def test_diagrams_and_wrappers_cannot_name_undeclared_code(tmp_path, bait):
    """An RDL action naming a Python path is not a component: validation refuses it."""
    from tune.errors import ValidationError

    d = tmp_path / "app"
    shutil.copytree(WEB_DIR, d)
    (d / "evil.xml").write_text(f'<diagram name="evil"><initial id="i"/><action id="a">{BAIT}.Bait.run</action>'
                                '<final id="e"/><transition from="i" to="a"/><transition from="a" to="e"/>'
                                '</diagram>')
    app_xml = (d / "app.xml").read_text().replace(
        '<diagram event="start"', '<diagram event="evil" file="evil.xml"/>\n  <diagram event="start"')
    (d / "app.xml").write_text(app_xml)
    with pytest.raises(ValidationError):
        app = load_application(str(d / "app.xml"))
        m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "state"))
        try:
            m.deploy()
            m.run_diagram("evil")
        finally:
            m.shutdown()
    assert not bait.exists() and BAIT not in sys.modules
