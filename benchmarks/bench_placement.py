"""Consolidation planning at scale: one plan for 1,000 hosts / 10,000 VMs and 5,000 / 30,000.

    python benchmarks/bench_placement.py           # both sizes
    python benchmarks/bench_placement.py --quick   # 100 hosts / 1,000 VMs (CI)

Loads are random but seeded.  Printed beside the time: hosts left running after the plan and
the lower bounds ceil(sum demand / mean capacity) and ceil(sum demand / (0.8 x mean capacity))
(the policies keep hosts under 80 %).  Goals: < 1 s and < 10 s.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tune.policies import ClusterState, policy_from_name  # noqa: E402
from tune.power.models import HP_ML110_G4, HP_ML110_G5, power_tables  # noqa: E402


def cluster(n_hosts: int, n_vms: int, seed: int = 0) -> ClusterState:
    rng = np.random.default_rng(seed)
    cap = np.where(np.arange(n_hosts) % 2, 5320.0, 3720.0)
    pe = cap / 2
    mips = rng.choice([2500.0, 2000.0, 1000.0, 500.0], size=n_vms)
    ram = np.select([mips == 2500, mips == 500], [870.0, 613.0], 1740.0)
    hist = np.clip(rng.gamma(1.5, 0.1, size=(n_vms, 1)) + rng.normal(0, 0.03, size=(n_vms, 12)), 0, 1)
    req = np.minimum(hist[:, 0] * mips, 1860.0)
    lists: list[list[int]] = [[] for _ in range(n_hosts)]
    for v in range(n_vms):  # round-robin start: every host busy, none consolidated
        lists[v % n_hosts].append(v)
    tables = power_tables([HP_ML110_G4 if i % 2 == 0 else HP_ML110_G5 for i in range(n_hosts)])
    return ClusterState(cap=cap, pe=pe, ram=np.full(n_hosts, 65536.0), tables=tables, vm_req=req,
                        vm_mips=mips, vm_ram=ram, lists=lists, vm_hist=hist)


def bench(n_hosts: int, n_vms: int, policy: str) -> tuple[float, int, int, int, int]:
    state = cluster(n_hosts, n_vms)
    before = int((state.nvms > 0).sum())
    demand = state.vm_req.sum()
    t = time.perf_counter()
    raw = policy_from_name(policy).plan_state(state)
    elapsed = time.perf_counter() - t
    final = {}
    for h, vs in enumerate(cluster(n_hosts, n_vms).lists):
        for v in vs:
            final[v] = h
    for v, _, d in raw:
        final[v] = d
    after = len(set(final.values()))
    mean_cap = state.cap.mean()
    return elapsed, len(raw), before, after, math.ceil(demand / mean_cap), math.ceil(demand / (0.8 * mean_cap))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--policies", default="thr-mmt-0.8,steady")
    args = ap.parse_args(argv)
    sizes = [(100, 1000)] if args.quick else [(1000, 10000), (5000, 30000)]
    goals = {(1000, 10000): 1.0, (5000, 30000): 10.0, (100, 1000): 1.0}
    print(f"{'hosts':>6s} {'VMs':>6s} {'policy':12s} {'seconds':>8s} {'goal':>5s} {'migrations':>10s} "
          f"{'hosts before':>12s} {'after':>6s} {'bound':>6s} {'bound@0.8':>9s}")
    for n_hosts, n_vms in sizes:
        for policy in args.policies.split(","):
            el, mig, before, after, lb, lb8 = bench(n_hosts, n_vms, policy)
            print(f"{n_hosts:6d} {n_vms:6d} {policy:12s} {el:8.2f} {goals[(n_hosts, n_vms)]:5.0f} {mig:10d} "
                  f"{before:12d} {after:6d} {lb:6d} {lb8:9d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
