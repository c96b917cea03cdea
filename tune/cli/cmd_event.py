"""``tune event NAME ARG...``: send an event to the running manager."""

from __future__ import annotations

import argparse
from typing import Any

from ..events.control import request
from ..events.event import make_event
from .common import add_manager_options, examples, find_state_dir
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser("event", parents=[common], help="send an event to a running manager",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Send NAME ARG... to the running manager over its control socket; "
                                   "--cancel ID cancels a running diagram instead.",
                       epilog=examples("tune event overload VM2", "tune event overload VM2 dom0-c   # the seed's form",
                                       "tune event --cancel 7", "tune event stop --app xen-attitune"))
    p.add_argument("name", nargs="?", help="event name")
    p.add_argument("args", nargs="*", help="event arguments (usually an instance name)")
    p.add_argument("--cancel", type=int, metavar="RUN", help="cancel the running diagram RUN")
    add_manager_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    state_dir = find_state_dir(args)
    if args.cancel is not None:
        reply = request(state_dir, {"op": "cancel", "run": args.cancel})
        out.data(reply)
        out.line(f"run {args.cancel}: " + ("cancelled" if reply.get("cancelled") else "not running"))
        return 0 if reply.get("cancelled") else 1
    if not args.name:
        from ..errors import UsageError
        raise UsageError("give an event NAME (or --cancel RUN)")
    event = make_event(args.name, args.args, "cli")
    reply = request(state_dir, {"op": "event", "name": event.name, "args": list(event.args)})
    out.data(reply)
    out.line(f"sent '{event}' (event {reply.get('id')})")
    return 0
