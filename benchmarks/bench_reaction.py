"""Reaction latency: from an event's arrival to the first wrapper call of its diagram (p50, p99).

One command, one table (median over several runs of each run's p50 and p99)::

    python benchmarks/bench_reaction.py            # 3 runs; 1,000 / 300 / 200 events per run
    python benchmarks/bench_reaction.py --quick    # 1 run; 50 / 30 / 20 events

Each event is ``ping S1``; the diagram ``ping`` has one action ``$arg.hit``, a wrapper method that
only records ``time.perf_counter()`` when it is entered.  The next event is sent once the
previous diagram has ended (so none is coalesced).  Where the event arrives:

* **in-process**: ``Manager.emit("ping", "S1")`` in the benchmark's thread; the clock starts
  just before the call;
* **control socket**: ``tune.events.control.request(state_dir, {"op": "event", ...})`` — what
  ``tune event ping S1`` sends (connect, JSON line, reply); the clock starts before ``request``;
* **node pipe over SSH** (needs root: a one-host namespace test bed, prefix ``br`` on
  10.79.100.0/24, or the next free slot): the application is deployed on that host over SSH and
  the benchmark runs ``echo 'ping;S1' > $dirLocal/tune.pipe`` on the node through the manager's own pooled SSH
  connection; the relay's ``cat`` on the FIFO carries the line back over that connection.  The
  clock starts before the command is sent.  The row beside it is the round trip of
  ``echo x`` over the same pooled connection: the goal is the pipe's p50 within 5 ms of it.

Goals: in-process p50 < 2 ms and p99 < 20 ms; over SSH, within 5 ms of the SSH round trip.
The ``queue`` column is the manager's own ``event.dispatch`` latency (event object created →
dispatched to a diagram thread), median of the run.
"""

from __future__ import annotations

import argparse
import functools
import os
import posixpath
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    HITS,
    claim_testbed_slot,
    median,
    percentile,
    print_table,
    quiet_logs,
    verdict,
    workdir,
    write_app,
)

IN_P50_MS, IN_P99_MS, SSH_MARGIN_MS = 2.0, 20.0, 5.0


class Probe:
    """Follows a manager's timeline: diagram ends and dispatch latencies."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.ended = threading.Semaphore(0)
        self.dispatch_ms: list[float] = []
        self.unsubscribe = manager.subscribe(self._on)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the instance's key is released (after ``diagram.end``, or the next event
        would be coalesced): the manager's ``_active_keys`` (internal) is empty again."""
        keys: set[str] = getattr(self.manager, "_active_keys", set())
        deadline = time.monotonic() + timeout
        while keys and time.monotonic() < deadline:
            time.sleep(0.0001)

    def _on(self, ev: Any) -> None:
        if ev.kind == "diagram.end":
            self.ended.release()
        elif ev.kind == "event.dispatch":
            self.dispatch_ms.append(float(ev.data.get("latency_ms", 0.0)))


def sample(send: Callable[[], object], probe: Probe, n: int, warmup: int = 5) -> list[float]:
    """Latencies (ms) of ``n`` events sent one after another by ``send``."""
    out = []
    for i in range(n + warmup):
        before = HITS.count
        t0 = time.perf_counter()
        send()
        if not HITS.wait_count(before + 1, timeout=30):
            raise RuntimeError("the diagram's wrapper was not called within 30 s")
        if not probe.ended.acquire(timeout=30):
            raise RuntimeError("the diagram did not end within 30 s")
        probe.settle()
        if i >= warmup:
            out.append((HITS.times[-1][2] - t0) * 1000)
    probe.dispatch_ms[:] = probe.dispatch_ms[-n:]
    return out


def local_rows(n_emit: int, n_sock: int, runs: int, work: str) -> list[list[Any]]:
    from tune.adl.loader import load_application
    from tune.clock import Clock
    from tune.events.control import request
    from tune.manager import Manager

    app = write_app(os.path.join(work, "app-local"), name="bench-reaction", components=[("S", 1, "")],
                    diagrams={"ping": "$arg.hit"})
    stats: dict[str, list[tuple[float, float, float]]] = {"emit": [], "socket": []}
    for r in range(runs):
        state = os.path.join(work, f"state-local-{r}")
        m = Manager(load_application(app), clock=Clock(), state_dir=state)
        try:
            m.deploy()
            probe = Probe(m)
            lat = sample(functools.partial(m.emit, "ping", "S1"), probe, n_emit)
            stats["emit"].append((percentile(lat, 50), percentile(lat, 99), median(probe.dispatch_ms)))
            probe.dispatch_ms.clear()
            payload = {"op": "event", "name": "ping", "args": ["S1"]}
            lat = sample(functools.partial(request, state, payload), probe, n_sock)
            stats["socket"].append((percentile(lat, 50), percentile(lat, 99), median(probe.dispatch_ms)))
        finally:
            m.shutdown()
    rows = []
    for label, key, n in (("in-process emit()", "emit", n_emit), ("control socket", "socket", n_sock)):
        p50 = median([s[0] for s in stats[key]])
        p99 = median([s[1] for s in stats[key]])
        queue = median([s[2] for s in stats[key]])
        goal = f"p50 < {IN_P50_MS:g} ms, p99 < {IN_P99_MS:g} ms"
        ok = p50 < IN_P50_MS and p99 < IN_P99_MS
        rows.append([label, n, p50, p99, queue, goal if key == "emit" else "(same, informative)",
                     verdict(ok)])
    return rows


