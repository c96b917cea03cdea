"""Shared pieces of the benchmarks: the machine line, tables, percentiles, throw-away apps.

Every benchmark prints one table headed by the machine and the date, with the median of
several runs; ``--quick`` runs a tiny size in a few seconds (CI only checks that it runs).
The wrapper class :class:`BenchService` is what the benchmark applications' wrappers point
at (key ``common.BenchService``): its methods return at once and record when they were
entered, so a benchmark measures tune and not the wrapper.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)


# ---- the machine and the table -----------------------------------------------------------------
def machine() -> str:
    """``AMD EPYC, 2 cores, 23.5 GiB, Linux 6.1, Python 3.11.2`` (what the numbers ran on)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
            mem = f", {kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{model}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def load() -> str:
    """The load averages (1, 5, 15 min): other work on the machine skews every figure."""
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def today() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M")


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                runs: int, notes: Sequence[str] = ()) -> None:
    """A Markdown table (pastes into docs/benchmarks.md as is) with its machine, date and runs."""
    rows = [[_cell(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print(f"\n## {title}")
    print(f"machine: {machine()}")
    print(f"date: {today()}; median of {runs} run(s); {load()} at the end")
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    for n in notes:
        print(f"\n{n}")
    sys.stdout.flush()


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# ---- statistics --------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear interpolation, of a non-empty sample."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def repeat(fn: Callable[[], float], runs: int) -> list[float]:
    return [fn() for _ in range(runs)]


# ---- the wrapper every benchmark app uses ------------------------------------------------------
class Hits:
    """When wrapper methods were entered (``time.perf_counter()``), and a way to wait for them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.times: list[tuple[str, str, float]] = []
        self.count = 0

    def add(self, srname: str, method: str) -> None:
        t = time.perf_counter()
        with self.cond:
            self.times.append((srname, method, t))
            self.count += 1
            self.cond.notify_all()

    def reset(self) -> None:
        with self.cond:
            self.times.clear()
            self.count = 0

    def wait_count(self, n: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.count < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True


HITS = Hits()


class BenchService:
    """A wrapper class that does nothing: ``noop`` returns at once; ``hit`` records its entry."""

    def __init__(self, ctx: Any = None) -> None:
        self.name = getattr(ctx, "srname", "?")

    def hit(self, *args: Any) -> None:
        HITS.add(self.name, "hit")

    def noop(self, *args: Any) -> None:
        return None

    def start(self, *args: Any) -> None:
        return None

    def stop(self, *args: Any) -> None:
        return None


class NodeCommand:
    """A wrapper class whose ``start`` runs a command on the instance's node (``$arg``-free)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def start(self, command: str, directory: str) -> None:
        from tune.remote.base import Shell
        ex = self.ctx.executor
        ex.run(Shell(f"cd {_q(ex.path(directory))} && {command}"), timeout=120)

    def stop(self, *args: Any) -> None:
        return None


def _q(s: str) -> str:
    import shlex
    return shlex.quote(s)


# ---- throw-away applications -------------------------------------------------------------------
WDL = """<wrapper name="Bench">
  <method name="hit" key="common.BenchService" method="hit"><param value="$arg"/></method>
  <method name="noop" key="common.BenchService" method="noop"/>
  <method name="start" key="common.BenchService" method="start"/>
  <method name="stop" key="common.BenchService" method="stop"/>
</wrapper>
"""


def diagram_xml(name: str, action: str) -> str:
    return (f'<diagram name="{name}"><initial id="i"/><action id="a">{action}</action><final id="end"/>'
            f'<transition from="i" to="a"/><transition from="a" to="end"/></diagram>\n')


def write_app(folder: str, *, name: str = "bench", components: Sequence[tuple[str, int, str]] = (("S", 1, ""),),
              nodes: Sequence[str] = ("n1",), protocol: str = "sim", family_extra: str = "",
              diagrams: dict[str, str] | None = None, wdl: str = WDL, bindings: str = "",
              dirlocal: str = "/srv/tune") -> str:
    """Write an application (CDL, nodefile, wrapper, diagrams) into ``folder``; returns app.xml.

    ``components`` are ``(name, initial, legacyFile)``; ``diagrams`` maps event → action text
    (one action node).  Every component uses ``wdl``.
    """
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "nodes"), "w") as fh:
        fh.write("".join(n + "\n" for n in nodes))
    with open(os.path.join(folder, "bench.wdl"), "w") as fh:
        fh.write(wdl)
    diagrams = diagrams or {}
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<application name="{name}">',
             (f'  <family name="grid" nodefile="nodes" protocol="{protocol}" dirlocal="{dirlocal}" '
             f'allocation="round-robin" {family_extra}/>')]
    for comp, initial, legacy in components:
        lines.append(f'  <component name="{comp}" wrapper="bench.wdl" host-family="grid" initial="{initial}" '
                     f'legacyFile="{legacy}"/>')
    if bindings:
        lines.append(bindings)
    for event, action in diagrams.items():
        with open(os.path.join(folder, f"{event}.xml"), "w") as fh:
            fh.write(diagram_xml(event, action))
        lines.append(f'  <diagram event="{event}" file="{event}.xml"/>')
    lines.append("</application>")
    path = os.path.join(folder, "app.xml")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def workdir(tag: str, *, keep: bool = False) -> str:
    """A fresh folder under the temporary directory, removed when the process exits."""
    path = tempfile.mkdtemp(prefix=f"tune-bench-{tag}-")
    if not keep:
        import atexit
        import shutil
        atexit.register(shutil.rmtree, path, True)
    return path


def claim_testbed_slot(prefix: str, third_octet: int) -> tuple[str, str, int]:
    """A namespace test-bed slot no other process on this machine holds: (prefix, subnet, lock fd).

    Slot 0 is ``prefix`` on ``10.79.<third_octet>``; if another run (a second benchmark, CI's
    ``--quick`` smoke test) holds it, slot *i* is ``prefix<i>`` on ``10.79.<third_octet + i>``.
    Holding an ``flock`` for the process's lifetime keeps a second run from tearing this one's
    hosts down (``TestBed.up()`` first removes leftovers of its prefix).
    """
    from tune.testbed.slots import claim_slot
    i, fd = claim_slot(f"tune-bench-{prefix}", 20)
    return (prefix if i == 0 else f"{prefix}{i}"), f"10.79.{third_octet + i}", fd


def quiet_logs() -> None:
    import logging
    logging.getLogger("tune").setLevel(logging.ERROR)
    logging.getLogger("paramiko").setLevel(logging.ERROR)
