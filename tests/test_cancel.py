"""Interruption and rollback: cancelling a running diagram, action timeouts, shutdown cancels.

The web tier of ``tests/apps/web`` (``tune.testing.RecordingService``: the ``sleep`` attribute
makes each call last, ``fail`` makes methods raise), copied with a few diagrams of our own, on a
real-time clock so that sleeps, timeouts and cancellations line up.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from tune.adl.loader import load_application
from tune.clock import Clock
from tune.components import Lifecycle
from tune.events.control import request
from tune.manager import Manager
from tune.testing import CALLS, wait_for

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "web")

DIAGRAMS = {
    # a1 is slow; a2 and a3 (two actions in one node) come after it
    "slow": """<diagram name="slow" on-failure="compensate">
  <initial id="i"/>
  <action id="a1">Db.configure</action>
  <action id="a2">Web.configure; Balancer.configure</action>
  <final id="end"/>
  <transition from="i" to="a1"/> <transition from="a1" to="a2"/> <transition from="a2" to="end"/>
</diagram>""",
    "timed": """<diagram name="timed" on-failure="compensate">
  <initial id="i"/>
  <action id="a1" timeout="0.2">Db.configure</action>
  <action id="a2">Web.configure</action>
  <final id="end"/>
  <transition from="i" to="a1"/> <transition from="a1" to="a2"/> <transition from="a2" to="end"/>
</diagram>""",
    "patient": """<diagram name="patient">
  <initial id="i"/>
  <action id="a1" timeout="5">Db.configure</action>
  <final id="end"/>
  <transition from="i" to="a1"/> <transition from="a1" to="end"/>
</diagram>""",
    "restart": """<diagram name="restart">
  <initial id="i"/>
  <action id="a1" timeout="0.2">$arg.start</action>
  <final id="end"/>
  <transition from="i" to="a1"/> <transition from="a1" to="end"/>
</diagram>""",
    "badtimeout": """<diagram name="badtimeout">
  <initial id="i"/>
  <action id="a1" timeout="soon">Db.configure</action>
  <final id="end"/>
  <transition from="i" to="a1"/> <transition from="a1" to="end"/>
