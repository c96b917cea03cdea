"""The journal: SQLite in WAL mode, private, intents before and outcomes after, SR snapshots,
the crash-point hook, redaction of secrets in wrapper-call records."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys

import pytest

from tune.adl.loader import load_application
from tune.clock import SimClock
from tune.components import Component
from tune.components.sr import SystemRepresentation
from tune.manager import Manager
from tune.manager.journal import Journal, JournalError
from tune.manager.runner import _redacted

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
XEN = os.path.join(ROOT, "examples", "xen_attitune", "app.xml")


def test_journal_is_private_wal_and_reads_back(tmp_path):
    j = Journal.open(str(tmp_path / "state"))
    a = j.write("run.begin", {"diagram": "d"})
    b = j.write("call.intent", {"instance": "X1", "method": "start"}, run=a)
    j.write("call.done", {"instance": "X1"}, ref=b, run=a)
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        path = tmp_path / "state" / name
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, name
    assert j.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [(r.kind, r.ref, r.run) for r in j.records()] == [("run.begin", None, None), ("call.intent", None, a),
                                                              ("call.done", b, a)]
    assert [r.seq for r in j.open_intents()] == [a]          # the run never ended
    j.write("run.end", {}, ref=a)
    assert j.open_intents() == []
    j.close()
    again = Journal.open(str(tmp_path / "state"))            # another process's view
    assert [r.kind for r in again.records()] == ["run.begin", "call.intent", "call.done", "run.end"]
    again.close()


def test_group_commit_async_records_commit_soon_sync_ones_at_once(tmp_path):
    import time as _time
    j = Journal.open(str(tmp_path / "s"))
    other = sqlite3.connect(str(tmp_path / "s" / "journal.sqlite"))   # what a crash would leave

    def on_disk():
        return [k for (k,) in other.execute("SELECT kind FROM records ORDER BY seq")]

    j.write("run.begin")                                   # asynchronous: committed by the background
    j.write("call.intent", {"instance": "A1", "method": "start"})   # synchronous: committed now
    assert on_disk() == ["run.begin", "call.intent"]       # (with everything written before it)
    j.write("call.intent", {"instance": "A1", "method": "configure"})
    deadline = _time.monotonic() + 2
    while on_disk() != ["run.begin", "call.intent", "call.intent"] and _time.monotonic() < deadline:
        _time.sleep(0.005)
    assert on_disk() == ["run.begin", "call.intent", "call.intent"]
    j.write("migrate.intent", {"vm": "VM1"})
    assert on_disk()[-1] == "migrate.intent"
    j.write("node.end")
    j.close()                                               # closing commits the rest
    assert on_disk()[-1] == "node.end"


def test_live_deployment_until_undeployed(tmp_path):
    j = Journal.open(str(tmp_path))
    assert j.live_deployment() is None
    d1 = j.write("deploy.begin")
    assert j.live_deployment().seq == d1
    j.write("undeploy.end")
    assert j.live_deployment() is None
    d2 = j.write("deploy.begin")
    assert j.live_deployment().seq == d2


def test_a_fresh_deployment_keeps_only_the_previous_one(tmp_path):
    j = Journal.open(str(tmp_path))
    for _ in range(3):
        j.write("deploy.begin")
        j.write("run.begin")
        j.write("undeploy.end")
    assert [(r.seq, r.kind) for r in j.records()] == [(4, "deploy.begin"), (5, "run.begin"), (6, "undeploy.end"),
                                                      (7, "deploy.begin"), (8, "run.begin"), (9, "undeploy.end")]


def test_snapshots_with_structural_records_and_at_most_every_interval(tmp_path):
    j = Journal.open(str(tmp_path), snapshot_interval=3600)
    sr = SystemRepresentation("app")
    sr.add_instance(Component("A1", "A", {"pw": "s3cret", "x": "1"}, secret=frozenset({"pw"})))
    j.write("call.intent", sr=sr)       # the first write snapshots (the interval has passed)
    sr.set_attribute("A1", "x", "2")
    j.write("assign", sr=sr)            # changed, but not structural and within the interval: no snapshot
    j.write("relocate", sr=sr)          # structural: snapshot
    j.write("relocate", sr=sr)          # structural, unchanged: no snapshot
    j.flush()
    assert [r for (r,) in j.db.execute("SELECT record FROM snapshots ORDER BY record")] == [1, 3]
    seq, snap = j.last_snapshot()
    assert seq == 3 and snap["instances"][0]["attributes"] == {"pw": "***", "x": "2"}   # secrets redacted


def test_replay_applies_lifecycle_and_assignments_written_after_the_snapshot(tmp_path):
    from tune.components import Lifecycle
    from tune.manager.journal import replay
    j = Journal.open(str(tmp_path), snapshot_interval=3600)
    sr = SystemRepresentation("app")
    for name in ("A1", "A2", "A3"):
        sr.add_instance(Component(name, "A", {"x": "1", "pw": "p"}, secret=frozenset({"pw"})))
    j.write("deploy.end", sr=sr)
    seq = j.write("call.intent", {"instance": "A1", "method": "start"})
    j.write("call.done", {"instance": "A1", "method": "start"}, ref=seq)
    j.write("call.intent", {"instance": "A2", "method": "start"})
    seq = j.write("call.intent", {"instance": "A3", "method": "start"})
    j.write("call.failed", {"instance": "A3", "method": "start", "error": "boom"}, ref=seq)
    j.write("assign", {"instance": "A1", "attribute": "x", "value": "9"})
    j.write("assign", {"instance": "A1", "attribute": "pw", "value": "***"})
    j.write("call.intent", {"instance": "Gone", "method": "start"})
    first, snap = j.last_snapshot()
    again = SystemRepresentation.from_dict(snap)
    assert replay(again, j.records(first + 1)) == 6
    states = {c.srname: (c.state, c.error) for c in again.instances()}
    assert states == {"A1": (Lifecycle.STARTED, None), "A2": (Lifecycle.STARTING, None),
                      "A3": (Lifecycle.FAILED, "boom")}
    assert again.instance("A1").attributes["x"] == "9" and again.instance("A1").attributes["pw"] == "***"


def test_bad_synchronous_setting(tmp_path):
    with pytest.raises(JournalError):
        Journal(str(tmp_path / "j.sqlite"), synchronous="OFF")
    Journal(str(tmp_path / "j.sqlite"), synchronous="full").close()


def test_crash_point_kills_right_after_the_record_is_committed(tmp_path):
    code = ("import sys; from tune.manager.journal import Journal\n"
            "j = Journal.open(sys.argv[1])\n"
            "j.write('a'); j.write('b'); j.write('b'); j.write('c')\n")
    env = dict(os.environ, TUNE_CRASH_AT="b:2", TUNE_CRASH_TRACE=str(tmp_path / "trace"), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    db = sqlite3.connect(str(tmp_path / "s" / "journal.sqlite"))
    assert [k for (k,) in db.execute("SELECT kind FROM records ORDER BY seq")] == ["a", "b", "b"]
    assert (tmp_path / "trace").read_text().split() == ["a:1", "b:1", "b:2"]


def test_wrapper_call_arguments_are_redacted():
    class App:
        components: dict = {}

    class M:
        app = App()

    class P:
        def __init__(self, text: str) -> None:
            self.text = text

    class WM:
        params = [P("$this.srname"), P("$this.password"), P("$arg"), P("literal")]

    comp = Component("Web1", "Web", {"password": "hunter2"}, secret=frozenset({"password"}))
    assert _redacted(M(), comp, WM(), ["Web1", "hunter2", "user:hunter2@db", "x"]) == ["Web1", "***", "***", "x"]


def test_a_failing_call_s_error_is_scrubbed_of_secrets():
    from tune.manager.runner import _scrub
    comp = Component("Web1", "Web", {"password": "hunter2"}, secret=frozenset({"password"}))
    assert _scrub(comp, "login web1:hunter2 refused") == "login web1:*** refused"


def test_a_migration_diagram_is_journaled_step_by_step(tmp_path):
    app = load_application(XEN)
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"), control_socket=False)
    try:
        m.deploy()
        start = m.journal.last("run.end").seq
        run = m.run_diagram("overload", "VM1", "dom0-c")
        assert run.status == "completed", run.error
        recs = m.journal.records(start + 1)
        assert [r.kind for r in recs] == [
            "run.begin", "node.begin", "call.intent", "migrate.intent", "relocate", "migrate.done", "call.done",
            "node.end", "node.begin", "call.intent", "relocate", "call.done", "node.end", "run.end"]
        by = {r.seq: r for r in recs}
        for r in recs:
            if r.kind in ("call.done", "node.end", "migrate.done", "run.end"):
                assert by[r.ref].kind == {"call.done": "call.intent", "node.end": "node.begin",
                                          "migrate.done": "migrate.intent", "run.end": "run.begin"}[r.kind]
        intent = next(r for r in recs if r.kind == "migrate.intent")
        assert intent.data == {"vm": "VM1", "source": "dom0-a", "destination": "dom0-c"}
        call = next(r for r in recs if r.kind == "call.intent")
        assert call.data == {"instance": "VM1", "method": "migrate", "node": "migrate", "args": ["VM1", "dom0-c"]}
        assert {r.run for r in recs[1:] if r.kind.split(".")[0] in ("run", "node", "call")} == {recs[0].seq}
        snap = {c["srname"]: c["node"] for c in m.journal.snapshot()["instances"]}
        assert snap["VM1"] == "dom0-c" and snap["Probe1"] == "dom0-c"
    finally:
        m.shutdown()
    j = Journal.open(str(tmp_path / "s"))
    assert j.live_deployment() is None and j.last("undeploy.end") is not None
