"""Deployment scale on the simulated grid: plan + deploy time and peak memory, 10 to 10,000 instances.

One command, one table (median of several runs; every run is a fresh Python process so that its
peak memory is its own)::

    python benchmarks/bench_scale.py            # 10 / 100 / 1,000 / 10,000 instances, 3 runs
    python benchmarks/bench_scale.py --quick    # 10 and 100 instances, 1 run
    python benchmarks/bench_scale.py --sizes 1000:100 --runs 1 --profile   # cProfile the largest

Two applications: **S**, one component type with all the instances round-robin over the
nodes; and **VM+Probe**, two types bound one to one as in Xen AttiTUNe (``VM``: half the
instances over the nodes; ``Probe``: no host family, placed beside the VM it is bound to).
Every wrapper ``start`` returns at once.  Times are wall-clock: ``plan`` (allocate and bind, nothing
touched), ``deploy`` (every instance's folder and the node pipes on the simulated nodes — real
files in a temporary folder —, the node relays, and the default ``start`` of every instance).
Peak memory is the process's peak RSS (``ru_maxrss``) less its RSS before loading the
application.  Goals: linear growth; 10,000 instances deployed in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import median, print_table, quiet_logs, verdict, workdir, write_app

GOAL_S = 10.0
FULL = [(10, 10), (100, 10), (1000, 100), (10_000, 1000)]
QUICK = [(10, 10), (100, 10)]

BINDING = '  <binding from="Probe" to="VM" from-multiplicity="1" to-multiplicity="1"/>'


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_scale_app(folder: str, instances: int, nodes: int, bound: bool = True) -> str:
    if not bound:
        per_node = -(-instances // nodes)
        return write_app(folder, name="bench-scale", components=[("S", instances, "")],
                         nodes=[f"n{i}" for i in range(1, nodes + 1) for _ in range(per_node)])
    vms = max(1, instances // 2)
    per_node = -(-vms // nodes)  # slots: enough for every VM
    path = write_app(folder, name="bench-scale", components=[("VM", vms, ""), ("Probe", instances - vms, "")],
                     nodes=[f"n{i}" for i in range(1, nodes + 1) for _ in range(per_node)], bindings=BINDING)
    # Probe has no host family: it goes beside the VM it is bound to
    with open(path) as fh:
        text = fh.read().replace('<component name="Probe" wrapper="bench.wdl" host-family="grid"',
                                 '<component name="Probe" wrapper="bench.wdl"')
    with open(path, "w") as fh:
        fh.write(text)
    return path


def one(instances: int, nodes: int, work: str, profile: str | None, bound: bool = True) -> dict[str, Any]:
    """Run in a fresh process: plan + deploy ``instances`` over ``nodes``; returns the figures."""
    quiet_logs()
    from tune.adl.loader import load_application
    from tune.clock import Clock
    from tune.manager import Manager

    app_path = write_scale_app(os.path.join(work, "app"), instances, nodes, bound)
    rss0 = _rss_kb()
    t0 = time.perf_counter()
    app = load_application(app_path)
    t_load = time.perf_counter() - t0
    m = Manager(app, clock=Clock(), state_dir=os.path.join(work, "state"), sim_root=os.path.join(work, "grid"),
                control_socket=False)
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t1 = time.perf_counter()
    m.plan()
    t_plan = time.perf_counter() - t1
    t2 = time.perf_counter()
    m.deploy()
    t_deploy = time.perf_counter() - t2
    if prof is not None and profile:
        prof.disable()
        prof.dump_stats(profile)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    placed = sum(1 for c in m.sr.instances() if c.node)
    started = sum(1 for c in m.sr.instances() if c.state.value == "started")
    t3 = time.perf_counter()
    m.shutdown()
    t_shutdown = time.perf_counter() - t3
    return {"instances": instances, "nodes": nodes, "load": t_load, "plan": t_plan, "deploy": t_deploy,
            "shutdown": t_shutdown, "peak_mb": (peak_kb - rss0) / 1024, "placed": placed, "started": started}


def run_child(instances: int, nodes: int, profile: str | None, bound: bool) -> dict[str, Any]:
    work = workdir(f"scale{instances}")
    try:
        argv = [sys.executable, os.path.abspath(__file__), "--one", f"{instances}:{nodes}", "--work", work]
        if not bound:
            argv.append("--unbound")
        if profile:
            argv += ["--profile", profile]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{instances} instances: child failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 instances, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="runs per size (default 3; 1 from 10,000 on)")
    parser.add_argument("--sizes", default=None, help="INSTANCES:NODES,... (default 10:10,100:10,1000:100,10000:1000)")
    parser.add_argument("--bound-max", type=int, default=1000,
                        help="largest size run with the bound VM+Probe application (default 1,000: binding is "
                             "quadratic today, 10,000 would take hours)")
    parser.add_argument("--profile", default=None, help="write a cProfile of plan+deploy of the last size here")
    parser.add_argument("--unbound", action="store_true", help="only the one-type application")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        n, k = (int(x) for x in args.one.split(":"))
        print(json.dumps(one(n, k, args.work, args.profile, not args.unbound)))
        return 0
    sizes = ([tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")] if args.sizes
             else (QUICK if args.quick else FULL))
    runs = args.runs or (1 if args.quick else 3)
    rows = []
    notes = []
    variants = [("S (1 type)", False)] + ([] if args.unbound else [("VM+Probe bound 1:1", True)])
    for label, bound in variants:
        per_instance: list[tuple[int, float]] = []
        for idx, (n, k) in enumerate(sizes):
            if bound and n > args.bound_max:
                rows.append([label, n, k, "-", "-", "-", "-", "-", "-", "-",
                             f"not run (> --bound-max {args.bound_max})"])
                continue
            profile = args.profile if (args.profile and idx == len(sizes) - 1) else None
            r_runs = runs if n < 10_000 or args.runs else 1
            results = [run_child(n, k, profile, bound) for _ in range(r_runs)]
            plan = median([r["plan"] for r in results])
            deploy = median([r["deploy"] for r in results])
            total = plan + deploy
            peak = median([r["peak_mb"] for r in results])
            per_instance.append((n, total / n))
            ok = "-" if n < 10_000 else verdict(total < GOAL_S) + ("" if total < GOAL_S else f" ({total / GOAL_S:.1f}x)")
            rows.append([label, n, k, results[0]["placed"], plan, deploy, total, total / n * 1e3, peak,
                         median([r["shutdown"] for r in results]), ok + ("" if r_runs == runs else f" ({r_runs} run)")])
            print(f"  {label}, {n} instances: plan {plan:.2f} s, deploy {deploy:.2f} s, peak {peak:.0f} MB",
                  file=sys.stderr)
        if len(per_instance) >= 2:
            (n0, a), (n1, b) = per_instance[-2], per_instance[-1]
            notes.append(f"{label}: {n0:,} -> {n1:,} instances (x{n1 / n0:g}): plan+deploy time x{b * n1 / (a * n0):.1f} "
                         f"({a * 1e3:.2f} -> {b * 1e3:.2f} ms per instance; linear growth keeps it flat)")
    print_table("Deployment scale on the simulated grid (bench_scale.py)",
                ["application", "instances", "nodes", "placed", "plan s", "deploy s", "plan+deploy s", "ms/instance",
                 "peak MB", "shutdown s", f"goal < {GOAL_S:g} s at 10,000"], rows, runs=runs, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
