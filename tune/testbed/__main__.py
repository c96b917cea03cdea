"""``python -m tune.testbed up [N] | down | status``: namespace hosts for manual experiments.

``up`` starts a small supervisor process that owns the hosts (it is the parent of every sshd and
reaps them: PID 1 here does not) and records them in ``BASE_DIR/state.json``; ``down`` in any
later shell asks that supervisor to tear everything down, then removes any leftovers of the
prefix.  ``status`` shows the hosts and whether each answers on port 22.

Note: the supervisor itself, once it exits, is an orphan that PID 1 may never reap; one
``<defunct>`` python per up/down cycle is the price of a detached test bed on such machines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Optional, TextIO

from .netns import TestBed, TestBedError, _pid_alive, testbed_missing_reason


def _bed(args: argparse.Namespace, n: Optional[int] = None) -> TestBed:
    return TestBed(n or args.n, base_dir=args.base_dir, prefix=args.prefix, subnet=args.subnet,
                   xen=not args.no_xl)


def _read_state(base_dir: str) -> Optional[dict]:
    try:
        with open(os.path.join(base_dir, "state.json")) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _print_hosts(state: dict, out: TextIO = sys.stdout) -> None:
    key = state["key_path"]
    kh = os.path.join(state["base_dir"], "ssh_known_hosts")
    print(f"test bed {state['prefix']}: bridge {state['bridge']} ({state['subnet']}.1), "
          f"{len(state['hosts'])} hosts, state in {state['base_dir']}", file=out)
    for h in state["hosts"]:
        up = _port_open(h["address"])
        print(f"  {h['name']:<4} {h['address']:<15} netns {h['netns']:<8} "
              f"sshd {'up' if up else 'DOWN'}   nsenter -t {h['pid']} -n -m -u", file=out)
    first = state["hosts"][0]["address"]
    print(f"reach a host with:\n  ssh -i {key} -o UserKnownHostsFile={kh} root@{first} hostname",
          file=out)


def _port_open(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=0.5):
            return True
    except OSError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    """The detached supervisor: build the bed, wait for SIGTERM, tear it down."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bed = _bed(args)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        bed.up()
    except TestBedError as exc:
        print(f"up failed: {exc}", file=sys.stderr)
        return 1
    while not stop:
        time.sleep(0.2)
        # reap adopted orphans (ended sshd sessions whose listener was restarted)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
    bed.down()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    reason = testbed_missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    state = _read_state(args.base_dir)
    if state and _pid_alive(int(state.get("supervisor", 0) or 0)):
        print(f"a test bed is already up in {args.base_dir} (run 'down' first)", file=sys.stderr)
        _print_hosts(state)
        return 1
    os.makedirs(args.base_dir, exist_ok=True)
    try:
        os.unlink(os.path.join(args.base_dir, "state.json"))
    except FileNotFoundError:
        pass
    log_path = os.path.join(args.base_dir, "supervisor.log")
    cmd = [sys.executable, "-m", "tune.testbed", "--base-dir", args.base_dir, "--prefix",
           args.prefix, "--subnet", args.subnet] + (["--no-xl"] if args.no_xl else []) + [
        "_serve", str(args.n)]
    with open(log_path, "ab") as log_fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=log_fh,
                                start_new_session=True, cwd="/")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = _read_state(args.base_dir)
        if state and state.get("supervisor") == proc.pid:
            _print_hosts(state)
            return 0
        if proc.poll() is not None:
            print(f"test bed failed to start; see {log_path}", file=sys.stderr)
            return 1
        time.sleep(0.05)
    print(f"test bed not ready after 60 s; see {log_path}", file=sys.stderr)
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    state = _read_state(args.base_dir)
    if state:
        args.prefix, args.subnet = state.get("prefix", args.prefix), state.get("subnet", args.subnet)
        sup = int(state.get("supervisor", 0) or 0)
        if sup > 1 and _pid_alive(sup):
            os.kill(sup, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while _pid_alive(sup) and time.monotonic() < deadline:
                time.sleep(0.05)
        n = len(state.get("hosts", [])) or args.n
    else:
        n = args.n
    # whatever the supervisor could not remove (it crashed, or was killed)
    _bed(args, n).cleanup_leftovers()
    print(f"test bed {args.prefix} down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = _read_state(args.base_dir)
    if not state:
        print(f"no test bed recorded in {args.base_dir}")
        return 1
    sup = int(state.get("supervisor", 0) or 0)
    print(f"supervisor pid {sup}: {'running' if _pid_alive(sup) else 'GONE'}")
    _print_hosts(state)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tune.testbed",
                                     description="namespace hosts with sshd (needs root)")
    parser.add_argument("--base-dir", default="/tmp/tune-testbed")
    parser.add_argument("--prefix", default="tb")
    parser.add_argument("--subnet", default="10.77.0", help="first three octets (default 10.77.0)")
    parser.add_argument("--no-xl", action="store_true", help="do not install the stand-in xl")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("up", "_serve"):
        p = sub.add_parser(name)
        p.add_argument("n", type=int, nargs="?", default=3)
    p = sub.add_parser("down")
    p.add_argument("n", type=int, nargs="?", default=3)
    sub.add_parser("status").set_defaults(n=3)
    args = parser.parse_args(argv)
    args.base_dir = os.path.abspath(args.base_dir)
    return {"up": cmd_up, "_serve": cmd_serve, "down": cmd_down, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
