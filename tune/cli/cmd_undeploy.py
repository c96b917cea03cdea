"""``tune undeploy``: ask the running manager to run its stop diagram, undeploy and exit."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from ..errors import ManagerError
from ..events.control import SOCKET_NAME, request
from .common import add_manager_options, examples, find_state_dir, positive
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser("undeploy", parents=[common], help="stop and undeploy a running application",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("tune undeploy", "tune undeploy --app xen-attitune --timeout 120"))
    add_manager_options(p)
    p.add_argument("--timeout", type=positive, default=300.0, help="seconds to wait for the manager to finish")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    state_dir = find_state_dir(args)
    request(state_dir, {"op": "stop"})
    deadline = time.monotonic() + args.timeout
    while os.path.exists(os.path.join(state_dir, SOCKET_NAME)):
        if time.monotonic() > deadline:
            raise ManagerError(f"the manager in {state_dir} did not finish within {args.timeout:g} s")
        time.sleep(0.1)
    out.data({"undeployed": True, "state_dir": state_dir})
    out.line(f"undeployed ({state_dir})")
    return 0
