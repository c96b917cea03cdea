"""What a simulated day measured: Beloglazov & Buyya's metrics, and the per-step series."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Metrics:
    """Energy, SLA violation and migration counts of one simulated day.

    * ``slatah``: share of the hosts' active time spent with demand above what they could give;
    * ``pdm``: share of the VMs' requested CPU lost to migrations (the 10 % degradation);
    * ``slav = slatah * pdm`` and ``esv = energy * slav``: the single figures to minimise.
    """

    policy: str
    day: str
    energy_kwh: float
    slatah: float
    pdm: float
    migrations: int
    shutdowns: int
    n_hosts: int
    n_vms: int
    wall_time: float = 0.0
    series: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def slav(self) -> float:
        return self.slatah * self.pdm

    @property
    def esv(self) -> float:
        return self.energy_kwh * self.slav

    def as_dict(self, *, series: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d.pop("series")
        d["slav"] = self.slav
        d["esv"] = self.esv
        if series:
            d["series"] = {k: np.asarray(v).tolist() for k, v in self.series.items()}
        return d

    def row(self) -> list[str]:
        """Cells for a table: energy, SLATAH, PDM, SLAV, ESV, migrations, shutdowns."""
        return [f"{self.energy_kwh:.2f}", f"{self.slatah * 100:.2f}%", f"{self.pdm * 100:.3f}%",
                f"{self.slav * 1e5:.2f}e-5", f"{self.esv * 1e3:.3f}e-3", str(self.migrations),
                str(self.shutdowns)]


COLUMNS = ["energy kWh", "SLATAH", "PDM", "SLAV", "ESV", "migrations", "shutdowns"]
