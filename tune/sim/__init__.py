"""Trace-driven simulation of VM consolidation (PlanetLab days, CloudSim-compatible metrics).

>>> from tune.sim import simulate, synthetic_day, DataCentre
>>> m = simulate(synthetic_day(40, steps=12), "thr-mmt-0.8", DataCentre(n_hosts=40))
>>> m.energy_kwh > 0
True
"""

from .engine import Simulator, simulate
from .metrics import COLUMNS, Metrics
from .reference import CLOUDSIM_3_0_3, reference_for
from .setup import G4, G5, VM_TYPES, DataCentre, HostType, VmType
from .traces import Workload, default_day, load_day, synthetic_day, write_day

__all__ = ["CLOUDSIM_3_0_3", "COLUMNS", "DataCentre", "G4", "G5", "HostType", "Metrics", "Simulator",
           "VM_TYPES", "VmType", "Workload", "default_day", "load_day", "reference_for", "simulate",
           "synthetic_day", "write_day"]