</diagram>""",
}


@pytest.fixture
def web_app(tmp_path):
    d = tmp_path / "web"
    shutil.copytree(WEB_DIR, d)
    text = (d / "app.xml").read_text()
    extra = "".join(f'  <diagram event="{n}" file="{n}.xml"/>\n' for n in DIAGRAMS)
    (d / "app.xml").write_text(text.replace("</application>", extra + "</application>"))
    for name, body in DIAGRAMS.items():
        (d / f"{name}.xml").write_text(body)
    CALLS.reset()
    yield str(d / "app.xml")
    CALLS.reset()


def manager(app_path: str, tmp_path, **kw) -> Manager:
    m = Manager(load_application(app_path), clock=Clock(), state_dir=str(tmp_path / "state"), **kw)
    m.deploy()
    return m


def started(m: Manager, instance: str, method: str) -> bool:
    """The timeline shows that call begun (RecordingService records calls only when they end)."""
    return any(e.kind == "action.start" and e.data.get("instance") == instance and e.data.get("method") == method
               for e in list(m.timeline))


def run_in_thread(m: Manager, event: str, *args: str):
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("run", m.run_diagram(event, *args)))
    t.start()
    assert wait_for(lambda: m._running, 5)
    return t, box


def test_cancel_skips_what_has_not_started_lets_the_running_action_finish_and_compensates(web_app, tmp_path):
    m = manager(web_app, tmp_path)
    try:
        m.sr.set_attribute("Db1", "sleep", "0.4")
        t, box = run_in_thread(m, "slow", "x")
        assert wait_for(lambda: started(m, "Db1", "configure"), 5)
        assert CALLS.of("configure", "Db1") == []   # still running
        [run_id] = list(m._running)
        t_cancel = time.monotonic()
        assert m.cancel(run_id) is True
        t.join(5)
        run = box["run"]
        assert run.status == "cancelled" and run.error is None
        # the running action finished (it was not interrupted) after the cancel
        [db] = CALLS.of("configure", "Db1")
        assert not db.failed and db.ended > t_cancel
        # a2 (both of its actions) never ran
        assert CALLS.of("configure", "Web1") == [] and CALLS.of("configure", "Balancer1") == []
        assert [(n.node, n.status) for n in run.trace if n.kind == "action"] == [("a1", "done"), ("a2", "skipped")]
        # the on-failure compensation ran once, after the cancelled action ended
        [log] = CALLS.of("log")
        assert log.args == ("compensated",) and log.started >= db.ended
        assert m.cancel(run_id) is False   # not running any more
        kinds = [e.kind for e in m.timeline]
        assert "diagram.cancel" in kinds and "diagram.compensate" in kinds
        # the journal says so too
        ends = [r for r in m.journal.records() if r.kind == "run.end"]
        assert [r.data["status"] for r in ends[-2:]] == ["cancelled", "completed"]
    finally:
        m.shutdown()


def test_cancel_through_the_control_socket_and_the_cli(web_app, tmp_path):
    from tune.cli import main
    m = manager(web_app, tmp_path)
    try:
        m.sr.set_attribute("Db1", "sleep", "0.4")
        t, box = run_in_thread(m, "slow", "x")
        [run_id] = list(m._running)
        assert wait_for(lambda: started(m, "Db1", "configure"), 5)
        assert main(["event", "--cancel", str(run_id), "--state-dir", m.state_dir]) == 0
        t.join(5)
        assert box["run"].status == "cancelled"
        assert request(m.state_dir, {"op": "cancel", "run": run_id}) == {"ok": True, "cancelled": False}
        assert main(["event", "--cancel", "999999", "--state-dir", m.state_dir]) == 1
    finally:
        m.shutdown()


def test_a_node_timeout_abandons_the_call_fails_the_action_and_compensates(web_app, tmp_path):
    m = manager(web_app, tmp_path)
    try:
        m.sr.set_attribute("Db1", "sleep", "1.0")
        t0 = time.monotonic()
        run = m.run_diagram("timed", "x")
        elapsed = time.monotonic() - t0
        assert run.status == "failed"
        assert run.error.diagram == "timed" and run.error.node == "a1" and run.error.instance == "Db1"
        assert "Db.configure of Db1 timed out after 0.2 s and was abandoned" in str(run.error)
        assert elapsed < 0.9                      # not the 1.0 s the call lasts
        assert CALLS.of("configure", "Web1") == []    # a2 never ran
        assert [c.args for c in CALLS.of("log")] == [("compensated",)]
        assert "timed out" in m.sr.instance("Db1").error
        # the abandoned call goes on alone and ends; nothing waits for it
        assert wait_for(lambda: CALLS.of("configure", "Db1"), 3)
        failed = [r for r in m.journal.records() if r.kind == "call.failed"]
        assert failed and "timed out" in failed[-1].data["error"]
    finally:
        m.shutdown()


def test_a_timed_out_start_marks_the_instance_failed(web_app, tmp_path):
    m = manager(web_app, tmp_path)
    try:
        m.runner.call("Web1", "stop")
        m.sr.set_attribute("Web1", "sleep", "0.6")
        run = m.run_diagram("restart", "Web1")
        assert run.status == "failed" and "timed out after 0.2 s" in str(run.error)
        web1 = m.sr.instance("Web1")
        assert web1.state is Lifecycle.FAILED and "timed out" in web1.error
        time.sleep(0.6)   # the abandoned start ends later: it does not mark Web1 started
        assert m.sr.instance("Web1").state is Lifecycle.FAILED
    finally:
        m.sr.set_attribute("Web1", "sleep", "0")
        m.shutdown()


def test_the_manager_default_timeout_and_a_node_timeout_overriding_it(web_app, tmp_path):
    m = manager(web_app, tmp_path, action_timeout=0.15)
    try:
        m.sr.set_attribute("Db1", "sleep", "0.3")
        run = m.run_diagram("slow", "x")    # a1 has no timeout of its own: the default applies
        assert run.status == "failed" and "timed out after 0.15 s" in str(run.error) and run.error.node == "a1"
        run = m.run_diagram("patient", "x")  # timeout="5" on a1 overrides the default
        assert run.status == "completed", run.error
    finally:
        m.sr.set_attribute("Db1", "sleep", "0")
        m.shutdown()


def test_a_bad_timeout_attribute_fails_the_action_clearly(web_app, tmp_path):
    m = manager(web_app, tmp_path)
    try:
        run = m.run_diagram("badtimeout", "x")
        assert run.status == "failed" and run.error.node == "a1"
        assert "timeout='soon' is not a number of seconds" in str(run.error)
        assert CALLS.of("configure") == []
    finally:
        m.shutdown()


def test_shutdown_cancels_running_diagrams_before_the_stop_diagram(web_app, tmp_path):
    m = manager(web_app, tmp_path)
    m.sr.set_attribute("Db1", "sleep", "0.4")
    m.emit("slow", "x")
    assert wait_for(lambda: started(m, "Db1", "configure"), 5)
    m.shutdown()
    [run] = [r for r in m.runs if r.name == "slow"]
    assert run.status == "cancelled"
    [db] = CALLS.of("configure", "Db1")
    assert CALLS.of("configure", "Web1") == []                        # skipped
    [log] = CALLS.of("log")                                          # compensated
    stops = CALLS.of("stop")
    assert sorted(c.instance for c in stops) == ["Balancer1", "Db1", "Web1", "Web2"]
    assert db.ended <= log.started <= min(c.started for c in stops)   # cancel, compensate, then stop
