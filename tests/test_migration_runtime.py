"""Migrations through the manager on the simulated grid: destinations, refusals, coalescing."""

import os

from tune.adl.loader import load_application
from tune.clock import SimClock
from tune.manager import Manager
from tune.testing import wait_for

XEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "xen_attitune",
                   "app.xml")


def _manager(tmp_path, speed=500):
    m = Manager(load_application(XEN), clock=SimClock(speed), state_dir=str(tmp_path / "s"))
    m.deploy()
    return m


def test_seed_form_names_the_destination(tmp_path):
    m = _manager(tmp_path)
    try:
        run = m.run_diagram("overload", "VM3", "dom0-c")
        assert run.status == "completed", run.error
        assert m.world.domains["VM3"].host == "dom0-c" and m.sr.instance("VM3").node == "dom0-c"
        assert m.sr.instance("Probe3").node == "dom0-c"      # the probe followed its VM
    finally:
        m.shutdown()


def test_policy_picks_the_least_loaded_host_where_memory_fits(tmp_path):
    m = _manager(tmp_path)
    try:
        m.world.set_load("VM3", 60)
        m.world.set_load("VM4", 60)
        # dom0-a (VM1 15 %, VM2 15 %) is less loaded than dom0-b (60 + 60), but full (2 slots);
        # dom0-c is empty: the least loaded host with room
        assert m.choose_destination("VM3") == "dom0-c"
        m.world.hosts["dom0-c"].memory_mb = 512              # now VM3 (1024 MB) does not fit there
        assert m.choose_destination("VM3") is None
    finally:
        m.shutdown()


def test_refused_migration_leaves_everything_where_it_was(tmp_path):
    m = _manager(tmp_path)
    try:
        m.world.hosts["dom0-c"].memory_mb = 512
        run = m.run_diagram("overload", "VM1", "dom0-c")
        assert run.status == "failed"
        assert "refused" in str(run.error) and run.error.instance == "VM1"
        assert m.world.domains["VM1"].host == "dom0-a" and m.sr.instance("VM1").node == "dom0-a"
        assert m.sr.instance("VM1").state.value == "started"
        assert [r.status for r in m.migrations] == ["failed"]
        # the follow action did not run: the probe still sits beside VM1
        assert m.sr.instance("Probe1").node == "dom0-a"
        # no VM on two hosts or none
        assert sorted(d.name for d in m.world.domains.values()) == ["VM1", "VM2", "VM3", "VM4"]
    finally:
        m.shutdown()


def test_second_overload_during_a_migration_is_coalesced(tmp_path):
    m = _manager(tmp_path, speed=40)
    try:
        m.emit("overload", "VM2")
        m.emit("overload", "VM2")
        assert wait_for(lambda: m.bus.counters["handled"] == 1, 10)
        assert m.bus.counters["coalesced"] == 1
        assert [r.domain for r in m.migrations] == ["VM2"]
    finally:
        m.shutdown()
