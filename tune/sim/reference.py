"""CloudSim 3.0.3's results on the five PlanetLab days (measured by the project; see
``/work/shared/data/planetlab/README.md``), kept as data so ``tune simulate --compare`` can print
them beside ours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Reference:
    day: str
    policy: str
    energy_kwh: float
    slatah: float  #: fraction
    pdm: float     #: fraction
    migrations: int
    shutdowns: int


_TABLE = """
20110303 THR-MMT-0.8 198.08 5.00 0.07 27728 6109
20110303 IQR-MMT-1.5 193.63 5.02 0.07 27592 6045
20110303 MAD-MMT-2.5 189.79 5.09 0.07 27781 5981
20110303 LR-MMT-1.2 167.83 5.72 0.08 27649 5190
20110303 DVFS 764.96 0.00 0.00 0 473
20110306 THR-MMT-0.8 150.70 5.21 0.08 21575 4869
20110306 IQR-MMT-1.5 147.93 5.31 0.08 21748 4846
20110306 MAD-MMT-2.5 145.85 5.40 0.08 22129 4873
20110306 LR-MMT-1.2 127.98 5.99 0.08 21661 4159
20110306 DVFS 618.28 0.00 0.00 0 544
20110309 THR-MMT-0.8 162.20 5.26 0.07 23376 5126
20110309 IQR-MMT-1.5 161.22 5.21 0.07 23642 5090
20110309 MAD-MMT-2.5 159.27 5.09 0.07 23353 5106
20110309 LR-MMT-1.2 139.40 6.31 0.08 24239 4490
20110309 DVFS 678.96 0.00 0.00 0 591
20110322 THR-MMT-0.8 194.23 5.14 0.06 28381 5793
20110322 IQR-MMT-1.5 193.63 5.00 0.06 27970 5819
20110322 MAD-MMT-2.5 188.80 5.08 0.06 27644 5728
20110322 LR-MMT-1.2 172.88 6.34 0.07 31376 5378
20110322 DVFS 956.81 0.00 0.00 0 406
20110325 THR-MMT-0.8 173.04 5.00 0.07 24712 5443
20110325 IQR-MMT-1.5 169.93 4.99 0.06 24385 5317
20110325 MAD-MMT-2.5 165.94 4.91 0.06 23761 5256
20110325 LR-MMT-1.2 149.83 5.76 0.08 26320 4774
20110325 DVFS 763.54 0.00 0.00 0 477
"""

#: (day, POLICY) -> Reference; percentages are stored as fractions
CLOUDSIM_3_0_3: dict[tuple[str, str], Reference] = {}
for _line in _TABLE.strip().splitlines():
    _d, _p, _e, _s, _pdm, _m, _h = _line.split()
    CLOUDSIM_3_0_3[(_d, _p)] = Reference(_d, _p, float(_e), float(_s) / 100, float(_pdm) / 100, int(_m), int(_h))

#: with no power management, 800 hosts at full power for a day
ALWAYS_ON_KWH = 2419.2


def reference_for(day: str, policy: str) -> Optional[Reference]:
    """CloudSim's figures for ``day`` (``20110303``, or a path containing it) and ``policy``."""
    key = policy.upper()
    for d in {x for x, _ in CLOUDSIM_3_0_3}:
        if d in day:
            return CLOUDSIM_3_0_3.get((d, key))
    return None
