"""``tune deploy APP``: deploy, then manage the application until told to stop."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any, Optional

from ..adl.loader import load_application
from ..clock import Clock, SimClock
from ..errors import GroupError, TuneError
from ..manager.manager import COALESCE, QUEUE, Manager
from ..manager.scenario import ScenarioPlayer, parse_scenario
from .common import examples, positive
from .output import Output
from .timeline import TimelinePrinter


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser("deploy", parents=[common], help="deploy an application and manage it",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Deploy the application on its host families, run its start diagram, then "
                                   "serve events (probes, node pipes, 'tune event') until the scenario ends, "
                                   "--duration passes, Ctrl-C, SIGTERM, 'tune undeploy' or a 'stop' event; "
                                   "then run the stop diagram and undeploy.",
                       epilog=examples(
                           "tune deploy examples/xen_attitune/app.xml            # the simulated grid scenario",
                           "tune deploy examples/xen_attitune/app.xml --speed 60 --duration 120",
                           "tune deploy examples/xen_attitune/app.xml --dry-run   # plan and commands only",
                           "tune deploy app.xml --grid grid-ssh.xml --no-scenario # real dom0 hosts",
                           "tune deploy app.xml --state-dir DIR --resume         # after the manager died"))
    p.add_argument("file", help="app.xml or model.uml")
    p.add_argument("--grid", help="a file of host families replacing the application's own")
    p.add_argument("--scenario", help="scenario file (default: scenario.yaml beside the application, "
                                      "on the simulated grid)")
    p.add_argument("--no-scenario", action="store_true", help="do not play any scenario")
    p.add_argument("--duration", type=positive, help="stop after this many seconds (of the manager's clock)")
    p.add_argument("--speed", type=positive, help="simulated seconds per real second (simulated grid)")
    p.add_argument("--state-dir", help="where the manager keeps its socket and state")
    p.add_argument("--dry-run", action="store_true", help="print allocation, bindings and commands; connect to nothing")
    p.add_argument("--event-policy", choices=(COALESCE, QUEUE), default=COALESCE,
                   help="events for an instance already being reconfigured: coalesce (default) or queue")
    p.add_argument("--host-key-policy", choices=("accept-new", "strict", "insecure"), default="accept-new")
    p.add_argument("--parallel", type=int, default=10, help="hosts worked on at once (default 10)")
    p.add_argument("--actions", action="store_true", help="also print every wrapper call")
    p.add_argument("--resume", action="store_true",
                   help="recover the deployment journaled in the state directory by a manager that died "
                        "(kill -9, crash, power cut): ask the hypervisors and hosts what really runs, finish "
                        "or compensate the reconfiguration in flight, then serve again; no scenario is "
                        "replayed unless --scenario is given.  A plain deploy with that state directory "
                        "resumes too")
    p.add_argument("--action-timeout", type=positive, metavar="SECONDS",
                   help="abandon a wrapper call after this many seconds (of the manager's clock) and fail "
                        "its action; an action node's timeout=\"SECONDS\" overrides it")
    p.set_defaults(func=run)
    return p


def _scenario_path(args: argparse.Namespace, simulated: bool) -> Optional[str]:
    if args.no_scenario:
        return None
    if args.scenario:
        return str(args.scenario)
    if getattr(args, "resume", False):
        return None
    default = os.path.join(os.path.dirname(os.path.abspath(args.file)), "scenario.yaml")
    return default if simulated and os.path.exists(default) else None


def run(args: argparse.Namespace, out: Output) -> int:
    app = load_application(args.file, grid=args.grid)
    simulated = all(f.protocol == "sim" for f in app.families.values())
    scenario_file = _scenario_path(args, simulated)
    scenario = parse_scenario(scenario_file) if scenario_file else None
    if simulated:
        clock: Clock = SimClock(args.speed or (scenario.speed if scenario else 20.0))
    else:
        clock = Clock()
    manager = Manager(app, state_dir=args.state_dir, clock=clock, event_policy=args.event_policy,
                      host_key_policy=args.host_key_policy, max_parallel=args.parallel, dry_run=args.dry_run,
                      action_timeout=args.action_timeout)
    if args.dry_run:
        report = manager.deploy()
        out.data(report)
        out.line(f"dry run of {app.name}: nothing was touched")
        out.table(["instance", "node"], sorted(report["placement"].items()), title="allocation")
        out.line("bindings: " + ", ".join(f"{a}-{b}" for a, b in report["bindings"]))
        for node, cmds in report["commands"].items():
            out.line(f"{node}:")
            for c in cmds:
                out.line(f"  {c}")
        return 0
    timeline: list[dict[str, Any]] = []
    manager.subscribe(lambda ev: timeline.append(ev.to_dict()))
    progress = None
    if not out.json_mode and not out.quiet:
        if out.is_terminal:
            from .progress import DeployProgress
            progress = DeployProgress(out.stream, lambda ev: None)
            progress.printer = TimelinePrinter(progress.write, actions=args.actions)
            manager.subscribe(progress)
        else:
            manager.subscribe(TimelinePrinter(out.line, actions=args.actions))
    out.line(f"tune: {'resuming' if args.resume else 'deploying'} {app.name} ({clock.describe()})"
             + (f"; scenario {os.path.relpath(scenario_file)}" if scenario_file else ""))
    interrupted = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        interrupted.set()
        manager.request_stop()

    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    player: Optional[ScenarioPlayer] = None
    code = 0
    recovery: Optional[dict[str, Any]] = None
    try:
        try:
            if args.resume:
                recovery = manager.resume()
            else:
                manager.deploy()
            recovery = recovery or (manager.recovery.to_dict() if manager.recovery is not None else None)
            if recovery is not None:
                out.line(f"tune: resumed {app.name}: {len(recovery['interrupted_runs'])} interrupted run(s), "
                         f"{len(recovery['actions'])} recovery action(s), {len(recovery['problems'])} problem(s)")
                for line in recovery["actions"]:
                    out.line(f"  recovery: {line}")
                for line in recovery["problems"]:
                    out.error(f"recovery problem: {line}")
        except GroupError as exc:
            out.failure(exc)
            code = 1
            return code
        if scenario is not None:
            player = ScenarioPlayer(manager, scenario)
            player.start()
        duration = args.duration if args.duration else (scenario.duration if scenario else None)
        manager.serve(duration)
    except TuneError as exc:
        out.failure(exc)
        code = exc.exit_code
    finally:
        if progress is not None:
            progress.close()
        if player is not None:
            player.stop()
        final = {c.srname: c.node for c in manager.sr.instances()}
        states = {c.srname: c.state.value for c in manager.sr.instances()}
        try:
            manager.shutdown()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if code == 0:
            vms = sorted(final.items())
            out.table(["instance", "node", "state"], [(k, v, states[k]) for k, v in vms],
                      title="final placement (before undeployment)")
            migrations = [m.to_dict() for m in manager.migrations]
            ok = [m for m in migrations if m["status"] == "completed"]
            out.line(f"migrations: {len(ok)} completed, {len(migrations) - len(ok)} failed; events: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(manager.bus.counters.items())))
            out.data({"application": app.name, "clock": clock.describe(), "final_placement": final,
                      "states": states, "migrations": migrations, "events": dict(manager.bus.counters),
                      "timeline": timeline, "recovery": recovery})
    if interrupted.is_set():
        out.error("interrupted: undeployed cleanly")
        return 130
    return code
