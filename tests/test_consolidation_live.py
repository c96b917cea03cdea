"""The live consolidation path: the simulator's policy planning for the running system."""

import os

import pytest

from tune.adl.loader import load_application
from tune.clock import SimClock
from tune.errors import DriverError
from tune.manager import Manager
from tune.manager.consolidation import consolidate, host_loads
from tune.testing import wait_for
from tune.virt.sim import SimPower

XEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "xen_attitune",
                   "app.xml")


@pytest.fixture
def spread(tmp_path):
    """Four light VMs spread over the three dom0s (round-robin): one host too many."""
    app = load_application(XEN)
    app.families["dom0"].allocation = "round-robin"
    app.components["Consolidator"].attributes["period"] = "100000"  # rounds only when the test asks
    m = Manager(app, clock=SimClock(500), state_dir=str(tmp_path / "s"))
    m.deploy()
    yield m
    m.shutdown()


def test_round_packs_light_vms_and_switches_hosts_off(spread):
    m = spread
    assert {c.srname: c.node for c in m.sr.instances("VM")} == {
        "VM1": "dom0-a", "VM2": "dom0-b", "VM3": "dom0-c", "VM4": "dom0-a"}
    report = consolidate(m, "dom0", "thr-mmt-0.8")
    assert report.failed == [] and report.powered_off
    off = set(report.powered_off)
    # the hypervisor's own state: switched-off hosts run nothing and are unpowered
    for host in off:
        assert not m.world.hosts[host].powered
        assert m.sr.node(host).state == "off"
        assert not [d for d in m.world.domains.values() if d.host == host]
    # four VMs of 15 % on 1-core hosts with 2 slots: two hosts suffice
    on = [h for h in ("dom0-a", "dom0-b", "dom0-c") if h not in off]
    assert len(on) == 2
    # no host overloaded afterwards (THR 0.8), every VM placed once, SR == hypervisor
    for h in host_loads(m, "dom0"):
        assert h.utilisation <= 0.8 and len(h.vms) <= 2
    assert {d.name: d.host for d in m.world.domains.values()} == {c.srname: c.node for c in m.sr.instances("VM")}
    # probes followed their VMs
    for p in m.sr.instances("Probe"):
        assert p.node == m.sr.bound(p.srname, "VM")[0].node
    # a second round has nothing left to do
    again = consolidate(m, "dom0", "thr-mmt-0.8")
    assert again.migrated == [] and again.powered_off == []


def test_overloaded_host_gets_room_from_a_switched_off_host(spread):
    m = spread
    consolidate(m, "dom0", "thr-mmt-0.8")
    busy_host = m.sr.instance("VM2").node
    partner = next(c.srname for c in m.sr.instances("VM") if c.node == busy_host and c.srname != "VM2")
    m.world.set_load("VM2", 90)
    m.world.set_load(partner, 60)   # 150 % asked of one core
    report = consolidate(m, "dom0", "thr-mmt-0.8")
    assert report.powered_on and report.migrated
    for h in host_loads(m, "dom0"):
        assert h.utilisation <= 0.8 + 1e-9 or len(h.vms) == 1   # a lone busy VM cannot be split


def test_the_periodic_event_runs_the_consolidate_diagram(tmp_path):
    app = load_application(XEN)
    app.families["dom0"].allocation = "round-robin"
    app.components["Consolidator"].attributes["period"] = "30"
    m = Manager(app, clock=SimClock(300), state_dir=str(tmp_path / "s"))
    try:
        m.deploy()
        assert wait_for(lambda: any(r.name == "consolidate" and r.status == "completed" for r in m.runs), 10)
        assert wait_for(lambda: any(n.state == "off" for n in m.sr.nodes("dom0")), 10)
    finally:
        m.shutdown()


def test_sim_power_never_switches_off_a_busy_host(spread):
    with pytest.raises(DriverError):
        SimPower(spread.world).power_off("dom0-a")
