"""Which VM to move off an overloaded host: MMT, MC, RS, MU (Beloglazov & Buyya 2012).

A selector is asked repeatedly, one VM at a time, until the host is no longer overloaded.
Ties go to the VM listed first on the host, as in CloudSim.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Optional

import numpy as np

from .base import ClusterState


class VmSelector(ABC):
    name: str = ""

    @abstractmethod
    def select(self, state: ClusterState, host: int) -> int:
        """Index of the VM to migrate off ``host``, or -1 if none can move."""

    def candidates(self, state: ClusterState, host: int) -> list[int]:
        return list(state.lists[host])


class MinimumMigrationTime(VmSelector):
    """MMT: the VM with the least RAM, the quickest to migrate (time = RAM / bandwidth)."""

    name = "mmt"

    def select(self, state: ClusterState, host: int) -> int:
        vms = self.candidates(state, host)
        if not vms:
            return -1
        rams = state.vm_ram[vms]
        return vms[int(np.argmin(rams))]


class MinimumUtilisation(VmSelector):
    """MU: the VM using the smallest share of its own capacity."""

    name = "mu"

    def select(self, state: ClusterState, host: int) -> int:
        vms = self.candidates(state, host)
        if not vms:
            return -1
        return vms[int(np.argmin(state.vm_req[vms] / state.vm_mips[vms]))]


class RandomSelection(VmSelector):
    """RS: a VM drawn at random; seeded, so a simulation is reproducible."""

    name = "rs"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def select(self, state: ClusterState, host: int) -> int:
        vms = self.candidates(state, host)
        return self.rng.choice(vms) if vms else -1


class MaximumCorrelation(VmSelector):
    """MC: the VM whose CPU history is best explained by the others' (highest R^2).

    Correlated VMs peak together; moving the most correlated one lowers the risk of the host
    saturating again.  Falls back to MMT while histories are too short to regress on.
    """

    name = "mc"

    def __init__(self, fallback: Optional[VmSelector] = None) -> None:
        self.fallback = fallback or MinimumMigrationTime()

    def select(self, state: ClusterState, host: int) -> int:
        vms = self.candidates(state, host)
        if len(vms) < 2:
            return vms[0] if vms else -1
        X = state.vm_hist[vms]
        n = X.shape[1]
        if n < len(vms) + 2:
            return self.fallback.select(state, host)
        best, best_r2 = -1, -np.inf
        for i in range(len(vms)):
            y = X[i]
            others = np.delete(X, i, axis=0).T
            A = np.column_stack([np.ones(n), others])
            coef, *_ = np.linalg.lstsq(A, y, rcond=None)
            resid = y - A @ coef
            tot = ((y - y.mean()) ** 2).sum()
            r2 = 1.0 - (resid @ resid) / tot if tot > 0 else 0.0
            if r2 > best_r2:
                best, best_r2 = vms[i], r2
        return best
