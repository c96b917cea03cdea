"""Sustained load: 10 probes, 1,000 events per second in total, 60 s, 100 instances.

One command, one table::

    python benchmarks/bench_load.py             # 60 s at 1,000 events/s
    python benchmarks/bench_load.py --quick     # 5 s (CI)

The application (simulated grid, written to a temporary folder) has 100 instances of one
component ``S`` on 10 nodes, and a diagram ``load`` whose one action is ``$arg.hit`` (a wrapper
method that records when it was entered).  Ten probe threads, one per node, write
``load;S<k>;<seq>`` lines into their node's pipe (``tune.pipe``, read by the manager's relays as
on real nodes) at 100 lines/s each; a few lines are deliberately wrong: 1 % name no instance
(rejected by rule), 1 % name no diagram (unknown), 0.5 % are malformed (dropped by the relay).

Reported:

* **accounting**: every line written is read by a relay; every good line reaches the bus
  (``received``) and every bad one is counted (``dropped_bad``); every received event ends as
  handled, coalesced (its instance was being reconfigured), unknown, rejected or dropped by
  overflow.  The identity ``received == handled + coalesced + unknown + rejected + overflow +
  errors`` is checked (exit status 1 when it fails);
* **reaction latency**: from the probe's write to the diagram's first wrapper call, p50 / p99 /
  max, for the first and the last 10 s (it must not grow);
* **memory**: the process RSS sampled every second: after warm-up, at the end, the maximum and the
  slope of a least-squares line (MB/min).
"""

from __future__ import annotations

import argparse
import array
import datetime
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from typing import Any, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

N_PROBES = 10
N_INSTANCES = 100

SERVICE = '''"""Written by bench_load.py: the wrapper class of the load benchmark."""
import array
import time

# seq -> perf_counter() of the first wrapper call of its diagram; preallocated raw doubles, so
# recording creates no object and the benchmark does not grow the memory it measures
FIRST = array.array("d")


class LoadService:
    def __init__(self, ctx=None):
        pass

    def hit(self, seq):
        try:
            i = int(seq)
        except ValueError:
            return
        if 0 <= i < len(FIRST) and FIRST[i] == 0.0:
            FIRST[i] = time.perf_counter()

    def start(self, *a):
        pass

    def stop(self, *a):
        pass
'''
WDL = '''<wrapper name="Load">
  <method name="hit" key="loadsvc.LoadService" method="hit"><param value="$arg2"/></method>
  <method name="start" key="loadsvc.LoadService" method="start"/>
  <method name="stop" key="loadsvc.LoadService" method="stop"/>
</wrapper>
'''
DIAGRAM = ('<diagram name="load"><initial id="i"/><action id="a">$arg.hit</action><final id="end"/>'
           '<transition from="i" to="a"/><transition from="a" to="end"/></diagram>\n')


def write_app(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "nodes"), "w") as fh:
        fh.write("".join(f"n{i}\n" for i in range(1, N_PROBES + 1)) * (N_INSTANCES // N_PROBES))
    for name, text in (("loadsvc.py", SERVICE), ("load.wdl", WDL), ("load.xml", DIAGRAM)):
        with open(os.path.join(folder, name), "w") as fh:
            fh.write(text)
    path = os.path.join(folder, "app.xml")
    with open(path, "w") as fh:
        fh.write('<application name="bench-load">\n'
                 '  <family name="grid" nodefile="nodes" protocol="sim" dirlocal="/srv/tune" allocation="round-robin"/>\n'
                 f'  <component name="S" wrapper="load.wdl" host-family="grid" initial="{N_INSTANCES}"/>\n'
                 '  <diagram event="load" file="load.xml"/>\n'
                 '</application>\n')
    return path


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def slope_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    den = sum((t - mx) ** 2 for t, _ in samples)
    return 60.0 * sum((t - mx) * (v - my) for t, v in samples) / den if den else 0.0


class Probe(threading.Thread):
    """Writes ``rate`` lines per second into one node's pipe, in 10 ms ticks."""

    def __init__(self, index: int, pipe: str, seqs: list[int], sent: "array.array[float]", rate: float,
                 duration: float, t0: float, rng: random.Random) -> None:
        super().__init__(name=f"probe-{index}", daemon=True)
        self.pipe, self.seqs, self.sent, self.rate = pipe, seqs, sent, rate
        self.duration, self.t0, self.rng = duration, t0, rng
        self.written = 0
        self.bad = 0

    def run(self) -> None:
        fd = os.open(self.pipe, os.O_WRONLY)
        try:
            k = 0
            tick = 0.01
            while k < len(self.seqs):
                now = time.perf_counter()
                due = min(len(self.seqs), int((now - self.t0) * self.rate) + 1)
                lines = []
                while k < due:
                    seq = self.seqs[k]
                    r = self.rng.random()
                    if r < 0.005:
                        lines.append(b"\x01malformed line\n")
                        self.bad += 1
                    elif r < 0.015:
                        lines.append(b"unknownevent;S1;%d\n" % seq)
                    elif r < 0.025:
                        lines.append(b"load;S9999;%d\n" % seq)
                    else:
                        lines.append(b"load;S%d;%d\n" % (self.rng.randrange(1, N_INSTANCES + 1), seq))
                    self.sent[seq] = time.perf_counter()
                    k += 1
                if lines:
                    data = b"".join(lines)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view[:4096]):]
                    self.written += len(lines)
                time.sleep(tick)
        finally:
            os.close(fd)


