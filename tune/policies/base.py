"""Value types shared by the live manager and the simulator, and the array form policies run on.

The live manager describes the cluster as :class:`HostLoad` objects (a few dozen hosts); the
simulator has hundreds of hosts and a thousand VMs at every one of 288 steps.  Both end up in a
:class:`ClusterState` (numpy arrays plus one VM list per host) and go through the *same*
consolidation code, so what we measure in simulation is what runs on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..power.models import PowerModel

#: History kept per VM (CloudSim keeps 30 samples).
HISTORY_LENGTH = 30


@dataclass
class VMLoad:
    """One VM as a policy sees it.

    ``cpu_demand`` is in the unit of the host capacity (MIPS in the simulator, percent of one
    CPU x cores in the live manager).  ``history`` holds past utilisation fractions, most recent
    first, of ``cpu_max`` when given, else of the host capacity.
    """

    name: str
    ram_mb: float
    cpu_demand: float
    history: Sequence[float] = ()
    cpu_max: Optional[float] = None

    def __post_init__(self) -> None:
        self.history = tuple(self.history)  # never share a caller's mutable list


@dataclass
class HostLoad:
    """One physical host and the VMs on it."""

    name: str
    cpu_capacity: float
    ram_mb: float
    vms: list[VMLoad] = field(default_factory=list)
    active: bool = True
    power_model: Optional["PowerModel"] = None
    history: Sequence[float] = ()
    #: capacity of one core: a VM (one vCPU) demanding more cannot go there (CloudSim's rule).
    pe_capacity: Optional[float] = None
    max_vms: Optional[int] = None

    def __post_init__(self) -> None:
        self.vms = list(self.vms)
        self.history = tuple(self.history)

    @property
    def cpu_used(self) -> float:
        return float(sum(v.cpu_demand for v in self.vms))

    @property
    def ram_used(self) -> float:
        return float(sum(v.ram_mb for v in self.vms))

    @property
    def utilisation(self) -> float:
        """CPU demand over capacity (may exceed 1 on an overloaded host)."""
        return self.cpu_used / self.cpu_capacity if self.cpu_capacity > 0 else 0.0


@dataclass(frozen=True)
class Migration:
    vm: str
    source: str
    destination: str


@dataclass
class Plan:
    """What a policy wants done: migrations first, then hosts to switch off; hosts to wake first."""

    migrations: list[Migration] = field(default_factory=list)
    power_off: list[str] = field(default_factory=list)
    power_on: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.migrations)


class ClusterState:
    """The cluster as arrays; policies mutate a scratch copy while planning.

    Hosts are indexed 0..N-1, VMs 0..M-1.  ``lists[h]`` is the ordered list of VMs on host
    ``h`` (order matters: CloudSim breaks ties by it).  ``stale`` is the utilisation measured at
    the last sample (CloudSim's PABFD compares power against it, not against the planned load).
    """

    def __init__(self, *, cap: np.ndarray, pe: np.ndarray, ram: np.ndarray, tables: np.ndarray,
                 vm_req: np.ndarray, vm_mips: np.ndarray, vm_ram: np.ndarray, lists: list[list[int]],
                 stale: Optional[np.ndarray] = None, vm_hist: Optional[np.ndarray] = None,
                 max_vms: Optional[np.ndarray] = None, host_names: Optional[list[str]] = None,
                 vm_names: Optional[list[str]] = None, vm_req_check: Optional[np.ndarray] = None) -> None:
        self.n_hosts = len(cap)
        self.n_vms = len(vm_req)
        self.cap = np.asarray(cap, dtype=float)
        self.pe = np.asarray(pe, dtype=float)
        self.ram = np.asarray(ram, dtype=float)
        self.tables = tables
        self.vm_req = np.asarray(vm_req, dtype=float)
        #: demand used by overload checks (CloudSim: 0 for VMs still being created)
        self.vm_req_check = self.vm_req if vm_req_check is None else np.asarray(vm_req_check, float)
        self.vm_mips = np.asarray(vm_mips, dtype=float)
        self.vm_ram = np.asarray(vm_ram, dtype=float)
        self.vm_hist = (np.zeros((self.n_vms, 0)) if vm_hist is None else vm_hist)
        self.max_vms = (np.full(self.n_hosts, 1 << 30) if max_vms is None else np.asarray(max_vms))
        self.host_names = host_names or [f"h{i}" for i in range(self.n_hosts)]
        self.vm_names = vm_names or [f"vm{i}" for i in range(self.n_vms)]
        self.lists = [list(x) for x in lists]
        self.vm_host = np.full(self.n_vms, -1, dtype=np.int64)
        lens = np.fromiter(map(len, self.lists), dtype=np.int64, count=self.n_hosts)
        if lens.sum():
            flat = np.fromiter(chain.from_iterable(self.lists), dtype=np.int64, count=int(lens.sum()))
            self.vm_host[flat] = np.repeat(np.arange(self.n_hosts), lens)
        self._stale_power: Optional[np.ndarray] = None
        placed = self.vm_host >= 0
        hp = self.vm_host[placed]
        n = self.n_hosts
        self.vm_capped = np.zeros(self.n_vms)
        self.vm_capped[placed] = np.minimum(self.vm_req[placed], self.pe[hp])
        self.req_sum = np.bincount(hp, self.vm_req_check[placed], minlength=n)
        self.capped_sum = np.bincount(hp, self.vm_capped[placed], minlength=n)
        self.ram_used = np.bincount(hp, self.vm_ram[placed], minlength=n)
        self.nvms = np.bincount(hp, minlength=n).astype(np.int64)
        self.stale = (np.minimum(self.capped_sum, self.cap) / self.cap) if stale is None else np.asarray(stale, float)
        self.active = (self.nvms > 0) | (self.stale > 0)
        L = self.vm_hist.shape[1]
        self.hist = np.zeros((n, L))
        if L and placed.any():
            np.add.at(self.hist, hp, self.vm_hist[placed] * (self.vm_mips[placed] / self.cap[hp])[:, None])

    # -- incremental updates while planning ------------------------------------------------
    def alloc_sum(self) -> np.ndarray:
        return np.minimum(self.capped_sum, self.cap)

    def add_vm(self, v: int, h: int) -> None:
        self.lists[h].append(v)
        capped = min(self.vm_req[v], self.pe[h])
        self.req_sum[h] += self.vm_req_check[v]
        self.capped_sum[h] += capped
        self.ram_used[h] += self.vm_ram[v]
        self.nvms[h] += 1
        if self.hist.shape[1]:
            self.hist[h] += self.vm_hist[v] * (self.vm_mips[v] / self.cap[h])

    def remove_vm(self, v: int, h: int) -> None:
        self.lists[h].remove(v)
        capped = min(self.vm_req[v], self.pe[h])
        self.req_sum[h] -= self.vm_req_check[v]
        self.capped_sum[h] -= capped
        self.ram_used[h] -= self.vm_ram[v]
        self.nvms[h] -= 1
        if self.hist.shape[1]:
            self.hist[h] -= self.vm_hist[v] * (self.vm_mips[v] / self.cap[h])
        if self.nvms[h] == 0:  # kill rounding residue on an emptied host
            self.req_sum[h] = self.capped_sum[h] = self.ram_used[h] = 0.0
            if self.hist.shape[1]:
                self.hist[h] = 0.0

    def stale_power(self, hosts: np.ndarray) -> np.ndarray:
        """Watts of ``hosts`` at their sampled utilisation (computed once per plan)."""
        if self._stale_power is None:
            self._stale_power = self.power(np.arange(self.n_hosts), self.stale)
        return self._stale_power[hosts]

    def power(self, hosts: np.ndarray, utilisation: np.ndarray) -> np.ndarray:
        """Watts of ``hosts`` at ``utilisation`` (vectorised table interpolation)."""
        u = np.clip(utilisation, 0.0, 1.0) * 10.0
        lo = np.minimum(u.astype(np.int64), 9)
        frac = u - lo
        flat = self.tables.ravel()  # 1-D take is much cheaper than 2-D fancy indexing
        i = np.asarray(hosts) * self.tables.shape[1] + lo
        a = flat.take(i)
        return a + frac * (flat.take(i + 1) - a)

    # -- building from value objects ---------------------------------------------------------
    @classmethod
    def from_hosts(cls, hosts: Sequence[HostLoad], *, history_length: int = HISTORY_LENGTH) -> "ClusterState":
        """Arrays for a live cluster.  Hosts without a power model get a linear 100-200 W one."""
        from ..power.models import LinearPowerModel, power_tables
        names: list[str] = []
        req: list[float] = []
        mips: list[float] = []
        ram: list[float] = []
        hists: list[Sequence[float]] = []
        lists: list[list[int]] = []
        seen: set[str] = set()
        for h in hosts:
            ids = []
            for vm in h.vms:
                if vm.name in seen:
                    raise ValueError(f"VM {vm.name!r} appears on two hosts")
                seen.add(vm.name)
                ids.append(len(names))
                names.append(vm.name)
                req.append(vm.cpu_demand)
                mips.append(vm.cpu_max if vm.cpu_max else h.cpu_capacity)
                ram.append(vm.ram_mb)
                hists.append(vm.history)
            lists.append(ids)
        L = min(history_length, max((len(x) for x in hists), default=0))
        vm_hist = np.zeros((len(names), L))
        for i, hh in enumerate(hists):
            k = min(L, len(hh))
            vm_hist[i, :k] = np.asarray(hh[:k], dtype=float)
        default = LinearPowerModel(100.0, 200.0)
        models = [h.power_model or default for h in hosts]
        cap = np.array([h.cpu_capacity for h in hosts], dtype=float)
        state = cls(cap=cap, pe=np.array([h.pe_capacity or h.cpu_capacity for h in hosts], float),
                    ram=np.array([h.ram_mb for h in hosts], float), tables=power_tables(models),
                    vm_req=np.array(req, float), vm_mips=np.array(mips, float),
                    vm_ram=np.array(ram, float), lists=lists, vm_hist=vm_hist,
                    max_vms=np.array([h.max_vms if h.max_vms is not None else 1 << 30 for h in hosts]),
                    host_names=[h.name for h in hosts], vm_names=names)
        # a host's own history stands in for its VMs' when they have none (live probes often
        # sample the host, not each domain)
        L_host = min(history_length, max((len(h.history) for h in hosts), default=0))
        if L_host > state.hist.shape[1]:
            pad = L_host - state.hist.shape[1]
            state.hist = np.hstack([state.hist, np.zeros((state.n_hosts, pad))])
            state.vm_hist = np.hstack([state.vm_hist, np.zeros((state.n_vms, pad))])
        for i, h in enumerate(hosts):
            if h.history and not any(len(v.history) for v in h.vms):
                k = min(len(h.history), state.hist.shape[1])
                state.hist[i, :k] = np.asarray(h.history[:k], dtype=float)
        state.stale = np.array([min(h.utilisation, 1.0) if h.active else 0.0 for h in hosts])
        state.active = np.array([h.active for h in hosts], dtype=bool)
        return state