def ssh_rows(n: int, runs: int, work: str) -> list[list[Any]]:
    from tune.testbed import TestBed, testbed_missing_reason

    reason = testbed_missing_reason()
    if reason:
        return [["node pipe over SSH", 0, "-", "-", "-", f"skipped: {reason}", "-"],
                ["SSH round trip (echo)", 0, "-", "-", "-", "skipped", "-"]]
    from tune.adl.loader import load_application
    from tune.clock import Clock
    from tune.manager import Manager
    from tune.remote.base import Shell, quote_command

    prefix, subnet, _lock = claim_testbed_slot("br", 100)
    bed = TestBed(1, base_dir=os.path.join(work, "bed"), prefix=prefix, subnet=subnet, xen=False)
    pipe_stats: list[tuple[float, float, float]] = []
    rtt_stats: list[tuple[float, float]] = []
    with bed:
        host = bed.hosts[0]
        app = write_app(os.path.join(work, "app-ssh"), name="bench-reaction", components=[("S", 1, "")],
                        nodes=[f"root@{host.address}"], protocol="ssh",
                        family_extra=f'user="root" key="{bed.key_path}"', dirlocal="/tmp/tune-bench",
                        diagrams={"ping": "$arg.hit"})
        for r in range(runs):
            state = os.path.join(work, f"state-ssh-{r}")
            m = Manager(load_application(app), clock=Clock(), state_dir=state)
            try:
                m.deploy()
                probe = Probe(m)
                comp = m.sr.instance("S1")
                ex = m.executor(comp.node or "")  # the manager's pooled connection
                pipe = posixpath.join(posixpath.dirname(comp.dir_local), "tune.pipe")
                write = Shell(f"echo 'ping;S1' > {quote_command([pipe])}")
                lat = sample(functools.partial(ex.run, write, timeout=30), probe, n)
                pipe_stats.append((percentile(lat, 50), percentile(lat, 99), median(probe.dispatch_ms)))
                rtt = []
                for i in range(n + 5):
                    t0 = time.perf_counter()
                    ex.run(["echo", "x"], timeout=30)
                    if i >= 5:
                        rtt.append((time.perf_counter() - t0) * 1000)
                rtt_stats.append((percentile(rtt, 50), percentile(rtt, 99)))
            finally:
                m.shutdown()
    p50 = median([s[0] for s in pipe_stats])
    p99 = median([s[1] for s in pipe_stats])
    queue = median([s[2] for s in pipe_stats])
    r50 = median([s[0] for s in rtt_stats])
    r99 = median([s[1] for s in rtt_stats])
    return [["node pipe over SSH", n, p50, p99, queue, (f"p50 <= RTT p50 + {SSH_MARGIN_MS:g} ms "
             f"(= {r50 + SSH_MARGIN_MS:.2f} ms)"), verdict(p50 <= r50 + SSH_MARGIN_MS)],
            ["SSH round trip (echo)", n, r50, r99, "-", "reference", "-"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, few events (a few seconds)")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3)")
    parser.add_argument("--no-ssh", action="store_true", help="skip the SSH rows")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    n_emit, n_sock, n_ssh = (50, 30, 20) if args.quick else (1000, 300, 200)
    quiet_logs()
    work = workdir("reaction")
    rows = local_rows(n_emit, n_sock, runs, work)
    if args.no_ssh:
        rows.append(["node pipe over SSH", 0, "-", "-", "-", "skipped: --no-ssh", "-"])
    else:
        rows += ssh_rows(n_ssh, runs, work)
    print_table("Reaction latency (bench_reaction.py)",
                ["arrival", "events/run", "p50 ms", "p99 ms", "queue ms (p50)", "goal", "met?"], rows, runs=runs,
                notes=[("latency: from the moment the event is sent (emit() called, request() called, the "
                       "pipe-writing command sent) to the entry of the diagram's first wrapper call.")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
