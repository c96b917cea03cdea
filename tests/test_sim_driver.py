"""The simulated hypervisor: CPU sharing, memory, pre-copy migration, refusals."""

import pytest

from tune.clock import SimClock
from tune.errors import DomainNotFound, InsufficientResources, MigrationError
from tune.probes.cpu import ProbeLogic
from tune.virt.base import DomainSpec
from tune.virt.sim import SimDriver, SimWorld


@pytest.fixture
def grid():
    w = SimWorld(clock=SimClock(10_000))
    return w, SimDriver("a", world=w, cores=1, memory_mb=2048), SimDriver("b", world=w, cores=2, memory_mb=1024)


def test_fair_share_under_contention(grid):
    w, a, _b = grid
    a.create(DomainSpec("x", 512, load=90))
    a.create(DomainSpec("y", 512, load=30))
    cpu = {d.name: d.cpu_percent for d in a.list()}
    assert cpu == {"x": 75.0, "y": 25.0}       # 120 % asked of one core: shared 3:1
    w.set_load("x", 50)
    assert {d.name: d.cpu_percent for d in a.list()} == {"x": 50.0, "y": 30.0}


def test_memory_refusal_on_create_and_migrate(grid):
    _w, a, b = grid
    a.create(DomainSpec("big", 1500))
    with pytest.raises(InsufficientResources):
        a.create(DomainSpec("more", 600))
    with pytest.raises(MigrationError) as err:
        a.migrate("big", b)
    assert err.value.report.status == "failed" and "refused" in err.value.report.message
    assert [d.name for d in a.list()] == ["big"] and b.list() == []


def test_migration_moves_and_reports(grid):
    _w, a, b = grid
    a.create(DomainSpec("vm", 1000, load=0))
    r = a.migrate("vm", b)
    # idle: one round of 1000 MB at 125 MB/s = 8 s, then a stop-and-copy of nothing (20 ms)
    assert r.status == "completed" and r.total_time == pytest.approx(8.02) and r.downtime == pytest.approx(0.02)
    assert a.list() == [] and [d.name for d in b.list()] == ["vm"]
    with pytest.raises(DomainNotFound):
        a.destroy("vm")


def test_busy_vm_needs_more_rounds_and_longer_downtime(grid):
    _w, a, b = grid
    a.create(DomainSpec("busy", 1000, load=100))
    r = a.migrate("busy", b)
    assert r.total_time > 8.02 and r.downtime > 0.02 and r.ram_transferred_mb > 1000


def test_probe_logic_threshold_samples_hysteresis():
    p = ProbeLogic(threshold=80, hysteresis=10, samples=3)
    fired = [p.feed(v) for v in (85, 79, 85, 85, 85, 95, 72, 69, 81, 81, 81)]
    assert fired == [False, False, False, False, True, False, False, False, False, False, True]
