"""Helpers shared by the sub-commands: finding a running manager, loading an application."""

from __future__ import annotations

import argparse
import os
from typing import Optional

from ..errors import ManagerError, UsageError
from ..events.control import SOCKET_NAME


def add_manager_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which running manager")
    group.add_argument("--state-dir", metavar="DIR", help="the manager's state directory")
    group.add_argument("--app", metavar="NAME", help="the application's name (its default state directory)")


def state_root() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "tune")


def find_state_dir(args: argparse.Namespace) -> str:
    """The state directory of the manager the user means (the only running one by default)."""
    if getattr(args, "state_dir", None):
        return str(args.state_dir)
    root = state_root()
    if getattr(args, "app", None):
        return os.path.join(root, args.app)
    running = []
    if os.path.isdir(root):
        for name in sorted(os.listdir(root)):
            if os.path.exists(os.path.join(root, name, SOCKET_NAME)):
                running.append(os.path.join(root, name))
    if not running:
        raise ManagerError(f"no running manager found under {root} (use --state-dir or --app)")
    if len(running) > 1:
        raise UsageError("several managers are running; choose one with --app NAME: "
                         + ", ".join(os.path.basename(r) for r in running))
    return running[0]


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def positive(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return v


def optional_path(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(path) if path else None
