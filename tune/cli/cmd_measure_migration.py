"""``tune measure-migration``: ping a VM every 10 ms while it live-migrates (the seed's Figure
3.3.4), and write a CSV, a PNG and a summary."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import UsageError
from .common import positive
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "measure-migration", parents=[common],
        help="ping a VM every 10 ms during a live migration; CSV, PNG plot and summary",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="examples:\n"
               "  tune measure-migration --driver qemu --testbed --memory 128 --out out/mig128\n"
               "  tune measure-migration --testbed --memory 512 --dirty 32 --runs 3 --out out/mig512\n"
               "  tune measure-migration --testbed --json --out out/m\n\n"
               "--testbed builds two namespace hosts (h1, h2: root needed), boots the test guest\n"
               "(Debian cloud kernel + busybox, built once from Debian packages) on h1 and\n"
               "migrates it to h2 (and back, with --runs), pinging it from the root namespace.\n"
               "After each migration the guest's console is checked for kernel errors (column\n"
               "'guest'): under TCG a guest dirtying memory (--dirty) can be damaged on its\n"
               "second or later hop (docs/migration.md, 'Known problem').")
    p.add_argument("--driver", default="qemu", choices=["qemu"],
                   help="hypervisor driver (the test bed runs QEMU; from Python, "
                        "tune.measure.measure_migration takes any driver)")
    p.add_argument("--testbed", action="store_true", help="build a two-host namespace test bed (root)")
    p.add_argument("--memory", type=int, default=128, metavar="MiB",
                   help="guest memory (default 128, min 96)")
    p.add_argument("--dirty", type=int, default=0, metavar="MiB",
                   help="MiB of guest memory rewritten continuously during the migration")
    p.add_argument("--runs", type=int, default=1, help="migrations (alternating h1->h2, h2->h1)")
    p.add_argument("--interval", type=positive, default=0.01, metavar="S", help="ping interval (0.01)")
    p.add_argument("--timeout", type=positive, default=2.0, metavar="S", help="reply timeout (2)")
    p.add_argument("--before", type=positive, default=1.0, metavar="S", help="pings before migrating (1)")
    p.add_argument("--after", type=positive, default=2.0, metavar="S", help="pings after the migration (2)")
    p.add_argument("--max-bandwidth", type=positive, metavar="MiB/s", help="migration max-bandwidth")
    p.add_argument("--downtime-limit", type=int, metavar="MS", help="migration downtime-limit")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for CSV, PNG, JSON")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from ..measure import measure_migration, write_all
    from ..testbed.guest import MIN_MEMORY_MB

    if not args.testbed:
        raise UsageError("only --testbed is supported from the command line for now; from Python, "
                         "tune.measure.measure_migration(driver, name, destination, address) "
                         "measures any driver")
    if args.memory < MIN_MEMORY_MB:
        raise UsageError(f"--memory: the test guest needs at least {MIN_MEMORY_MB} MiB")
    if args.runs < 1:
        raise UsageError("--runs must be >= 1")
    if os.geteuid() != 0:
        raise UsageError("--testbed needs root (network namespaces, taps, raw ICMP)")
    from ..testbed.vmnet import QemuPair

    options: dict[str, Any] = {}
    if args.max_bandwidth is not None:
        options["max_bandwidth_mib"] = args.max_bandwidth
    if args.downtime_limit is not None:
        options["downtime_limit_ms"] = args.downtime_limit
    results = []
    with QemuPair() as pair:
        out.line(f"booting a {args.memory} MiB guest on h1 ...")
        ip = pair.boot("vm1", memory_mb=args.memory, dirty_mb=args.dirty)
        drivers = [pair.d1, pair.d2]
        for i in range(args.runs):
            src, dst = drivers[i % 2], drivers[(i + 1) % 2]
            m = measure_migration(src, "vm1", dst, ip, interval=args.interval, timeout=args.timeout,
                                  before=args.before, after=args.after, **options)
            m.meta.update({"memory_mb": args.memory, "dirty_mb": args.dirty, "run": i + 1,
                           "source": src.host, "destination": dst.host})
            stem = "migration" if args.runs == 1 else f"migration-{i + 1}"
            paths = write_all(m, args.out, stem)
            s = m.summary()
            results.append({"summary": s, "files": paths})
            if m.error:
                out.error(f"run {i + 1}: {m.error}")
            for line in s.get("guest_errors") or []:
                out.error(f"run {i + 1}: guest console after the migration: {line}")
    rows = []
    for r in results:
        s = r["summary"]

        def ms(v: Any) -> str:
            return "-" if v is None else f"{v * 1000:.0f}"
        rows.append((s["run"], f"{s['source']}->{s['destination']}", s.get("status", "failed"),
                     ms(s.get("total_time_s")), ms(s.get("downtime_s")), ms(s["interruption_s"]),
                     f"{s['lost']}/{s['sent']}", ms(s.get("prepare_time_s")),
                     "ERRORS" if s.get("guest_errors") else "ok", r["files"]["png"]))
    out.table(["run", "move", "status", "total ms", "QEMU downtime ms", "interruption ms", "lost/sent",
               "tune prepare ms", "guest", "plot"], rows,
              title=f"live migration of a {args.memory} MiB guest (dirty {args.dirty} MiB), "
                    f"ping every {args.interval * 1000:g} ms")
    summary_path = os.path.join(args.out, "summary.json")
    with open(summary_path, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True, default=str)
    out.data({"runs": results, "summary_file": summary_path})
    return 0 if all(r["summary"].get("status") == "completed" and not r["summary"].get("guest_errors")
                    for r in results) else 1
