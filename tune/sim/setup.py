"""The simulated data centre: host and VM types (defaults: Beloglazov & Buyya's experiment)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import SimulationError
from ..power.models import HP_ML110_G4, HP_ML110_G5, PowerModel, power_tables


@dataclass(frozen=True)
class HostType:
    name: str
    cores: int
    mips_per_core: float
    ram_mb: float
    bandwidth_mbit: float
    power_model: PowerModel

    @property
    def mips(self) -> float:
        return self.cores * self.mips_per_core


@dataclass(frozen=True)
class VmType:
    mips: float
    ram_mb: float
    bandwidth_mbit: float = 100.0


G4 = HostType("G4", 2, 1860.0, 4096.0, 1000.0, HP_ML110_G4)
G5 = HostType("G5", 2, 2660.0, 4096.0, 1000.0, HP_ML110_G5)
#: CloudSim's four VM types, assigned in contiguous blocks over the VM files in name order
VM_TYPES = (VmType(2500, 870), VmType(2000, 1740), VmType(1000, 1740), VmType(500, 613))


@dataclass
class DataCentre:
    """Hosts alternate over ``host_types`` (host i has type i % len); VMs get types in blocks."""

    n_hosts: int = 800
    host_types: Sequence[HostType] = (G4, G5)
    vm_types: Sequence[VmType] = VM_TYPES
    interval: float = 300.0
    #: share of the link used by migrations (CloudSim: half, the rest is VM traffic)
    migration_share: float = 0.5
    #: CPU a migrating VM loses for the migration's duration (CloudSim: 10 %)
    migration_degradation: float = 0.1
    #: enforce RAM and VM slots (bandwidth) after the initial placement.  CloudSim's PlanetLab
    #: experiment does not: its cloudlets request no RAM or bandwidth (``UtilizationModelNull``),
    #: so once created a VM "needs" 0 MB and any number of VMs fit a host's memory.
    enforce_ram: bool = False
    #: CloudSim removes a VM for good as soon as its demand is exactly 0 at an event
    #: (``HostDynamicWorkload.getCompletedVms``: zero demand is taken for a finished cloudlet).
    drop_idle_vms: bool = True
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.n_hosts <= 0:
            raise SimulationError(f"n_hosts must be positive, got {self.n_hosts}")
        if not self.host_types or not self.vm_types:
            raise SimulationError("host_types and vm_types must not be empty")
        if self.interval <= 0:
            raise SimulationError(f"interval must be positive, got {self.interval}")
        if not 0 < self.migration_share <= 1:
            raise SimulationError(f"migration_share must be in (0, 1], got {self.migration_share}")

    def host_arrays(self) -> dict[str, np.ndarray]:
        types = [self.host_types[i % len(self.host_types)] for i in range(self.n_hosts)]
        return {
            "cap": np.array([t.mips for t in types]),
            "pe": np.array([t.mips_per_core for t in types]),
            "ram": np.array([t.ram_mb for t in types]),
            "bw": np.array([t.bandwidth_mbit for t in types]),
            "tables": power_tables([t.power_model for t in types]),
        }

    def vm_arrays(self, n_vms: int) -> dict[str, np.ndarray]:
        block = math.ceil(n_vms / len(self.vm_types))
        types = [self.vm_types[i // block] for i in range(n_vms)]
        return {
            "mips": np.array([t.mips for t in types]),
            "ram": np.array([t.ram_mb for t in types]),
            "bw": np.array([t.bandwidth_mbit for t in types]),
        }

    def check_fits(self, n_vms: int) -> None:
        """Refuse setups no placement can satisfy (more VM memory than all hosts have...)."""
        h = self.host_arrays()
        v = self.vm_arrays(n_vms)
        if v["ram"].sum() > h["ram"].sum():
            raise SimulationError(
                f"impossible setup: {n_vms} VMs need {v['ram'].sum():.0f} MB of RAM, "
                f"{self.n_hosts} hosts have {h['ram'].sum():.0f} MB (parameter n_hosts)")
        if v["mips"].max() > h["pe"].max():
            raise SimulationError("impossible setup: a VM type needs a faster core than any host has")
        slots = (h["bw"] // v["bw"].max()).sum()
        if n_vms > slots:
            raise SimulationError(f"impossible setup: {n_vms} VMs but bandwidth for {int(slots)} (parameter n_hosts)")
