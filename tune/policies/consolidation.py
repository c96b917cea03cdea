"""Consolidation policies: detect overloaded hosts, move VMs off them, empty light hosts.

:class:`ConsolidationPolicy` combines an :class:`~tune.policies.detectors.OverloadDetector`, a
:class:`~tune.policies.selection.VmSelector` and PABFD placement, as in Beloglazov & Buyya's
``DETECTOR-SELECTOR-PARAM`` names (``thr-mmt-0.8``, ``lr-mmt-1.2``, ...).

With ``cloudsim=True`` (the default for those names) it reproduces CloudSim 3.0.3's
``PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation``, quirks included:

* the under-load phase tries to empty *every* host that is on and below 100 % utilisation, least
  utilised first (``getUnderUtilizedHost`` starts its minimum at 1), not only "light" ones;
* a host chosen as destination for a VM from an overloaded host is **not** excluded from being
  emptied afterwards (CloudSim adds the destinations of an empty migration map), so a VM can be
  planned twice in one step, and both migrations happen and are counted;
* "switched off" means "sampled utilisation 0", which includes hosts whose VMs are all idle;
* destinations of an emptied host's VMs are compared with stale (sampled) power (see
  :class:`~tune.policies.placement.PowerAwareBestFit`).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from ..errors import UnknownPolicyError
from ..registry import Registry
from .base import ClusterState, HostLoad, Migration, Plan
from .detectors import OverloadDetector
from .placement import PowerAwareBestFit
from .selection import VmSelector

log = logging.getLogger(__name__)

#: a planned migration as indices: (vm, source host, destination host)
RawMigration = tuple[int, int, int]


class ConsolidationPolicy:
    """One consolidation round: ``plan(hosts) -> Plan`` (live) or ``plan_state(state)`` (arrays)."""

    def __init__(self, detector: OverloadDetector, selector: VmSelector, *, cloudsim: bool = True,
                 name: str = "") -> None:
        self.detector = detector
        self.selector = selector
        self.cloudsim = cloudsim
        self.placement = PowerAwareBestFit(detector, cloudsim=cloudsim)
        self.name = name or f"{detector.name.split('-')[0]}-{selector.name}-{detector.name.split('-', 1)[-1]}"

    @property
    def needs_history(self) -> bool:
        """Whether plans use the VMs' utilisation history (the simulator keeps it only then)."""
        from .detectors import StaticThreshold
        from .selection import MaximumCorrelation
        return not isinstance(self.detector, StaticThreshold) or isinstance(self.selector, MaximumCorrelation)

    def initial_placement(self, state: ClusterState) -> list[list[int]]:
        """Place every VM of ``state`` (all unplaced) with PABFD, in index order."""
        from ..errors import SimulationError
        none = np.zeros(state.n_hosts, dtype=bool)
        for v in range(state.n_vms):
            h = self.placement.find_host(state, v, none)
            if h < 0:
                raise SimulationError(f"cannot place VM {state.vm_names[v]}: no host has room "
                                      f"(parameter n_hosts: {state.n_hosts})")
            state.add_vm(v, h)
        return state.lists

    def __repr__(self) -> str:
        return f"<ConsolidationPolicy {self.name}{' cloudsim' if self.cloudsim else ''}>"

    # -- the live interface ------------------------------------------------------------------
    def plan(self, hosts: Sequence[HostLoad]) -> Plan:
        """A plan for the cluster described by ``hosts`` (names in, names out)."""
        state = ClusterState.from_hosts(hosts)
        raw = self.plan_state(state)
        return self.to_plan(state, raw, initial=[list(x) for x in ClusterState.from_hosts(hosts).lists])

    @staticmethod
    def to_plan(state: ClusterState, raw: Sequence[RawMigration], initial: list[list[int]]) -> Plan:
        """Names instead of indices.  A VM planned twice (CloudSim's quirk) moves once, to its
        final destination: on a real cluster a migration is never undone within one plan."""
        start = {v: h for h, vs in enumerate(initial) for v in vs}
        final = dict(start)
        order: list[int] = []
        for v, _src, dst in raw:
            if v not in order:
                order.append(v)
            final[v] = dst
        migrations = [Migration(state.vm_names[v], state.host_names[start[v]], state.host_names[final[v]])
                      for v in order if final[v] != start[v]]
        counts = np.zeros(state.n_hosts, dtype=np.int64)
        for h in final.values():
            counts[h] += 1
        power_off = [state.host_names[h] for h in range(state.n_hosts) if initial[h] and counts[h] == 0]
        was_on = np.array([len(x) > 0 for x in initial]) | state.active
        power_on = [state.host_names[h] for h in sorted({final[v] for v in order}) if not was_on[h]]
        return Plan(migrations, power_off, power_on)

    # -- the algorithm -----------------------------------------------------------------------
    def plan_state(self, state: ClusterState) -> list[RawMigration]:
        """Plan on ``state`` (mutated: it ends as the planned placement).  Returns migrations."""
        origin = state.vm_host.copy()
        over_mask = self.detector.overloaded(state, np.arange(state.n_hosts))
        migrations = self.relieve_overloaded(state, over_mask, origin)
        migrations += self.consolidate_underloaded(state, over_mask, origin, migrations)
        return migrations

    def relieve_overloaded(self, state: ClusterState, over_mask: np.ndarray,
                           origin: np.ndarray) -> list[RawMigration]:
        to_move: list[int] = []
        for host in np.flatnonzero(over_mask):
            h = int(host)
            while True:
                v = self.selector.select(state, h)
                if v < 0:
                    break
                to_move.append(v)
                state.remove_vm(v, h)
                if not self.detector.overloaded(state, np.array([h]))[0]:
                    break
        to_move.sort(key=lambda v: -state.vm_req[v])  # stable, like Collections.sort
        out: list[RawMigration] = []
        excluded = over_mask.copy()
        for v in to_move:
            dst = self.placement.find_host(state, v, excluded)
            if dst >= 0:
                state.add_vm(v, dst)
                out.append((v, int(origin[v]), dst))
            else:
                log.debug("no host for VM %s from an overloaded host", state.vm_names[v])
        return out

    def consolidate_underloaded(self, state: ClusterState, over_mask: np.ndarray, origin: np.ndarray,
                                done: list[RawMigration]) -> list[RawMigration]:
        """CloudSim's under-load phase: try to empty every host, least utilised first."""
        off = state.stale == 0
        excl_under = over_mask | off
        excl_place = excl_under.copy()
        out: list[RawMigration] = []
        util = np.where((state.stale > 0) & (state.stale < 1), state.stale, np.inf)
        while not excl_under.all():
            masked = np.where(excl_under | (state.nvms == 0), np.inf, util)
            x = int(np.argmin(masked))
            if masked[x] == np.inf:
                break
            excl_under[x] = excl_place[x] = True
            vms = sorted(state.lists[x], key=lambda v: -state.vm_req[v])
            placed: list[tuple[int, int]] = []
            for v in vms:
                h = self.placement.find_host(state, v, excl_place)
                if h < 0:
                    for pv, ph in placed:
                        state.remove_vm(pv, ph)
                    placed = []
                    break
                state.add_vm(v, h)
                placed.append((v, h))
            for v, h in placed:
                excl_under[h] = True
                out.append((v, int(origin[v]), h))
        return out


