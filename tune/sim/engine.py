"""The trace-driven simulator: one day of PlanetLab load on a data centre, step by step.

Every 300 s the VMs' demand is read from the traces, the policy plans (through the same
:class:`~tune.policies.ConsolidationPolicy` code the live manager uses), migrations start and
end a few seconds later, and energy and SLA metrics are integrated between events.

The accounting follows CloudSim 3.0.3's ``PowerDatacenter`` exactly (see docs/simulator.md):

* events happen at 300.1, 600.1, ... s (cloudlets are submitted at 0.1 s) up to 86 100.1 s; the
  day ends when the last migrations started then have finished;
* energy between two events is the trapezoid of the power at the host utilisation *after* the
  first event and *before* the second, and a host whose utilisation was 0 draws nothing — so
  the first interval (0 to 300.1 s) costs nothing, and a host whose VMs are all idle counts as
  switched off;
* a VM requests its trace value x its MIPS, capped at one core of its host; an oversubscribed
  host scales every VM down (rounded down to whole MIPS);
* a migration takes RAM / (bandwidth x 1/2) seconds; meanwhile the VM gets 90 % of its CPU on
  the source and the destination already reserves 10 %;
* SLATAH counts the time a host gets less than requested (this includes any destination host
  during an incoming migration: its VM is only 10 % there yet); PDM is the CPU lost by VMs
  being migrated; a host shutdown is an active-to-idle transition of a host (hosts never used
  count once at the start).
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ..errors import SimulationError
from ..policies.base import HISTORY_LENGTH, ClusterState
from ..policies.consolidation import ConsolidationPolicy, policy_from_name
from ..power.models import interp_tables
from .metrics import Metrics
from .setup import DataCentre
from .traces import Workload, load_day

log = logging.getLogger(__name__)


@dataclass
class _Snapshot:
    time: float
    util: np.ndarray
    active: np.ndarray
    alloc: np.ndarray
    req: np.ndarray
    pdm_rate: float
    req_rate: float
    load: np.ndarray


class Simulator:
    """Simulate ``workload`` under ``policy`` on ``datacentre`` (default: 800 G4/G5 hosts)."""

    def __init__(self, workload: Union[Workload, str], policy: Union[ConsolidationPolicy, str],
                 datacentre: Optional[DataCentre] = None) -> None:
        self.workload = load_day(workload) if isinstance(workload, str) else workload
        self.policy = policy_from_name(policy) if isinstance(policy, str) else policy
        self.dc = datacentre or DataCentre()
        self.dc.validate()
        if self.workload.n_steps < 2:
            raise SimulationError("a day needs at least 2 samples", file=self.workload.source)
        self.dc.check_fits(self.workload.n_vms)
        # run state (set up by run())
        self.flights: list[tuple[int, int, float]] = []
        self.prev: Optional[_Snapshot] = None
        self.was_active = np.ones(self.dc.n_hosts, bool)
        self.shutdowns = 0
        self.dropped = 0
        self.lists: list[list[int]] = []
        self.vm_host = np.zeros(0, np.int64)
        self.in_mig = np.zeros(0, bool)

    # -- helpers -------------------------------------------------------------------------------
    def _load(self, t: float) -> np.ndarray:
        """Demand (MIPS) of every VM at time ``t``: the trace, linearly interpolated."""
        s = t / self.interval
        i = min(int(s), self.n_steps - 1)
        frac = s - i
        a = self.trace[:, i]
        return (a + (self.trace[:, i + 1] - a) * frac) * self.mips

    def _snapshot(self, t: float, start: bool) -> _Snapshot:
        N = self.n_hosts
        r = self._load(t)
        alive = self.vm_host >= 0
        host = np.where(alive, self.vm_host, 0)
        r_alive = np.where(alive, r, 0.0)
        capped = np.minimum(r_alive, self.pe[host])
        required = np.bincount(host, capped, N)
        if self.flights:
            fv = np.fromiter((f[0] for f in self.flights), np.int64, len(self.flights))
            fd = np.fromiter((f[1] for f in self.flights), np.int64, len(self.flights))
            cin = self.degr * np.minimum(r[fv], self.pe[fd])
            required += np.bincount(fd, cin, N)
        over = required > self.cap
        f = np.where(over, self.cap / np.where(required > 0, required, 1.0), 1.0)
        alloc = capped * f[host] * np.where(self.in_mig, 1.0 - self.degr, 1.0)
        alloc = np.where(over[host], np.floor(alloc), alloc)
        # the source counts a migrating VM at full demand (allocation / 0.9)
        contrib = np.where(self.in_mig, alloc / (1.0 - self.degr), alloc)
        util_mips = np.bincount(host, contrib, N)
        req = np.bincount(host, r_alive, N)
        pdm_rate = 0.0
        if self.flights:
            # the destination counts its 10 % share as is, but the full demand as requested
            ain = cin * f[fd]
            util_mips += np.bincount(fd, np.where(over[fd], np.floor(ain), ain), N)
            req += np.bincount(fd, r[fv], N)
            _, first = np.unique(fv, return_index=True)
            pdm_rate = float((r[fv[first]] - alloc[fv[first]]).sum())
        util = np.minimum(util_mips / self.cap, 1.0)
        return _Snapshot(t, util, util_mips > 0, util_mips, req, pdm_rate, float(r_alive.sum()), r)

    def _drop_finished(self, snap: _Snapshot) -> None:
        """CloudSim quirk: a VM whose demand is exactly 0 is "completed" and leaves for good."""
        if not self.drop_idle:
            return
        gone = np.flatnonzero((snap.load == 0.0) & (self.vm_host >= 0) & ~self.in_mig)
        for v in gone:
            self.lists[int(self.vm_host[v])].remove(int(v))
        self.vm_host[gone] = -1
        self.dropped += len(gone)

    def _frame(self, prev: Optional[_Snapshot], pre: _Snapshot) -> None:
        if prev is None:
            return
        dt = pre.time - prev.time
        if dt <= 0:
            return
        p0 = interp_tables(self.tables, prev.util)
        p1 = interp_tables(self.tables, pre.util)
        on = prev.util > 0
        self.energy += float(np.where(on, (p0 + p1) / 2.0, 0.0).sum()) * dt
        self.active_time += float(prev.active.sum()) * dt
        self.violation_time += float((prev.active & (prev.alloc < prev.req)).sum()) * dt
        self.pdm_lost += prev.pdm_rate * dt
        self.requested += prev.req_rate * dt

    def _commit(self, post: _Snapshot) -> None:
        self.shutdowns += int((self.was_active & ~post.active).sum())
        self.was_active = post.active
        self.prev = post

    def _finish_flights(self, until: float) -> None:
        """Process migration ends up to ``until`` (each end is an event, as in CloudSim)."""
        while self.flights:
            e = min(f[2] for f in self.flights)
            if e > until:
                return
            pre = self._snapshot(e, False)
            self._frame(self.prev, pre)
            self._drop_finished(pre)
            done = [f for f in self.flights if f[2] == e]
            self.flights = [f for f in self.flights if f[2] != e]
            for v, dst, _ in done:
                src = int(self.vm_host[v])
                self.lists[src].remove(v)
                self.lists[dst].append(v)
                self.vm_host[v] = dst
            still = {f[0] for f in self.flights}
            for v, _, _ in done:
                self.in_mig[v] = v in still
            post = self._snapshot(e, False)
            self._drop_finished(post)
            self._commit(post)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> Metrics:
        t0 = _time.perf_counter()
        dc, wl = self.dc, self.workload
        H = dc.host_arrays()
        V = dc.vm_arrays(wl.n_vms)
        self.n_hosts, self.n_vms, self.n_steps = dc.n_hosts, wl.n_vms, wl.n_steps
        self.interval = wl.interval
        self.cap, self.pe, self.tables = H["cap"], H["pe"], H["tables"]
        self.mips, self.vram = V["mips"], V["ram"]
        self.degr = dc.migration_degradation
        mig_bw = H["bw"] * dc.migration_share / 8.0  # MB/s
        max_vms = (H["bw"] // V["bw"].max()).astype(np.int64)
        self.trace = np.hstack([wl.utilisation, wl.utilisation[:, -1:]])
        N, M = self.n_hosts, self.n_vms
        policy = self.policy

        init = ClusterState(cap=self.cap, pe=self.pe, ram=H["ram"], tables=self.tables,
                            vm_req=self.mips, vm_mips=self.mips, vm_ram=self.vram, lists=[[] for _ in range(N)],
                            stale=np.zeros(N), vm_req_check=np.zeros(M), max_vms=max_vms)
        self.lists = policy.initial_placement(init)
        self.vm_host = np.full(M, -1, np.int64)
        for h, vs in enumerate(self.lists):
            self.vm_host[vs] = h
        self.in_mig = np.zeros(M, bool)
        self.flights = []
        self.energy = self.active_time = self.violation_time = self.pdm_lost = self.requested = 0.0
        self.shutdowns = 0
        self.dropped = 0
        self.drop_idle = dc.drop_idle_vms
        self.was_active = np.ones(N, bool)
        self.prev = None
        migrations = 0
        L = HISTORY_LENGTH if policy.needs_history else 0
        hist = np.zeros((M, L))
        series = {k: np.zeros(self.n_steps - 1) for k in ("time", "active_hosts", "power_w", "overloaded_hosts",
                                                          "migrations")}
        step_ram = H["ram"] if dc.enforce_ram else np.full(N, np.inf)
        step_slots = max_vms if dc.enforce_ram else np.full(N, 1 << 30)
        t = 0.1
        for k in range(1, self.n_steps):
            t = t + self.interval
            self._finish_flights(t)
            pre = self._snapshot(t, False)
            self._frame(self.prev, pre)
            self._drop_finished(pre)
            r = pre.load
            if L:
                hist[:, 1:] = hist[:, :-1].copy()
                hist[:, 0] = r / self.mips
            state = ClusterState(cap=self.cap, pe=self.pe, ram=step_ram, tables=self.tables, vm_req=r,
                                 vm_mips=self.mips, vm_ram=self.vram, lists=self.lists, stale=pre.util,
                                 vm_hist=hist[:, :min(k, L)] if L else None, max_vms=step_slots)
            raw = policy.plan_state(state)
            for v, _src, dst in raw:
                self.flights.append((v, dst, t + self.vram[v] / mig_bw[dst]))
                self.in_mig[v] = True
            migrations += len(raw)
            post = self._snapshot(t, True)
            self._commit(post)
            i = k - 1
            series["time"][i] = t
            series["active_hosts"][i] = post.active.sum()
            series["power_w"][i] = float(np.where(post.util > 0, interp_tables(self.tables, post.util), 0).sum())
            series["overloaded_hosts"][i] = int((pre.active & (pre.alloc < pre.req)).sum())
            series["migrations"][i] = len(raw)
        self._finish_flights(float("inf"))
        slatah = self.violation_time / self.active_time if self.active_time else 0.0
        pdm = self.pdm_lost / self.requested if self.requested else 0.0
        wall = _time.perf_counter() - t0
        log.info("%s on %s: %.2f kWh, %d migrations, %.2fs", policy.name, wl.source, self.energy / 3.6e6,
                 migrations, wall)
        return Metrics(policy.name, wl.source, float(self.energy / 3.6e6), float(slatah), float(pdm),
                       int(migrations), int(self.shutdowns), N, M, wall, series)


def simulate(day: Union[Workload, str], policy: Union[ConsolidationPolicy, str] = "thr-mmt-0.8",
             datacentre: Optional[DataCentre] = None) -> Metrics:
    """Run one day; ``day`` is a folder, an archive or a :class:`Workload`."""
    return Simulator(day, policy, datacentre).run()