def run(duration: float, rate: float, sample_every: float = 1.0, journal: bool = True) -> dict[str, Any]:
    from tune.adl.loader import load_application
    from tune.clock import Clock
    from tune.manager import Manager

    work = tempfile.mkdtemp(prefix="tune-bench-load-")
    app_dir = os.path.join(work, "app")
    app_path = write_app(app_dir)
    sys.path.insert(0, app_dir)
    import loadsvc  # noqa: E402 - the same module the wrapper key resolves to

    total = int(duration * rate)
    loadsvc.FIRST.frombytes(bytes(8 * total))
    sent = array.array("d", bytes(8 * total))           # raw doubles: no object per event
    options: dict[str, Any] = {} if journal else {"journal": False}
    m = Manager(load_application(app_path), clock=Clock(), state_dir=os.path.join(work, "state"), **options)
    try:
        m.deploy()
        assert len(m.sr.instances()) == N_INSTANCES
        pipes = {}
        for relay in m._relays:
            pipes[relay.executor.host] = relay.pipe_path
        seqs = list(range(total))
        per = [seqs[i::N_PROBES] for i in range(N_PROBES)]
        rss: list[tuple[float, float]] = []
        stop = threading.Event()

        def sampler() -> None:
            while not stop.is_set():
                rss.append((time.perf_counter() - t0, rss_mb()))
                stop.wait(sample_every)

        t0 = time.perf_counter()
        probes = [Probe(i, pipes[f"n{i + 1}"], per[i], sent, rate / N_PROBES, duration, t0, random.Random(i))
                  for i in range(N_PROBES)]
        sampling = threading.Thread(target=sampler, daemon=True)
        sampling.start()
        for p in probes:
            p.start()
        for p in probes:
            p.join()
        sending = time.perf_counter() - t0
        written = sum(p.written for p in probes)
        bad_written = sum(p.bad for p in probes)

        def relays_read() -> int:
            return sum(r.lines for r in m._relays)

        def accounted(c: Any) -> int:
            return (c["handled"] + c["coalesced"] + c["unknown"] + c["rejected"] + c["dropped_overflow"]
                    + c["handler_errors"])

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (relays_read() < written or accounted(m.bus.counters)
                                               < m.bus.counters["received"] or m._running):
            time.sleep(0.01)
        settle = time.perf_counter() - t0 - sending
        stop.set()
        sampling.join()
        c = dict(m.bus.counters)
        c.setdefault("dropped_bad", 0)
        for k in ("handled", "coalesced", "unknown", "rejected", "dropped_overflow", "handler_errors", "received"):
            c.setdefault(k, 0)
        first = loadsvc.FIRST
        lat_all = [(sent[i], (first[i] - sent[i]) * 1000) for i in range(total) if first[i] and sent[i]]
        early = [ms for t, ms in lat_all if t - t0 < min(10.0, duration / 3)]
        late = [ms for t, ms in lat_all if t - t0 >= sending - min(10.0, duration / 3)]
        allms = [ms for _, ms in lat_all]
        warm = [(t, v) for t, v in rss if t >= min(10.0, duration / 4)]
        return {
            "duration": duration, "rate": rate, "journal": journal, "sending": sending, "settle": settle,
            "written": written, "bad_written": bad_written, "relays_read": relays_read(),
            "bad_lines": sum(r.bad_lines for r in m._relays), "counters": c,
            "identity": c["received"] == accounted(c),
            "pipe_identity": relays_read() == written == c["received"] + sum(r.bad_lines for r in m._relays),
            "lat": {"p50": percentile(allms, 50), "p99": percentile(allms, 99), "max": max(allms or [0.0]),
                    "early_p99": percentile(early, 99), "late_p99": percentile(late, 99), "n": len(allms)},
            "rss": {"warm": warm[0][1] if warm else float("nan"), "end": rss[-1][1] if rss else float("nan"),
                    "max": max(v for _, v in rss) if rss else float("nan"),
                    "slope": slope_per_min(warm), "samples": len(rss),
                    "late_slope": slope_per_min([(t, v) for t, v in rss if t >= sending / 2])},
        }
    finally:
        m.shutdown()
        sys.path.remove(app_dir)
        sys.modules.pop("loadsvc", None)
        shutil.rmtree(work, ignore_errors=True)


