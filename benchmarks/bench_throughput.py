"""Event throughput: how many events per second the manager dispatches to diagrams that do nothing.

One command, one table (median of several runs)::

    python benchmarks/bench_throughput.py            # every row, 3 runs each (a few minutes)
    python benchmarks/bench_throughput.py --quick    # two small rows, 1 run

The application (simulated grid, built in a temporary folder) has one component ``S`` with many
instances and a diagram ``tick`` whose one action is ``$arg.noop`` (a wrapper method that returns
at once).  Two cases:

* **distinct instances**: event *i* names instance ``S(i mod K)``, so coalescing (events for an
  instance whose diagram still runs) does not drop them: every event runs a diagram;
* **same instance**: every event names ``S1``: all that arrive while its diagram runs are
  coalesced (counted, not run) — the rate at which the manager absorbs a flood.

The producer emits from the main thread as fast as it can but never lets the bus (bounded at
10,000) overflow; the time is from the first ``emit`` until the last event is accounted for
(handled or coalesced).  Goal: at least 10,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import median, print_table, quiet_logs, verdict, workdir, write_app

GOAL = 10_000.0


def one_run(app_path: str, state_dir: str, n_events: int, instances: int, same: bool,
            journal: bool = True) -> dict[str, float]:
    from tune.adl.loader import load_application
    from tune.clock import Clock
    from tune.manager import Manager

    m = Manager(load_application(app_path), clock=Clock(), state_dir=state_dir, control_socket=False,
                journal=journal)
    try:
        m.deploy()
        bus = m.bus
        c = bus.counters
        base = dict(c)
        emit = m.emit
        q = bus.queue
        limit = bus.queue.maxsize - 1000
        kinds = ("handled", "coalesced", "rejected", "unknown", "dropped_overflow", "handler_errors")

        def accounted() -> int:
            return sum(c.get(k, 0) - base.get(k, 0) for k in kinds)

        def wait_for(n: int) -> None:
            deadline = time.monotonic() + 300
            while accounted() < n and time.monotonic() < deadline:
                time.sleep(0.0002)

        t0 = time.perf_counter()
        emitting = 0.0
        if same:
            for _ in range(n_events):
                if q.qsize() > limit:
                    while q.qsize() > limit // 2:
                        time.sleep(0.0005)
                emit("tick", "S1")
            emitting = time.perf_counter() - t0
            wait_for(n_events)
        else:
            # rounds of one event per instance; the next round starts when this one is accounted for
            # (so no event meets its instance's previous diagram still running: nothing is coalesced)
            names = [f"S{i + 1}" for i in range(instances)]
            sent = 0
            while sent < n_events:
                t1 = time.perf_counter()
                for name in names[:n_events - sent]:
                    emit("tick", name)
                emitting += time.perf_counter() - t1
                sent += min(instances, n_events - sent)
                wait_for(sent)
        elapsed = time.perf_counter() - t0
        return {"elapsed": elapsed, "emit": emitting,
                "handled": c.get("handled", 0) - base.get("handled", 0),
                "coalesced": c.get("coalesced", 0) - base.get("coalesced", 0),
                "dropped": c.get("dropped_overflow", 0) - base.get("dropped_overflow", 0),
                "missing": n_events - accounted()}
    finally:
        m.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 run (a few seconds)")
    parser.add_argument("--runs", type=int, default=None, help="runs per row (default 3)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    quiet_logs()
    work = workdir("throughput")
    # (label, instances, events, same instance?, journal)
    if args.quick:
        cases = [("distinct instances", 50, 200, False, True),
                 ("same instance (coalesced)", 50, 2000, True, True)]
    else:
        cases = [("distinct instances", 100, 5000, False, True),
                 ("distinct instances", 1000, 5000, False, True),
                 ("same instance (coalesced)", 100, 20_000, True, True),
                 ("distinct, journal=False", 100, 5000, False, False),
                 ("distinct, journal=False", 1000, 5000, False, False)]
    apps: dict[int, str] = {}
    rows: list[list[Any]] = []
    for label, k, n, same, journal in cases:
        if k not in apps:
            apps[k] = write_app(os.path.join(work, f"app{k}"), name="bench-throughput", components=[("S", k, "")],
                                nodes=[f"n{i}" for i in range(1, 11)] * ((k + 9) // 10),
                                diagrams={"tick": "$arg.noop"})
        results = [one_run(apps[k], os.path.join(work, f"state-{len(rows)}-{r}"), n, k, same, journal)
                   for r in range(runs)]
        rate = median([n / r["elapsed"] for r in results])
        diagrams = median([r["handled"] / r["elapsed"] for r in results])
        emit_rate = median([n / r["emit"] for r in results if r["emit"] > 0])
        coalesced = median([r["coalesced"] for r in results])
        lost = max(r["dropped"] + r["missing"] for r in results)
        rows.append([label, k, n, rate, diagrams, int(coalesced), int(lost), emit_rate,
                     verdict(rate >= GOAL)])
    print_table("Event throughput (bench_throughput.py)",
                ["case", "instances in SR", "events", "events/s", "diagrams run/s", "coalesced", "lost",
                 "emit() calls/s", f"goal >= {GOAL:,.0f}/s"], rows, runs=runs,
                notes=[("events/s: events accounted for (diagram run or coalesced) per second, from the first "
                       "emit() to the last one accounted for; lost = dropped by the bounded queue or never "
                       "accounted for.  Distinct: rounds of one event per instance (none coalesced).")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