overload_detectors: Registry[OverloadDetector] = Registry("overload detector")
overload_detectors.register("thr", "tune.policies.detectors:StaticThreshold")
overload_detectors.register("iqr", "tune.policies.detectors:InterQuartileRange")
overload_detectors.register("mad", "tune.policies.detectors:MedianAbsoluteDeviation")
overload_detectors.register("lr", "tune.policies.detectors:LocalRegression")
overload_detectors.register("lrr", "tune.policies.detectors:LocalRegressionRobust")

vm_selectors: Registry[VmSelector] = Registry("VM selection policy")
vm_selectors.register("mmt", "tune.policies.selection:MinimumMigrationTime")
vm_selectors.register("mc", "tune.policies.selection:MaximumCorrelation")
vm_selectors.register("rs", "tune.policies.selection:RandomSelection")
vm_selectors.register("mu", "tune.policies.selection:MinimumUtilisation")

placements: Registry[PowerAwareBestFit] = Registry("placement")
placements.register("pabfd", "tune.policies.placement:PowerAwareBestFit")

#: whole policies known by a single name (our own designs)
named_policies: Registry[ConsolidationPolicy] = Registry("consolidation policy")
named_policies.register("steady", "tune.policies.steady:SteadyPolicy")

#: the four reference policies of the paper, in its order
REFERENCE_POLICIES = ("thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2")


def known_policies() -> list[str]:
    return [*REFERENCE_POLICIES, "lrr-mmt-1.2", "DET-SEL-PARAM (det: " + ", ".join(overload_detectors.names())
            + "; sel: " + ", ".join(vm_selectors.names()) + ")", *named_policies.names()]


def policy_from_name(name: str, *, cloudsim: Optional[bool] = None, seed: int = 0) -> ConsolidationPolicy:
    """Build a policy from ``thr-mmt-0.8``-style names or a registered name (``steady``).

    ``cloudsim`` defaults to True for ``DET-SEL-PARAM`` names (reproduce CloudSim) and is
    ignored by our own policies.

    >>> policy_from_name("lr-mmt-1.2")
    <ConsolidationPolicy lr-mmt-1.2 cloudsim>
    """
    key = name.strip().lower()
    base = key.split(":", 1)[0]
    if base in named_policies.names():
        return named_policies.create(base, key)
    parts = key.split("-")
    if len(parts) == 3 and parts[0] in overload_detectors.names() and parts[1] in vm_selectors.names():
        try:
            param = float(parts[2])
        except ValueError:
            param = None
        if param is not None:
            compat = True if cloudsim is None else cloudsim
            if parts[0] == "lrr":
                det: OverloadDetector = overload_detectors.create("lrr", param, cloudsim=compat)
            else:
                det = overload_detectors.create(parts[0], param)
            sel = vm_selectors.create("rs", seed) if parts[1] == "rs" else vm_selectors.create(parts[1])
            return ConsolidationPolicy(det, sel, cloudsim=compat, name=key)
    raise UnknownPolicyError(f"unknown policy {name!r}; known: {', '.join(known_policies())}")