def machine() -> str:
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


def table(r: dict[str, Any]) -> str:
    c, lat, rss = r["counters"], r["lat"], r["rss"]
    rows = [
        ("probes x rate", f"{N_PROBES} x {r['rate'] / N_PROBES:g}/s = {r['rate']:g} events/s for {r['duration']:g} s"),
        ("instances", f"{N_INSTANCES} (simulated grid, 10 nodes); journal {'on' if r['journal'] else 'off'}"),
        ("lines written / read by relays", f"{r['written']:,} / {r['relays_read']:,} "
                                           f"(sent at {r['written'] / r['sending']:,.0f}/s)"),
        ("malformed lines (dropped_bad)", f"{r['bad_written']:,} written, {c['dropped_bad']:,} counted"),
        ("events received by the bus", f"{c['received']:,}"),
        ("handled (diagram run)", f"{c['handled']:,}"),
        ("coalesced", f"{c['coalesced']:,}"),
        ("dropped by rule (unknown + rejected)", f"{c['unknown']:,} + {c['rejected']:,}"),
        ("dropped by overflow / handler errors", f"{c['dropped_overflow']:,} / {c['handler_errors']:,}"),
        ("identity received = handled + coalesced + rule + overflow + errors",
         "holds" if r["identity"] else "BROKEN"),
        ("identity written = read = received + dropped_bad", "holds" if r["pipe_identity"] else "BROKEN"),
        ("latency write -> first wrapper call p50 / p99 / max",
         f"{lat['p50']:.2f} / {lat['p99']:.2f} / {lat['max']:.1f} ms ({lat['n']:,} diagrams)"),
        ("latency p99, first vs last 10 s", f"{lat['early_p99']:.2f} vs {lat['late_p99']:.2f} ms"),
        ("RSS after warm-up / end / max", f"{rss['warm']:.1f} / {rss['end']:.1f} / {rss['max']:.1f} MB"),
        ("RSS slope after warm-up / over the second half",
         f"{rss['slope']:+.2f} / {rss['late_slope']:+.2f} MB/min ({rss['samples']} samples)"),
        ("time to settle after the last write", f"{r['settle']:.2f} s"),
    ]
    w = max(len(a) for a, _ in rows)
    out = ["## Load (bench_load.py)", f"machine: {machine()}",
           f"date: {datetime.datetime.now():%Y-%m-%d %H:%M}", "",
           f"| {'measure'.ljust(w)} | value |", f"|{'-' * (w + 2)}|-------|"]
    out += [f"| {a.ljust(w)} | {b} |" for a, b in rows]
    return "\n".join(out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s instead of 60 (CI)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (default 60)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second in total (default 1000)")
    parser.add_argument("--no-journal", action="store_true", help="run the manager without its journal")
    args = parser.parse_args(argv)
    duration = args.duration or (5.0 if args.quick else 60.0)
    logging.getLogger("tune").setLevel(logging.ERROR)
    r = run(duration, args.rate, sample_every=0.5 if args.quick else 1.0, journal=not args.no_journal)
    print(table(r))
    sys.stdout.flush()
    return 0 if r["identity"] and r["pipe_identity"] else 1


if __name__ == "__main__":
    sys.exit(main())
