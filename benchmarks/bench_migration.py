"""Live migration with the qemu driver on the namespace test bed: how long, how much downtime.

For 128 MiB and 512 MiB guests, idle and with memory being dirtied, the guest is migrated back
and forth between h1 and h2 while pinged every 10 ms; each row is the median of the runs:

- total: QEMU's ``total-time`` (migrate command to completion);
- QEMU downtime: QEMU's ``downtime`` (the guest paused for the final copy);
- ping interruption: longest run of lost replies x 10 ms (what a client sees);
- tune prepare: what the driver adds between the decision (the ``migrate()`` call) and QEMU's
  ``migrate`` command: starting the destination QEMU, ``migrate-incoming``, parameters.

Run as root (namespaces, taps, raw ICMP)::

    python benchmarks/bench_migration.py            # 5 runs per case
    python benchmarks/bench_migration.py --quick    # 1 run per case (CI)
    python benchmarks/bench_migration.py --json --out out/bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tune.measure import measure_migration, wait_answers, write_all  # noqa: E402
from tune.testbed.guest import control  # noqa: E402
from tune.testbed.vmnet import QemuPair  # noqa: E402


def median(values: list[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def run_case(pair: QemuPair, memory: int, dirty: int, runs: int, out: Optional[str],
             before: float, after: float) -> dict[str, Any]:
    name = f"b{memory}{'d' if dirty else 'i'}"
    t = time.monotonic()
    ip = pair.boot(name, memory_mb=memory)
    boot = time.monotonic() - t
    wait_answers(ip)
    if dirty:
        control(ip, f"dirty {dirty}")
        time.sleep(1.0)
    drivers = [pair.d1, pair.d2]
    results = []
    try:
        for i in range(runs):
            src, dst = drivers[i % 2], drivers[(i + 1) % 2]
            m = measure_migration(src, name, dst, ip, interval=0.01, timeout=2.0, before=before, after=after)
            s = m.summary()
            results.append(s)
            if out:
                write_all(m, out, f"{name}-{i + 1}")
            if m.error:
                print(f"  {name} run {i + 1}: FAILED {m.error}", file=sys.stderr)
            if s.get("guest_errors"):
                print(f"  {name} run {i + 1}: guest kernel errors after the migration: "
                      f"{s['guest_errors'][:2]}", file=sys.stderr)
                break  # the guest is damaged: later runs would measure a broken guest
    finally:
        for d in drivers:
            if name in d.names():
                d.destroy(name)
    ok = [s for s in results if s.get("status") == "completed"]
    return {
        "memory_mb": memory, "dirty_mb": dirty, "runs": runs, "completed": len(ok), "boot_s": boot,
        "total_s": median([s.get("total_time_s") for s in ok]),
        "downtime_s": median([s.get("downtime_s") for s in ok]),
        "interruption_s": median([s["interruption_s"] for s in ok]),
        "lost": median([float(s["lost"]) for s in ok]),
        "prepare_s": median([s.get("prepare_time_s") for s in ok]),
        "wall_s": median([s.get("migration_wall_s") for s in ok]),
        "ram_mb": median([s.get("ram_transferred_mb") for s in ok]),
        "guest_errors": sum(1 for s in results if s.get("guest_errors")),
        "all": results,
    }


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one run per case, shorter ping windows")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--dirty", type=int, default=32, help="MiB rewritten continuously in the dirty cases")
    ap.add_argument("--out", help="directory for each run's CSV/PNG/JSON")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_migration: needs root (network namespaces, taps, raw ICMP)", file=sys.stderr)
        return 2
    runs = 1 if args.quick else args.runs
    before, after = (0.3, 0.5) if args.quick else (0.5, 1.0)
    rows = []
    with QemuPair(base_dir="/tmp/tune-bench-bed", prefix="tb9", subnet="10.75.0") as pair:
        for memory in args.memory:
            for dirty in (0, args.dirty):
                row = run_case(pair, memory, dirty, runs, args.out, before, after)
                rows.append(row)
                if not args.json:
                    print(f"  done: {memory} MiB dirty {dirty} MiB ({row['completed']}/{runs} completed)",
                          file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0 if all(r["completed"] == len(r["all"]) for r in rows) else 1

    def ms(v: Optional[float]) -> str:
        return "-" if v is None else f"{v * 1000:.0f}"

    head = ["guest", "memory dirtied", "completed", "total ms", "QEMU downtime ms", "ping interruption ms",
            "lost replies", "tune prepare ms", "RAM sent MiB", "guest damaged"]
    table = [[f"{r['memory_mb']} MiB", f"{r['dirty_mb']} MiB" if r["dirty_mb"] else "idle",
              f"{r['completed']}/{len(r['all'])}", ms(r["total_s"]), ms(r["downtime_s"]),
              ms(r["interruption_s"]),
              "-" if r["lost"] is None else f"{r['lost']:.0f}", ms(r["prepare_s"]),
              "-" if r["ram_mb"] is None else f"{r['ram_mb']:.0f}",
              f"{r['guest_errors']}/{len(r['all'])}"] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in table)) for i, h in enumerate(head)]
    print(f"qemu live migration, TCG, h1 <-> h2 (namespace hosts), medians of {runs} run(s)")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
    return 0 if all(r["completed"] == len(r["all"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
