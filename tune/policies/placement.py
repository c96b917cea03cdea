"""Where to put a VM: PABFD (power-aware best fit decreasing) and a simple least-loaded rule.

PABFD picks, among hosts where the VM fits (RAM, one core big enough, CPU left, VM slots) and
that would not become overloaded, the one whose power draw rises least.  It is evaluated with
numpy over all hosts at once: it is the inner loop of every consolidation plan.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

from .base import ClusterState, HostLoad, VMLoad
from .detectors import OverloadDetector, StaticThreshold


class PowerAwareBestFit:
    """PABFD's host choice for one VM.

    ``cloudsim=True`` reproduces CloudSim 3.0.3: the power increase is measured against the
    power at the utilisation *sampled* at the start of the interval (not the planned one), and a
    switched-off host counts as drawing idle power, so waking one looks cheap.  Otherwise the
    increase is measured against the planned load, and waking a host costs its idle power.
    """

    def __init__(self, detector: Optional[OverloadDetector] = None, *, cloudsim: bool = True,
                 stale_load: bool = False) -> None:
        self.detector = detector or StaticThreshold(0.8)
        self.cloudsim = cloudsim
        #: CloudSim 3.0.3 also measures the load *after* placement from the sampled load, so VMs
        #: planned onto a host in the same round are not seen (and a host woken in this round
        #: skips the overload check): VMs pile onto the cheapest host.
        self.stale_load = cloudsim and stale_load

    def candidates(self, state: ClusterState, v: int, excluded: np.ndarray) -> np.ndarray:
        r = state.vm_req[v]
        ok = ~excluded
        ok &= state.pe >= r
        ok &= state.cap - np.minimum(state.capped_sum, state.cap) >= r
        ok &= state.ram - state.ram_used >= state.vm_ram[v]
        ok &= state.nvms < state.max_vms
        return np.flatnonzero(ok)

    def find_host(self, state: ClusterState, v: int, excluded: np.ndarray) -> int:
        """Index of the chosen host, or -1 when no host can take ``v``."""
        hosts = self.candidates(state, v, excluded)
        if len(hosts) == 0:
            return -1
        dyn = np.minimum(state.capped_sum[hosts], state.cap[hosts])
        if self.stale_load:
            dyn = state.stale[hosts] * state.cap[hosts]
        busy = (state.stale[hosts] != 0) if getattr(self, "stale_gate", False) else dyn != 0
        if busy.any():
            over = np.zeros(len(hosts), dtype=bool)
            over[busy] = self.detector.overloaded(state, hosts[busy], v)
            if over.any():
                keep = ~over
                hosts, dyn = hosts[keep], dyn[keep]
                if len(hosts) == 0:
                    return -1
        cap = state.cap[hosts]
        after = state.power(hosts, (dyn + state.vm_req[v]) / cap)
        if self.cloudsim:
            before = state.stale_power(hosts)
        else:
            on = (state.nvms[hosts] > 0) | state.active[hosts]
            before = np.where(on, state.power(hosts, dyn / cap), 0.0)
        return int(hosts[int(np.argmin(after - before))])


def choose_destination(vm: VMLoad, hosts: Sequence[HostLoad], exclude: Iterable[str] = ()) -> Optional[str]:
    """The least loaded active host where ``vm``'s memory fits (the live migrate diagram's rule).

    >>> a = HostLoad("a", 100, 1024, [VMLoad("x", 512, 60)])
    >>> b = HostLoad("b", 100, 1024, [VMLoad("y", 256, 10)])
    >>> choose_destination(VMLoad("z", 512, 5), [a, b])
    'b'
    """
    skip = set(exclude)
    best: Optional[HostLoad] = None
    for h in hosts:
        if h.name in skip or not h.active or any(v.name == vm.name for v in h.vms):
            continue
        if h.ram_mb - h.ram_used < vm.ram_mb:
            continue
        if best is None or h.utilisation < best.utilisation:
            best = h
    return best.name if best else None


def choose_destination_pabfd(vm: VMLoad, hosts: Sequence[HostLoad], exclude: Iterable[str] = (), *,
                             detector: Optional[OverloadDetector] = None) -> Optional[str]:
    """PABFD's choice for one VM: least power increase, never onto a host it would overload."""
    if not hosts:
        return None
    others = [HostLoad(h.name, h.cpu_capacity, h.ram_mb, [v for v in h.vms if v.name != vm.name],
                       h.active, h.power_model, h.history, h.pe_capacity, h.max_vms) for h in hosts]
    extra = HostLoad("__new__", 1.0, 0.0, [vm])
    state = ClusterState.from_hosts([*others, extra])
    excluded = np.zeros(state.n_hosts, dtype=bool)
    excluded[-1] = True
    skip = set(exclude) | {h.name for h in hosts if any(v.name == vm.name for v in h.vms)}
    for i, h in enumerate(hosts):
        excluded[i] |= h.name in skip
    v = state.lists[-1][0]
    # the VM's own history is scaled to the dummy host; rescale it to "fraction of its demand"
    state.vm_mips[v] = vm.cpu_max or state.vm_mips[v]
    choice = PowerAwareBestFit(detector, cloudsim=False).find_host(state, v, excluded)
    return hosts[choice].name if choice >= 0 else None
