"""Host power models: watts as a function of CPU utilisation.

The simulator evaluates thousands of hosts per step, so every model also offers a vectorised
:meth:`PowerModel.power_array`.  The SPECpower tables of the two servers used by Beloglazov &
Buyya (and CloudSim's power examples) are built in: :data:`HP_ML110_G4` and :data:`HP_ML110_G5`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class PowerModel(ABC):
    """Power drawn by a host at utilisation ``u`` in [0, 1]."""

    name: str = ""

    @abstractmethod
    def power(self, utilisation: float) -> float:
        """Watts at ``utilisation`` (clipped to [0, 1])."""

    def power_array(self, utilisation: np.ndarray) -> np.ndarray:
        return np.array([self.power(float(u)) for u in np.asarray(utilisation).ravel()]).reshape(
            np.shape(utilisation))

    @property
    def idle(self) -> float:
        return self.power(0.0)

    @property
    def peak(self) -> float:
        return self.power(1.0)


class TablePowerModel(PowerModel):
    """SPECpower-style table at 0, 10, ..., 100 % utilisation, linear in between.

    >>> m = TablePowerModel("x", [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    >>> round(m.power(0.25), 9)
    25.0
    """

    def __init__(self, name: str, watts: Sequence[float]) -> None:
        if len(watts) != 11:
            raise ValueError("a power table has 11 points: 0, 10, ..., 100 % utilisation")
        self.name = name
        self.table = np.asarray(watts, dtype=float)
        self.grid = np.linspace(0.0, 1.0, 11)

    def power(self, utilisation: float) -> float:
        return float(np.interp(min(max(utilisation, 0.0), 1.0), self.grid, self.table))

    def power_array(self, utilisation: np.ndarray) -> np.ndarray:
        return np.interp(np.clip(utilisation, 0.0, 1.0), self.grid, self.table)

    def __repr__(self) -> str:
        return f"TablePowerModel({self.name!r})"


class LinearPowerModel(PowerModel):
    """``idle + (peak - idle) * u``: the usual first approximation for a live cluster."""

    def __init__(self, idle: float, peak: float, name: str = "linear") -> None:
        self.name = name
        self._idle = float(idle)
        self._peak = float(peak)

    def power(self, utilisation: float) -> float:
        u = min(max(utilisation, 0.0), 1.0)
        return self._idle + (self._peak - self._idle) * u

    def power_array(self, utilisation: np.ndarray) -> np.ndarray:
        return self._idle + (self._peak - self._idle) * np.clip(utilisation, 0.0, 1.0)


#: HP ProLiant ML110 G4 (Xeon 3040, 2 x 1860 MIPS), SPECpower, watts.
HP_ML110_G4 = TablePowerModel("HP ProLiant ML110 G4",
                              [86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117])
#: HP ProLiant ML110 G5 (Xeon 3075, 2 x 2660 MIPS), SPECpower, watts.
HP_ML110_G5 = TablePowerModel("HP ProLiant ML110 G5",
                              [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135])


def power_tables(models: Sequence[PowerModel]) -> np.ndarray:
    """An (N, 11) table of watts for N hosts, for vectorised interpolation.

    Models that are not tables are sampled at 0, 10, ..., 100 %.
    """
    out = np.empty((len(models), 11))
    cache: dict[int, np.ndarray] = {}
    for i, m in enumerate(models):
        row = cache.get(id(m))
        if row is None:
            row = m.table if isinstance(m, TablePowerModel) else np.array(
                [m.power(x / 10) for x in range(11)])
            cache[id(m)] = row
        out[i] = row
    return out


def interp_tables(tables: np.ndarray, utilisation: np.ndarray) -> np.ndarray:
    """Watts for each row of ``tables`` at the matching ``utilisation`` (clipped to [0, 1])."""
    u = np.clip(utilisation, 0.0, 1.0) * 10.0
    lo = np.minimum(u.astype(np.int64), 9)
    frac = u - lo
    rows = np.arange(len(tables)) if tables.ndim == 2 and len(tables) == len(u) else None
    if rows is None:
        raise ValueError("one table row per utilisation value")
    a = tables[rows, lo]
    return a + frac * (tables[rows, lo + 1] - a)
