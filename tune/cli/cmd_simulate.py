"""``tune simulate``: run consolidation policies on PlanetLab days and compare with CloudSim."""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

from .output import Output

EPILOG = """examples:
  tune simulate                                   # THR-MMT-0.8 on the shipped day (2011-03-03)
  tune simulate --policy lr-mmt-1.2 --json        # metrics as JSON
  tune simulate --policy steady --plot day.png    # our policy; plot hosts, power, overloads
  tune simulate --day planetlab/20110306.tar.gz --policy iqr-mmt-1.5
  tune simulate --compare --day d1.tar.gz --day d2/   # 4 reference policies + steady vs CloudSim

policies: thr-mmt-0.8, iqr-mmt-1.5, mad-mmt-2.5, lr-mmt-1.2, lrr-mmt-1.2 (any DET-SEL-PARAM with
DET in thr iqr mad lr lrr and SEL in mmt mc rs mu), and steady (ours; steady:high=0.9,pack=0.8).
A day is a folder of PlanetLab trace files or a .tar.gz of one.  Reference policies run in
CloudSim-compatible mode (docs/simulator.md lists the quirks reproduced)."""

COMPARE = ("thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2", "steady")


def register(subparsers: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", parents=[common], help="simulate consolidation on PlanetLab traces",
        description="Trace-driven simulation of VM consolidation: energy, SLA violation, migrations.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--day", action="append", metavar="DIR|ARCHIVE",
                   help="a day of traces (folder or .tar.gz); repeat for several (default: shipped day)")
    p.add_argument("--policy", default="thr-mmt-0.8", help="policy name (default: thr-mmt-0.8)")
    p.add_argument("--compare", action="store_true",
                   help=f"run {', '.join(COMPARE)} and print CloudSim's figures beside")
    p.add_argument("--policies", help="with --compare: comma-separated policies to run instead")
    p.add_argument("--hosts", type=int, default=800, help="number of hosts (default 800)")
    p.add_argument("--plot", metavar="PNG", help="draw active hosts, power and overloaded hosts over the day")
    p.set_defaults(func=run)
    return p


def _days(args: argparse.Namespace) -> list[str]:
    from ..sim.traces import default_day
    return list(args.day) if args.day else [default_day()]


def _short(day: str) -> str:
    base = os.path.basename(day.rstrip("/"))
    for ext in (".tar.gz", ".tgz", ".tar"):
        if base.endswith(ext):
            return base[: -len(ext)]
    return base


def run(args: argparse.Namespace, out: Output) -> int:
    from ..errors import UsageError
    from ..policies import policy_from_name
    from ..sim.engine import Simulator
    from ..sim.reference import reference_for
    from ..sim.setup import DataCentre
    from ..sim.traces import load_day

    if args.hosts <= 0:
        raise UsageError("--hosts must be positive")
    names = ([x.strip() for x in args.policies.split(",") if x.strip()] if args.policies else list(COMPARE)) \
        if args.compare else [args.policy]
    for n in names:
        policy_from_name(n)  # unknown names fail before any work
    results = []
    rows = []
    for day in _days(args):
        workload = load_day(day)
        for name in names:
            out.line(f"simulating {name} on {_short(day)} ({workload.n_vms} VMs, {args.hosts} hosts)...") \
                if args.compare else None
            m = Simulator(workload, policy_from_name(name), DataCentre(n_hosts=args.hosts)).run()
            ref = reference_for(day, name) if args.hosts == 800 else None
            results.append((day, m, ref))
            rows.append(_row(_short(day), m, ref, args.compare))
    if args.compare:
        cols = ["day", "policy", "energy kWh (CloudSim)", "SLATAH (CloudSim)", "PDM (CloudSim)", "SLAV x1e5",
                "ESV x1e3", "migrations (CloudSim)", "shutdowns (CloudSim)"]
    else:
        cols = ["day", "policy", "energy kWh", "SLATAH", "PDM", "SLAV x1e5", "ESV x1e3", "migrations",
                "shutdowns", "seconds"]
    out.table(cols, rows)
    if args.compare:
        for line in _verdicts(results):
            out.line(line)
    payload = [dict(m.as_dict(), day=day, cloudsim=(ref.__dict__ if ref else None)) for day, m, ref in results]
    out.data(payload if len(payload) > 1 else payload[0])
    if args.plot:
        from ..sim.plot import plot_day
        first = results[0][0]
        plot_day([m for d, m, _ in results if d == first], args.plot)
        out.line(f"plot written to {args.plot}")
    return 0


def _row(day: str, m: Any, ref: Optional[Any], compare: bool) -> list[str]:
    def pair(ours: str, theirs: Optional[str]) -> str:
        return f"{ours} ({theirs})" if compare and theirs is not None else ours
    return [day, m.policy,
            pair(f"{m.energy_kwh:.2f}", f"{ref.energy_kwh:.2f}" if ref else None),
            pair(f"{m.slatah * 100:.2f}%", f"{ref.slatah * 100:.2f}%" if ref else None),
            pair(f"{m.pdm * 100:.3f}%", f"{ref.pdm * 100:.2f}%" if ref else None),
            f"{m.slav * 1e5:.3f}", f"{m.esv * 1e3:.4f}",
            pair(str(m.migrations), str(ref.migrations) if ref else None),
            pair(str(m.shutdowns), str(ref.shutdowns) if ref else None)] + ([] if compare else [f"{m.wall_time:.2f}"])


def _verdicts(results: list) -> list[str]:
    """One line per day: how our policy does against LR-MMT-1.2 (the best reference)."""
    lines = []
    by_day: dict[str, dict[str, Any]] = {}
    for day, m, _ in results:
        by_day.setdefault(day, {})[m.policy] = m
    for day, ms in by_day.items():
        lr, ours = ms.get("lr-mmt-1.2"), ms.get("steady")
        if lr and ours and lr.esv > 0 and lr.migrations > 0:
            lines.append(f"{_short(day)}: steady vs lr-mmt-1.2: energy x{ours.energy_kwh / lr.energy_kwh:.2f}, "
                         f"ESV x{ours.esv / lr.esv:.2f}, migrations x{ours.migrations / lr.migrations:.2f}")
    return lines
