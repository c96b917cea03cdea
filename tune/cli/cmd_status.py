"""``tune status``: what the running manager says runs where."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import ManagerError
from ..events.control import request
from .common import add_manager_options, examples, find_state_dir, positive
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser("status", parents=[common], help="table of instances, nodes, states, CPU, last event",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("tune status", "tune status --watch", "tune status --json --app xen-attitune",
                                       "tune status --wait 30 --state-dir /tmp/webshop-state"))
    add_manager_options(p)
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=positive, default=2.0, help="seconds between refreshes with --watch")
    p.add_argument("--wait", type=positive, metavar="SECONDS",
                   help="wait up to SECONDS for a starting manager to finish deploying (for scripts)")
    p.set_defaults(func=run)
    return p


def rows(status: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for inst in status["instances"]:
        cpu = inst.get("cpu")
        out.append((inst["type"], inst["srname"], inst.get("node") or "-", inst["state"],
                    "-" if cpu is None else f"{cpu:.1f}%", inst.get("last_event") or "-"))
    return out


def wait_deployed(args: argparse.Namespace, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if request(find_state_dir(args), {"op": "status"})["status"]["deployed"]:
                return
        except ManagerError:
            pass
        if time.monotonic() > deadline:
            raise ManagerError(f"no deployed manager answered within {seconds:g} s")
        time.sleep(0.1)


def run(args: argparse.Namespace, out: Output) -> int:
    if args.wait:
        wait_deployed(args, args.wait)
    state_dir = find_state_dir(args)
    while True:
        status = request(state_dir, {"op": "status"})["status"]
        out.data(status)
        if args.watch and out.is_terminal and not out.json_mode:
            out.stream.write("\x1b[2J\x1b[H")
        out.line(f"{status['application']} — {status['clock']}, t={status['time']:.1f}s; events: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(status["events"].items())))
        out.table(["component", "instance", "node", "state", "CPU", "last event"], rows(status))
        if not args.watch:
            return 0
        time.sleep(args.interval)
