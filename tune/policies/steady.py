"""STEADY: our consolidation policy — pack as tightly as LR-MMT, migrate half as often.

CloudSim's policies spend most of their migrations undoing their own moves: a VM pushed off an
overloaded host lands on a switched-off host (waking one looks cheap against its idle power),
which is emptied again at the next step; and every host is offered for emptying at every step,
so VMs shuffle between hosts of similar load.  STEADY keeps LR's forecast but:

1. **hysteresis** — a host is overloaded when its forecast (LR over the last 10 samples, one
   migration time ahead, x ``safety``) or its current demand exceeds ``high``; VMs are packed
   onto a host only while both stay under ``pack`` < ``high``, so a freshly packed host is not
   overloaded at the next wiggle;
2. **waking costs idle power** — PABFD measures the power increase against the planned load, and
   a switched-off host's increase includes its idle power, so VMs go to running hosts first;
3. **only light hosts are emptied** (below ``light`` utilisation), least utilised first, and
   only if *all* their VMs fit on running hosts; a host whose load is rising (forecast above
   now) is left alone;
4. **cool-down** — a VM that has just moved is not moved again for ``cooldown`` steps unless its
   host is overloaded;
5. **migration cost in the choice** — among the VMs of an overloaded host, the smallest-RAM VM
   that alone relieves the host is preferred (one short migration instead of several).

Name: ``steady`` (defaults) or ``steady:high=0.9,pack=0.8`` to override parameters.
"""

from __future__ import annotations


import numpy as np

from .base import ClusterState
from .consolidation import ConsolidationPolicy, RawMigration
from .detectors import LocalRegression, OverloadDetector
from .placement import PowerAwareBestFit
from .selection import VmSelector


class ForecastCap(OverloadDetector):
    """Overloaded when demand/capacity > ``limit`` or the LR forecast x ``safety`` > ``limit``."""

    def __init__(self, limit: float, safety: float = 1.0, name: str = "cap") -> None:
        self.limit = limit
        self.safety = safety
        self.lr = LocalRegression(1.0)
        self.name = f"{name}-{limit:g}"

    def forecast(self, state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        """LR forecast of each host's utilisation (0 while history is short).

        The least-squares forecast is linear in the samples, so adding a VM adds its own forecast
        scaled to the host: no per-candidate refit (this is what keeps planning fast).
        """
        n = self.lr.length
        if state.hist.shape[1] < n or len(hosts) == 0:
            return np.zeros(len(hosts))
        out = self.lr.predict(state, state.hist)[hosts]  # a mat-vec on a view: no row copies
        if extra_vm >= 0:
            vm = self.lr.predict(state, state.vm_hist[[extra_vm]])[0]
            out = out + vm * state.vm_mips[extra_vm] / state.cap[hosts]
        return out

    def overloaded(self, state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        hosts = np.asarray(hosts, dtype=np.int64)
        now = self.utilisation(state, hosts, extra_vm)
        return (now > self.limit) | (self.forecast(state, hosts, extra_vm) * self.safety > self.limit)


class RelievingMMT(VmSelector):
    """The smallest-RAM VM whose departure alone relieves the host; else plain MMT."""

    name = "rmmt"

    def __init__(self, detector: OverloadDetector) -> None:
        self.detector = detector

    def select(self, state: ClusterState, host: int) -> int:
        vms = list(state.lists[host])
        if not vms:
            return -1
        order = sorted(vms, key=lambda v: (state.vm_ram[v], -state.vm_req[v]))
        for v in order:
            state.remove_vm(v, host)
            ok = not self.detector.overloaded(state, np.array([host]))[0]
            state.add_vm(v, host)
            state.lists[host].remove(v)
            state.lists[host].insert(vms.index(v), v)
            if ok:
                return v
        return order[0]


class SteadyPolicy(ConsolidationPolicy):
    """See the module docstring.  Stateful across calls (cool-down), one instance per cluster."""

    defaults = {"high": 0.9, "pack": 0.8, "light": 0.5, "safety": 1.1, "cooldown": 3.0}

    def __init__(self, spec: str = "steady", **params: float) -> None:
        p = dict(self.defaults)
        if ":" in spec:
            for item in spec.split(":", 1)[1].split(","):
                if item.strip():
                    k, _, v = item.partition("=")
                    if k.strip() not in p:
                        from ..errors import UnknownPolicyError
                        raise UnknownPolicyError(f"unknown parameter {k!r} for steady; known: {', '.join(p)}")
                    p[k.strip()] = float(v)
        p.update(params)
        self.params = p
        detector = ForecastCap(p["high"], p["safety"], "over")
        super().__init__(detector, RelievingMMT(detector), cloudsim=False, name=spec)
        self.pack = ForecastCap(p["pack"], p["safety"], "pack")
        self.placement = PowerAwareBestFit(self.pack, cloudsim=False)
        self.step = 0
        self.moved: dict[str, int] = {}

    @property
    def needs_history(self) -> bool:
        return True

    def plan_state(self, state: ClusterState) -> list[RawMigration]:
        self.step += 1
        out = super().plan_state(state)
        for v, _, _ in out:
            self.moved[state.vm_names[v]] = self.step
        return out

    def consolidate_underloaded(self, state: ClusterState, over_mask: np.ndarray, origin: np.ndarray,
                                done: list[RawMigration]) -> list[RawMigration]:
        util = state.req_sum / state.cap
        running = state.nvms > 0
        fc = self.pack.forecast(state, np.arange(state.n_hosts))
        rising = fc > util + 0.05
        targets = {d for _, _, d in done}
        cool = self.step - int(self.params["cooldown"])
        candidates = [h for h in np.argsort(util, kind="stable")
                      if running[h] and not over_mask[h] and util[h] < self.params["light"]
                      and not rising[h] and h not in targets]
        excluded = over_mask | ~running
        out: list[RawMigration] = []
        for x in candidates:
            x = int(x)
            if excluded[x] or not state.lists[x]:
                continue
            vms = sorted(state.lists[x], key=lambda v: -state.vm_req[v])
            if any(self.moved.get(state.vm_names[v], -10 ** 9) > cool for v in vms):
                continue
            excluded[x] = True
            placed: list[tuple[int, int]] = []
            for v in vms:
                h = self.placement.find_host(state, v, excluded)
                if h < 0:
                    break
                state.remove_vm(v, x)
                state.add_vm(v, h)
                placed.append((v, h))
            if len(placed) < len(vms):
                for v, h in reversed(placed):
                    state.remove_vm(v, h)
                    state.add_vm(v, x)
                excluded[x] = False  # it still runs: others may land on it
                continue
            out.extend((v, int(origin[v]), h) for v, h in placed)
        return out


