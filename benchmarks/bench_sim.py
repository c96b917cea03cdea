"""Simulator speed and memory: one PlanetLab day, 800 hosts, 1052 VMs.

    python benchmarks/bench_sim.py            # the shipped day, 5 runs per policy
    python benchmarks/bench_sim.py --quick    # a tiny synthetic day (CI)

Prints the median wall and CPU time of several runs and the peak memory: the Python heap peak
(tracemalloc, in a separate run since tracing slows it down) and the process's maximum RSS.
Goal for THR-MMT-0.8 on the full day: <= 4 s and < 400 MB (CloudSim 3.0.3: 16.6 s, 1.5 GB).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tune.sim import DataCentre, Simulator, default_day, load_day, synthetic_day  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny synthetic day, 2 runs (seconds)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--day", default=None, help="a PlanetLab day (default: the shipped one)")
    ap.add_argument("--policies", default="thr-mmt-0.8,lr-mmt-1.2,steady")
    args = ap.parse_args(argv)
    if args.quick:
        workload, dc, runs = synthetic_day(120, steps=48, seed=1), DataCentre(n_hosts=100), 2
    else:
        t = time.perf_counter()
        workload = load_day(args.day or default_day())
        print(f"loaded {workload.n_vms} VMs x {workload.n_steps} steps in {time.perf_counter() - t:.2f} s")
        dc, runs = DataCentre(), args.runs
    rows = []
    for name in args.policies.split(","):
        times, cpus = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            m = Simulator(workload, name, dc).run()
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        tracemalloc.start()
        Simulator(workload, name, dc).run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((name, statistics.median(times), min(times), statistics.median(cpus), peak / 2**20,
                     m.energy_kwh, m.migrations))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"{'policy':14s} {'median s':>9s} {'best s':>8s} {'CPU s':>6s} {'heap peak MB':>13s} "
          f"{'energy kWh':>11s} {'migrations':>11s}")
    for name, med, best, cpu, peak, e, mig in rows:
        print(f"{name:14s} {med:9.2f} {best:8.2f} {cpu:6.2f} {peak:13.1f} {e:11.2f} {mig:11d}")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: wall times are inflated, "
              "CPU time is the better figure")
    print(f"process max RSS: {rss:.0f} MB ({workload.n_vms} VMs, {dc.n_hosts} hosts, {workload.n_steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
