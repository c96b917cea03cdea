"""Heartbeats and the default repair on the simulated grid (fast, exact); real hosts in
``test_health_ssh.py``."""

import os
import time

import pytest

from tune.adl.loader import load_application
from tune.clock import SimClock
from tune.components import Lifecycle
from tune.manager import Manager
from tune.manager.health import DEFAULT_TIMEOUT, HealthMonitor
from tune.testing import CALLS, wait_for

HERE = os.path.dirname(__file__)
WEB = os.path.join(HERE, "apps", "web", "app.xml")


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.reset()
    yield
    CALLS.reset()


def _web(tmp_path, **kw):
    m = Manager(load_application(WEB), clock=SimClock(100), state_dir=str(tmp_path / "s"), **kw)
    m.deploy()
    return m


def _cut(m, node_id):
    """Make ``node_id`` stop answering heartbeats (its executor says not alive)."""
    ex = m.executor(node_id)
    ex.alive = lambda timeout=5.0: False


def _heal(m, node_id):
    ex = m.executor(node_id)
    del ex.alive


def test_which_nodes_are_watched_and_their_timeouts(tmp_path):
    m = Manager(load_application(WEB), clock=SimClock(100), state_dir=str(tmp_path / "s"))
    m.plan()
    n1 = m.sr.node("n1")
    assert m.health.timeout_of(n1) is None                      # sim nodes cannot be lost by default
    assert HealthMonitor(m, 2.0).timeout_of(n1) == 2.0          # the manager option watches every node
    n1.attributes["heartbeat-timeout"] = "1.5"
    assert m.health.timeout_of(n1) == 1.5                       # the family attribute wins
    n1.attributes["heartbeat-timeout"] = "off"
    assert HealthMonitor(m, 2.0).timeout_of(n1) is None
    del n1.attributes["heartbeat-timeout"]
    n1.protocol = "ssh"
    assert m.health.timeout_of(n1) == DEFAULT_TIMEOUT == 5.0


def test_lost_node_is_detected_within_its_timeout_and_repaired(tmp_path):
    m = _web(tmp_path, heartbeat=0.5)
    try:
        before = {c.type: c.node for c in m.sr.instances()}
        assert before and m.sr.instance("Web1").node == "n2"
        count = len(m.sr.instances())
        _cut(m, "n2")
        t0 = time.monotonic()
        assert wait_for(lambda: m.sr.node("n2").state == "down", 5)
        detected = time.monotonic() - t0
        assert 0.4 <= detected <= 0.5 + 0.125 + 0.3, detected  # timeout .. timeout + period (+ slack)
        # the default repair: Web1 replaced by Web3 on a live node, same partners, started
        assert wait_for(lambda: not m.sr.has_instance("Web1") and m.sr.has_instance("Web3")
                        and m.sr.instance("Web3").state is Lifecycle.STARTED, 10), m.status()
        web3 = m.sr.instance("Web3")
        assert web3.node != "n2" and m.sr.node(web3.node).state == "up"
        assert [p.srname for p in m.sr.bound("Web3")] == ["Balancer1", "Db1"]
        assert len(m.sr.instances()) == count and m.sr.binding_problems() == []
        assert [c.instance for c in CALLS.of("start") if c.instance == "Web3"] == ["Web3"]
        kinds = [e.kind for e in m.timeline]
        assert kinds.index("node.down") < kinds.index("repair.replaced")
        assert any(r.name == "default-repair" and r.status == "completed" for r in m.runs)
        # the lost instance's folder is a leftover of the dead node, cleaned when it is back
        old_dir = m.executor("n2").path("/srv/tune/webtier/Web1")
        assert os.path.isdir(old_dir) and [lo.srname for lo in m.health.leftovers["n2"]] == ["Web1"]
        _heal(m, "n2")
        assert wait_for(lambda: m.sr.node("n2").state == "up", 5)
        assert not os.path.exists(old_dir) and "n2" not in m.health.leftovers
        assert len(m.sr.instances()) == count                  # nothing counted twice
        assert m.status()["health"]["n2"]["state"] == "up"
    finally:
        m.shutdown()


def test_repair_without_room_keeps_the_lost_instances_failed(tmp_path):
    m = _web(tmp_path, heartbeat=0.5)
    try:
        for n in ("n1", "n3"):                                   # no other node can take Web1
            m.sr.node(n).slots = len(m.sr.instances_on(n))
        _cut(m, "n2")
        assert wait_for(lambda: any(r.name == "default-repair" and r.status == "failed" for r in m.runs), 10)
        web1 = m.sr.instance("Web1")
        assert web1.state is Lifecycle.FAILED and "lost" in web1.error and web1.node == "n2"
        assert not m.sr.has_instance("Web3") and m.sr.binding_problems() == []
        assert any(e.kind == "repair.failed" for e in m.timeline)
    finally:
        m.shutdown()


def test_an_application_repair_diagram_replaces_the_default(tmp_path):
    app = load_application(WEB)
    app.diagram_graphs["repair"] = app.diagram_graphs["configure"]   # $arg.configure
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"), heartbeat=0.5)
    m.deploy()
    try:
        _cut(m, "n2")
        assert wait_for(lambda: CALLS.of("configure", "Web1"), 5)
        assert m.sr.has_instance("Web1") and m.sr.instance("Web1").state is Lifecycle.FAILED
    finally:
        m.shutdown()
