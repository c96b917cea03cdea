"""Policies on tiny hand-built clusters with exact expected results, and plan properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tune.errors import UnknownPolicyError
from tune.policies import (ClusterState, ConsolidationPolicy, HostLoad, InterQuartileRange, LocalRegression,
                           LocalRegressionRobust, MedianAbsoluteDeviation, MinimumMigrationTime,
                           MinimumUtilisation, RandomSelection, StaticThreshold, VMLoad,
                           choose_destination, choose_destination_pabfd, policy_from_name)
from tune.policies.detectors import iqr_rows, mad_rows, trimmed_length
from tune.policies.selection import MaximumCorrelation
from tune.power import HP_ML110_G4, HP_ML110_G5, LinearPowerModel


def H(name, cap, vms, ram=4096, **kw):
    return HostLoad(name, cap, ram, vms, **kw)


# --- detectors --------------------------------------------------------------------------------
def test_thr_two_hosts():
    state = ClusterState.from_hosts([H("a", 100, [VMLoad("x", 1, 50), VMLoad("y", 1, 31)]),
                                     H("b", 100, [VMLoad("z", 1, 80)])])
    assert StaticThreshold(0.8).overloaded(state, np.arange(2)).tolist() == [True, False]
    # with one more VM of 1 unit, b crosses 0.8
    assert StaticThreshold(0.8).overloaded(state, np.array([1]), extra_vm=0).tolist() == [True]


def test_iqr_and_mad_on_known_numbers():
    data = np.array([[1., 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]])
    assert iqr_rows(data, np.array([12]))[0] == 7.0  # Java quartile positions 3 and 10
    assert mad_rows(np.array([[1., 1, 2, 2, 4, 6, 9]]), np.array([7]))[0] == 1.0
    assert trimmed_length(np.array([[0.5, 0.2, 0.0, 0.0], [0, 0, 0, 0.]])).tolist() == [2, 0]


_count = iter(range(10 ** 6))


def _history_host(hist, demand, cap=100.0):
    n = next(_count)
    return H(f"h{n}", cap, [VMLoad(f"v{n}", 1, demand, history=hist, cpu_max=cap)])


def test_iqr_threshold_uses_history():
    # history alternating 0.2 / 0.6 -> IQR 0.4 -> threshold 1 - 1.5 * 0.4 = 0.4
    hist = [0.2, 0.6] * 6
    state = ClusterState.from_hosts([_history_host(hist, 45.0), _history_host(hist, 35.0)])
    assert InterQuartileRange(1.5).overloaded(state, np.arange(2)).tolist() == [True, False]


def test_mad_threshold_uses_history():
    hist = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.5, 0.5, 0.5]  # MAD 0 -> threshold 1
    state = ClusterState.from_hosts([_history_host(hist, 95.0)])
    assert MedianAbsoluteDeviation(2.5).overloaded(state, np.arange(1)).tolist() == [False]


def test_adaptive_detectors_fall_back_to_thr_07_on_short_history():
    state = ClusterState.from_hosts([_history_host([0.2] * 5, 75.0), _history_host([0.2] * 5, 65.0)])
    for det in (InterQuartileRange(1.5), MedianAbsoluteDeviation(2.5), LocalRegression(1.2)):
        assert det.overloaded(state, np.arange(2)).tolist() == [True, False]


def test_lr_predicts_one_step_ahead():
    rising = [1.0 - 0.05 * i for i in range(10)]  # most recent first: 0.55 ... 1.0
    state = ClusterState.from_hosts([_history_host([x * 0.8 for x in rising], 10.0)])
    lr = LocalRegression(1.2)
    pred = lr.predict(state, state.hist[[0]])
    assert pred[0] == pytest.approx(0.84)  # line 0.8*(0.55..1.0) extended to x = 11
    assert lr.overloaded(state, np.arange(1)).tolist() == [True]  # 1.2 * 0.84 >= 1


def test_lrr_resists_one_spike():
    calm = [0.3] * 10
    spiky = list(calm)
    spiky[0] = 0.95  # the latest sample spikes
    state = ClusterState.from_hosts([_history_host(spiky, 10.0)])
    lr = LocalRegression(1.2).predict(state, state.hist[[0]])[0]
    lrr = LocalRegressionRobust(1.2).predict(state, state.hist[[0]])[0]
    assert lrr < lr
    assert LocalRegressionRobust(1.2, cloudsim=True).predict(state, state.hist[[0]])[0] == pytest.approx(lr)


# --- selection --------------------------------------------------------------------------------
def test_mmt_picks_smallest_ram_first_listed_on_ties():
    state = ClusterState.from_hosts([H("a", 100, [VMLoad("big", 2048, 10), VMLoad("s1", 512, 10),
                                                  VMLoad("s2", 512, 90)])])
    assert state.vm_names[MinimumMigrationTime().select(state, 0)] == "s1"
    assert state.vm_names[MinimumUtilisation().select(state, 0)] in ("big", "s1")
    assert RandomSelection(3).select(state, 0) == RandomSelection(3).select(state, 0)
    assert MinimumMigrationTime().select(ClusterState.from_hosts([H("e", 1, [])]), 0) == -1


def test_mc_falls_back_to_mmt_on_short_history():
    state = ClusterState.from_hosts([H("a", 100, [VMLoad("big", 2048, 10, [0.1]), VMLoad("s", 512, 10, [0.2])])])
    assert state.vm_names[MaximumCorrelation().select(state, 0)] == "s"


# --- placement ------------------------------------------------------------------------------
def test_pabfd_picks_least_power_increase():
    # G5 at 30 %: +300 MIPS costs 2.8 W; G4 at 40 %: 2.0 W; waking a host: its idle power
    hosts = [H("g5", 5320, [VMLoad("a", 512, 1600)], power_model=HP_ML110_G5),
             H("g4", 3720, [VMLoad("b", 512, 1488)], power_model=HP_ML110_G4),
             H("new", 5320, [], power_model=HP_ML110_G5, active=False)]
    vm = VMLoad("v", 512, 300)
    assert choose_destination_pabfd(vm, hosts) == "g4"


def test_pabfd_never_overloads_and_respects_ram():
    hosts = [H("full", 100, [VMLoad("a", 512, 75)], power_model=LinearPowerModel(50, 100)),
             H("tight", 100, [VMLoad("b", 3900, 10)], power_model=LinearPowerModel(50, 100)),
             H("ok", 100, [VMLoad("c", 512, 40)], power_model=LinearPowerModel(80, 100))]
    assert choose_destination_pabfd(VMLoad("v", 512, 10), hosts) == "ok"
    assert choose_destination_pabfd(VMLoad("v", 512, 10), hosts, exclude=["ok"]) is None


def test_choose_destination_least_loaded_with_memory():
    hosts = [H("a", 100, [VMLoad("x", 3000, 5)]), H("b", 100, [VMLoad("y", 512, 50)]),
             H("c", 100, [VMLoad("z", 512, 70)])]
    assert choose_destination(VMLoad("v", 2048, 1), hosts) == "b"
    assert choose_destination(VMLoad("v", 2048, 1), hosts, exclude=["b"]) == "c"
    assert choose_destination(VMLoad("v", 8192, 1), hosts) is None


# --- whole policies ---------------------------------------------------------------------------
def test_plan_moves_off_overloaded_and_empties_light_host():
    hosts = [H("a", 100, [VMLoad("v1", 512, 50), VMLoad("v2", 256, 40)]),
             H("b", 100, [VMLoad("v3", 512, 10)]),
             H("c", 100, [VMLoad("v4", 512, 20)])]
    plan = policy_from_name("thr-mmt-0.8").plan(hosts)
    moves = [(m.vm, m.source, m.destination) for m in plan.migrations]
    # v2 (smallest RAM) leaves the overloaded host for b; b, the least utilised, is then emptied
    # into c; CloudSim plans v2 twice (a->b->c), a live plan moves it once
    assert moves == [("v2", "a", "c"), ("v3", "b", "c")]
    assert plan.power_off == ["b"] and plan.power_on == []


def test_host_history_stands_in_for_vm_history():
    rising = [1.0 - 0.05 * i for i in range(10)]
    hosts = [H("a", 100, [VMLoad("x", 512, 50)], history=rising), H("b", 100, [VMLoad("y", 512, 50)])]
    state = ClusterState.from_hosts(hosts)
    assert LocalRegression(1.2).overloaded(state, np.arange(2)).tolist() == [True, False]


def test_plan_wakes_a_host_when_nothing_else_fits():
    hosts = [H("a", 100, [VMLoad("x", 512, 60), VMLoad("y", 512, 35)]),
             H("b", 100, [], active=False)]
    plan = policy_from_name("steady").plan(hosts)
    # equal RAM: the busier VM goes (it relieves the host on its own)
    assert [(m.vm, m.destination) for m in plan.migrations] == [("x", "b")]
    assert plan.power_on == ["b"] and plan.power_off == []


def test_policy_names():
    p = policy_from_name("IQR-MMT-1.5")
    assert isinstance(p, ConsolidationPolicy) and p.cloudsim and p.detector.safety == 1.5
    assert policy_from_name("lrr-rs-1.2").selector.name == "rs"
    with pytest.raises(UnknownPolicyError) as exc:
        policy_from_name("foo-mmt-1")
    assert "thr-mmt-0.8" in str(exc.value)
    with pytest.raises(UnknownPolicyError):
        policy_from_name("thr-mmt-x")


hosts_st = st.lists(
    st.tuples(st.sampled_from([100.0, 200.0]), st.lists(st.tuples(st.integers(128, 1024),
                                                                  st.floats(0, 60)), max_size=4)),
    min_size=2, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts_st, st.sampled_from(["thr-mmt-0.8", "lr-mmt-1.2", "mad-mu-2.5", "steady"]))
def test_plan_properties(spec, name):
    hosts, n = [], 0
    for i, (cap, vms) in enumerate(spec):
        loads = [VMLoad(f"v{n + j}", ram, cpu, history=[cpu / cap] * 12) for j, (ram, cpu) in enumerate(vms)]
        n += len(vms)
        hosts.append(H(f"h{i}", cap, loads, ram=4096))
    plan = policy_from_name(name).plan(hosts)
    where = {v.name: h.name for h in hosts for v in h.vms}
    ram = {v.name: v.ram_mb for h in hosts for v in h.vms}
    for m in plan.migrations:
        assert where[m.vm] == m.source
        where[m.vm] = m.destination
    # every VM on exactly one host, and no destination over its memory
    assert sorted(where) == sorted(ram)
    used: dict[str, float] = {}
    for v, h in where.items():
        used[h] = used.get(h, 0.0) + ram[v]
    for h in {m.destination for m in plan.migrations}:
        assert used.get(h, 0.0) <= 4096
    # hosts switched off hold nothing
    for h in plan.power_off:
        assert used.get(h, 0.0) == 0.0
