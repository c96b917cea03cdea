"""Reading PlanetLab CPU traces: one file per VM, one integer percentage per 5-minute line.

A day is either a folder of such files (possibly one level down, as in CloudSim's
``workload/planetlab/20110303/``) or a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive of one, read
directly without unpacking to disk.  Files are taken in name order, as CloudSim's VM types are
assigned in contiguous blocks over that order.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from ..errors import SimulationError

#: samples in one day at 300 s
STEPS_PER_DAY = 288


@dataclass
class Workload:
    """CPU utilisation of M VMs over T steps, as fractions in [0, 1]."""

    source: str
    names: list[str]
    utilisation: np.ndarray  # shape (M, T)
    interval: float = 300.0

    @property
    def n_vms(self) -> int:
        return len(self.names)

    @property
    def n_steps(self) -> int:
        return int(self.utilisation.shape[1])


def parse_trace(text: str, where: str, steps: int = STEPS_PER_DAY) -> np.ndarray:
    """The first ``steps`` values of one trace file, as fractions; errors name file and line."""
    lines = text.splitlines()
    if len(lines) < steps:
        last = len(lines)
        raise SimulationError(f"truncated trace: {last} line(s), {steps} needed", file=where,
                              line=last + 1 if last else None)
    try:
        out = np.array(lines[:steps], dtype=float)
        if np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 100.0:
            return out / 100.0
    except ValueError:
        pass
    out = np.empty(steps)
    for i in range(steps):  # slow path, only to say which line is wrong
        raw = lines[i].strip()
        try:
            value = float(raw)
            if not np.isfinite(value):
                raise ValueError(raw)
        except ValueError:
            raise SimulationError(f"not a number: {raw[:40]!r}", file=where, line=i + 1) from None
        if not (0.0 <= value <= 100.0):
            raise SimulationError(f"CPU utilisation {value:g} % outside 0..100", file=where, line=i + 1)
        out[i] = value / 100.0
    return out


def _from_items(items: Iterable[tuple[str, bytes]], source: str, steps: int) -> Workload:
    names: list[str] = []
    rows: list[np.ndarray] = []
    for name, data in sorted(items):
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise SimulationError("not a text trace file", file=name) from None
        rows.append(parse_trace(text, name, steps))
        names.append(os.path.basename(name))
    if not rows:
        raise SimulationError("no trace files: an empty day", file=source)
    return Workload(source, names, np.vstack(rows))


def load_day(path: str, *, steps: int = STEPS_PER_DAY, limit: Optional[int] = None) -> Workload:
    """Load a day from a folder or an archive; ``limit`` keeps the first N VMs (name order)."""
    if not os.path.exists(path):
        raise SimulationError("no such trace folder or archive", file=path)
    if os.path.isdir(path):
        entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
        subdirs = [e for e in entries if os.path.isdir(os.path.join(path, e))]
        files = [e for e in entries if os.path.isfile(os.path.join(path, e))]
        if not files and len(subdirs) == 1:
            return load_day(os.path.join(path, subdirs[0]), steps=steps, limit=limit)
        files = files[:limit] if limit else files

        def read(p: str) -> bytes:
            with open(p, "rb") as f:
                return f.read()
        return _from_items(((os.path.join(path, f), read(os.path.join(path, f))) for f in files), path, steps)
    items = []
    try:
        # stream mode: one pass over the gzip data (random access would re-inflate it per file)
        with tarfile.open(path, "r|*") as tar:
            for m in tar:
                if not m.isfile() or os.path.basename(m.name).startswith("."):
                    continue
                f = tar.extractfile(m)
                items.append((f"{path}:{m.name}", f.read() if f else b""))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SimulationError(f"not a readable trace archive: {exc}", file=path) from None
    items.sort()
    items = items[:limit] if limit else items
    return _from_items(items, path, steps)


def default_day() -> str:
    """The day shipped with tune (2011-03-03, 1052 VMs)."""
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "planetlab", "20110303.tar.gz")


def synthetic_day(n_vms: int, *, steps: int = STEPS_PER_DAY, seed: int = 0) -> Workload:
    """A random but seeded PlanetLab-like day (benchmarks and tests): low mean, bursty."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(1.2, 0.1, size=(n_vms, 1))
    walk = np.cumsum(rng.normal(0, 0.03, size=(n_vms, steps)), axis=1)
    util = np.clip(base + walk - walk.mean(axis=1, keepdims=True), 0, 1)
    util = np.round(util * 100) / 100
    return Workload(f"synthetic-{n_vms}-{seed}", [f"vm{i:05d}" for i in range(n_vms)], util)


def write_day(workload: Workload, folder: str) -> None:
    """Write a workload as one file per VM (the PlanetLab layout)."""
    os.makedirs(folder, exist_ok=True)
    for name, row in zip(workload.names, workload.utilisation):
        with open(os.path.join(folder, name), "w") as f:
            f.write("\n".join(str(int(round(x * 100))) for x in row) + "\n")


__all__ = ["STEPS_PER_DAY", "Workload", "default_day", "load_day", "parse_trace", "synthetic_day", "write_day"]
