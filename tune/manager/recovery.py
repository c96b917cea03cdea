"""Resuming a deployment whose manager died: reconcile the journal with reality, then serve.

:func:`resume` (``tune deploy --resume``, or a restart with the same state directory) runs these
steps, each written to the journal so a crash during recovery is itself recovered:

1. **The System Representation** is read back from the journal's last snapshot and the changes
   journaled after it are replayed (secret attribute values, never written to disk, come back
   from the application description).
2. **Reality** is asked: ``driver.list()`` on every node of each family that has a hypervisor
   driver (where each domain really runs; a host that cannot be asked makes nothing decided on
   a guess); the nodes' file systems for instance folders (does ``dir_local`` exist); the
   persistent simulated world for simulated hosts' power.
3. **Interrupted steps** (intents without outcome) are finished or compensated:

   * a migration found completed (the domain runs on the destination) is recorded there; not
     completed (still on the source) is recorded as failed, the VM on its source;
   * a Comp++ is compensated, all or nothing as :meth:`Manager.create_instances` itself is: the
     domains it started are destroyed, the folders it deployed removed, its instances dropped;
   * a Comp-- is completed: stopped if still running, undeployed, dropped;
   * an interrupted ``start`` or ``stop`` call whose outcome reality cannot tell marks the
     instance failed (never started twice on a guess).

4. **Every domain-backed instance** (a component whose host family has a driver; its domain
   has its name) is put where its domain runs, STARTED when it runs, FAILED when it runs
   nowhere; components placed beside another (probes) follow it again.
5. **Interrupted diagram runs** are closed as ``interrupted`` and treated like cancelled ones:
   the actions they had not started never run; their ``on-failure`` compensation runs once the
   manager serves again; an interrupted ``start`` diagram is finished (``start`` is called on the
   instances still stopped, dependencies first).
6. **Serving again**: event bus, control socket, node pipe relays; instances with the
   ``restart`` recovery policy that were started have ``start`` called again, because what
   their start made (a probe's sampling thread) lived in the dead manager's process.

Recovery policy of a component type: its attribute ``recovery`` (``restart`` or ``keep``), else
its wrapper class's ``tune_recovery``; by default ``restart`` for types without a host family
(agents placed beside what they watch, such as CPU probes) and ``keep`` for the others, whose
running state is left alone.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..adl.graph import start_order
from ..components.component import Component, Lifecycle
from ..components.sr import SystemRepresentation
from ..errors import TuneError, UsageError
from ..virt.base import MigrationReport
from ..virt.simstate import persist as persist_world
from . import deployer
from .journal import Journal, Record, replay

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager

log = logging.getLogger(__name__)

RESTART, KEEP = "restart", "keep"


@dataclass
class RecoveryReport:
    """What recovery found and did (also the ``recovery.end`` journal record)."""

    deployment: int = 0
    interrupted_runs: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    compensations: list[str] = field(default_factory=list)
    replayed: int = 0  # SR changes journaled after the last snapshot, replayed over it
    duration: float = 0.0

    def did(self, line: str) -> None:
        log.info("recovery: %s", line)
        self.actions.append(line)

    def problem(self, line: str) -> None:
        log.warning("recovery: %s", line)
        self.problems.append(line)

    def to_dict(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "interrupted_runs": self.interrupted_runs,
                "actions": self.actions, "problems": self.problems, "restarted": self.restarted,
                "compensations": self.compensations, "replayed": self.replayed,
                "duration": round(self.duration, 3)}


def recovery_policy(manager: "Manager", comp: Component) -> str:
    ct = manager.app.components.get(comp.type)
    if ct is None:
        return KEEP
    policy = str(ct.attributes.get("recovery", "") or "").strip().lower()
    if policy in (RESTART, KEEP):
        return policy
    wrapper = manager.app.wrappers.get(comp.type)
    start = wrapper.methods.get("start") if wrapper else None
    if start is not None:  # the wrapper class may say it: tune_recovery = "restart"
        try:
            from ..wdl.resolve import resolve_method
            cls, _fn = resolve_method(start, manager.app.base_dir)
            policy = str(getattr(cls, "tune_recovery", "") or "").strip().lower()
        except TuneError:
            policy = ""
        if policy in (RESTART, KEEP):
            return policy
    return KEEP if ct.host_family else RESTART


def domain_backed(manager: "Manager", comp: Component) -> bool:
    """Instances of a component whose host family has a driver are domains of the same name."""
    ct = manager.app.components.get(comp.type)
    fam = manager.app.families.get(ct.host_family) if ct is not None and ct.host_family else None
    return bool(fam is not None and fam.driver)


def load_sr(manager: "Manager", data: dict[str, Any]) -> SystemRepresentation:
    """The journal's snapshot as an SR, secret values restored from the application."""
    sr = SystemRepresentation.from_dict(data)
    sr.bindings = {b.key: b for b in manager.app.bindings}
    for comp in sr.instances():
        ct = manager.app.components.get(comp.type)
        for name in comp.secret:
            if comp.attributes.get(name) == "***" and ct is not None and name in ct.attributes:
                comp.attributes[name] = ct.attributes[name]
    return sr


class _Reality:
    """Where each domain runs, by the hypervisors' own word."""

    def __init__(self, manager: "Manager", report: RecoveryReport) -> None:
        self.m = manager
        self.report = report
        self.where: dict[str, list[str]] = {}
        self.unreachable: set[str] = set()
        self.asked: set[str] = set()

    def ask(self) -> None:
        """``driver.list()`` on every node that has a driver, all at once (bounded)."""
        from concurrent.futures import ThreadPoolExecutor

        self.where.clear()
        nodes = [n.id for n in self.m.sr.nodes() if n.driver and n.id not in self.unreachable]

        def one(node_id: str) -> Any:
            try:
                return self.m.driver(node_id).list()
            except TuneError as exc:
                return exc

        with ThreadPoolExecutor(max(1, min(self.m.max_parallel, len(nodes) or 1))) as pool:
            answers = list(pool.map(one, nodes))
        for node_id, domains in zip(nodes, answers):
            if isinstance(domains, TuneError):
                self.unreachable.add(node_id)
                self.report.problem(f"node {node_id}: cannot list its domains ({domains}); its instances are "
                                    "left as the journal says")
                continue
            self.asked.add(node_id)
            for d in domains:
                self.where.setdefault(d.name, []).append(node_id)

    def location(self, name: str) -> Optional[str]:
        nodes = self.where.get(name, [])
        if len(nodes) > 1:
            self.report.problem(f"domain {name} runs on {len(nodes)} hosts: {', '.join(nodes)}")
        return nodes[0] if nodes else None

    def dir_exists(self, node_id: Optional[str], path: str) -> Optional[bool]:
        if not node_id or not path:
            return False
        try:
            ex = self.m.executor(node_id)
            return ex.run(["test", "-d", ex.path(path)], check=False, timeout=30).ok
        except TuneError as exc:
            self.report.problem(f"node {node_id}: cannot check {path} ({exc})")
            return None


def _remove_dir(m: "Manager", node_id: Optional[str], path: str, report: RecoveryReport) -> None:
    if not node_id or not path:
        return
    try:
        ex = m.executor(node_id)
        ex.run(["rm", "-rf", "--", ex.path(path)], timeout=60)
    except TuneError as exc:
        report.problem(f"node {node_id}: cannot remove {path} ({exc})")


def _destroy_domain(m: "Manager", name: str, node_id: str, report: RecoveryReport) -> None:
    try:
        m.driver(node_id).destroy(name)
        report.did(f"destroyed domain {name} on {node_id}")
    except TuneError as exc:
        report.problem(f"cannot destroy domain {name} on {node_id}: {exc}")


def _set_state(m: "Manager", srname: str, state: Lifecycle, error: Optional[str] = None) -> None:
    comp = m.sr.instance(srname)
    if comp.state is state and (error is None or comp.error == error):
        return
    m.sr.set_state(srname, state, error=error)


def _compensate_create(m: "Manager", intent: Record, recs: list[Record], reality: _Reality,
                       report: RecoveryReport) -> None:
    placed = next((r for r in recs if r.kind == "create.placed" and r.ref == intent.seq), None)
    where: dict[str, dict[str, Any]] = dict(placed.data.get("instances", {})) if placed else {}
    for name in intent.data.get("names", []):
        info = where.get(name, {})
        if m.sr.has_instance(name):
            comp = m.sr.instance(name)
            info = {"node": comp.node, "dir": comp.dir_local}
        node = reality.location(name)
        if node is not None:
            _destroy_domain(m, name, node, report)
        if info.get("node") and info.get("dir") and reality.dir_exists(info["node"], info["dir"]):
            _remove_dir(m, info["node"], info["dir"], report)
            report.did(f"Comp++ {intent.data.get('component')}: removed {name}'s folder on {info['node']}")
        if m.sr.has_instance(name):
            m.sr.remove_instance(name)
            m.runner.forget(name)
            report.did(f"Comp++ {intent.data.get('component')}: dropped {name} from the SR")
    m.journal_write("create.failed", ref=intent.seq, recovered=True,
                    error="interrupted by a manager crash; compensated on recovery")


def _complete_remove(m: "Manager", intent: Record, recs: list[Record], reality: _Reality,
                     report: RecoveryReport) -> None:
    name = str(intent.data.get("instance"))
    stopped = any(r.kind == "call.done" and r.seq > intent.seq and r.data.get("instance") == name
                  and r.data.get("method") == "stop" for r in recs)
    if m.sr.has_instance(name):
        comp = m.sr.instance(name)
        node = reality.location(name) if domain_backed(m, comp) else None
        wrapper = m.app.wrappers.get(comp.type)
        has_stop = bool(wrapper and "stop" in wrapper.methods)
        if node is not None:
            if node != comp.node:
                m.sr.place(name, node, check_slots=False, uses_slot=comp.uses_slot)
            if comp.state is not Lifecycle.STOPPING and has_stop:
                try:
                    m.runner.call(name, "stop")
                except TuneError as exc:
                    report.problem(f"Comp-- {name}: stop failed ({exc}); destroying its domain")
            try:
                still = any(d.name == name for d in m.driver(node).list())
            except TuneError:
                still = True
            if still:
                _destroy_domain(m, name, node, report)
        elif not domain_backed(m, comp) and not stopped and has_stop and \
                comp.state in (Lifecycle.STARTED, Lifecycle.STARTING):
            try:
                m.runner.call(name, "stop")
            except TuneError as exc:
                report.problem(f"Comp-- {name}: stop failed ({exc})")
        m._forget_instance(name, undeploy=True)
        report.did(f"Comp-- {name}: removal completed")
    else:
        _remove_dir(m, intent.data.get("node"), str(intent.data.get("dir") or ""), report)
        report.did(f"Comp-- {name}: was already out of the SR; its folder is gone")
    m.journal_write("remove.done", ref=intent.seq, instance=name, recovered=True)


def _finish_migration(m: "Manager", intent: Record, reality: _Reality, report: RecoveryReport) -> None:
    vm, src, dst = (str(intent.data.get(k)) for k in ("vm", "source", "destination"))
    where = reality.location(vm)
    if where is None and reality.unreachable:
        report.problem(f"migration of {vm} {src} -> {dst}: {vm} is on no reachable host and "
                       f"{', '.join(sorted(reality.unreachable))} cannot be asked; left open for the next resume")
        return
    if not m.sr.has_instance(vm):
        report.problem(f"migration of {vm}: no such instance any more")
        m.journal_write("migrate.failed", ref=intent.seq, vm=vm, recovered=True, message="instance gone")
        return
    if where == dst:
        if m.sr.instance(vm).node != dst:
            m.relocate(vm, dst)
        rep = MigrationReport(vm, src, dst, "completed", message="found completed on recovery")
        report.did(f"migration of {vm} {src} -> {dst}: found completed, recorded on {dst}")
    else:
        rep = MigrationReport(vm, src, dst, "failed",
                              message="interrupted by a manager crash; " + (f"{vm} is on {where}" if where
                                                                             else f"{vm} runs nowhere"))
        report.did(f"migration of {vm} {src} -> {dst}: not completed, {vm} "
                   + (f"stays on {where}" if where else "runs nowhere"))
    m._migration_intents[vm] = intent.seq
    m.record_migration(rep)


def _reconcile_power(m: "Manager", report: RecoveryReport) -> None:
    """Simulated hosts: the SR's up/off follows the (persistent) world's power state."""
    for node in m.sr.nodes():
        if node.driver != "sim" or node.state not in ("up", "off"):
            continue
        host = m.world.hosts.get(node.host)
        if host is None:
            continue
        state = "up" if host.powered else "off"
        if state != node.state:
            report.did(f"node {node.id}: powered {'on' if host.powered else 'off'}, the journal said {node.state}")
            m.sr.set_node_state(node.id, state)


def _reconcile_domains(m: "Manager", reality: _Reality, report: RecoveryReport) -> None:
    known = set()
    for comp in m.sr.instances():
        if not domain_backed(m, comp):
            continue
        known.add(comp.srname)
        if comp.node in reality.unreachable:
            continue
        where = reality.location(comp.srname)
        if where is not None:
            if where != comp.node:
                report.did(f"{comp.srname}: runs on {where}, the journal said {comp.node}; moved in the SR")
                m.relocate(comp.srname, where)
            if comp.state in (Lifecycle.STOPPED, Lifecycle.STARTING, Lifecycle.FAILED):
                report.did(f"{comp.srname}: its domain runs: started")
                _set_state(m, comp.srname, Lifecycle.STARTED)
            elif comp.state is Lifecycle.STOPPING:
                report.did(f"{comp.srname}: stop interrupted, its domain still runs: started")
                _set_state(m, comp.srname, Lifecycle.STARTED)
        elif reality.unreachable:
            report.problem(f"{comp.srname}: on no reachable host, and {', '.join(sorted(reality.unreachable))} "
                           "cannot be asked: left as the journal says")
        elif comp.state is Lifecycle.STARTING:
            report.did(f"{comp.srname}: start interrupted before its domain ran: stopped")
            _set_state(m, comp.srname, Lifecycle.STOPPED)
        elif comp.state is Lifecycle.STARTED:
            report.did(f"{comp.srname}: its domain runs on no host: failed")
            _set_state(m, comp.srname, Lifecycle.FAILED, error="its domain runs on no host (found on recovery)")
        elif comp.state is Lifecycle.STOPPING:
            _set_state(m, comp.srname, Lifecycle.STOPPED)
    for name, nodes in sorted(reality.where.items()):
        if name not in known:
            report.problem(f"domain {name} on {', '.join(nodes)} is not in the SR (left alone)")


def _reconcile_others(m: "Manager", reality: _Reality, report: RecoveryReport) -> None:
    for comp in m.sr.instances():
        if domain_backed(m, comp):
            continue
        # components placed beside another follow it (finishes an interrupted "follow")
        if not comp.uses_slot:
            partners = [p for p in m.sr.bound(comp.srname) if p.node is not None and p.uses_slot]
            if partners and partners[0].node != comp.node:
                report.did(f"{comp.srname}: placed beside {partners[0].srname} on {partners[0].node} again")
                m.relocate(comp.srname, partners[0].node)  # type: ignore[arg-type]
            continue
        if comp.node in reality.unreachable:
            continue
        if comp.state is not Lifecycle.FAILED and reality.dir_exists(comp.node, comp.dir_local) is False:
            report.problem(f"{comp.srname}: its folder {comp.dir_local} is missing on {comp.node}: failed")
            _set_state(m, comp.srname, Lifecycle.FAILED, error="not deployed on its node (found on recovery)")
            continue
        if comp.state in (Lifecycle.STARTING, Lifecycle.STOPPING) and recovery_policy(m, comp) == KEEP:
            what = "start" if comp.state is Lifecycle.STARTING else "stop"
            report.did(f"{comp.srname}: {what} interrupted, outcome unknown: failed")
            _set_state(m, comp.srname, Lifecycle.FAILED,
                       error=f"{what} interrupted by a manager crash (outcome unknown)")


def _restart(m: "Manager", report: RecoveryReport) -> None:
    for comp in m.sr.instances():
        if recovery_policy(m, comp) != RESTART or domain_backed(m, comp):
            continue
        if comp.state not in (Lifecycle.STARTED, Lifecycle.STARTING):
            continue
        wrapper = m.app.wrappers.get(comp.type)
        if not wrapper or "start" not in wrapper.methods:
            continue
        _set_state(m, comp.srname, Lifecycle.STOPPED)
        try:
            m.runner.call(comp.srname, "start")
            report.restarted.append(comp.srname)
        except TuneError as exc:
            report.problem(f"{comp.srname}: restart failed: {exc}")


def _finish_start(m: "Manager", report: RecoveryReport) -> None:
    """An interrupted start diagram: start what is still stopped, dependencies first."""
    for wave in start_order(m.app):
        for ctype in wave:
            wrapper = m.app.wrappers.get(ctype)
            if not wrapper or "start" not in wrapper.methods:
                continue
            for comp in m.sr.instances(ctype):
                if comp.state is Lifecycle.STOPPED:
                    try:
                        m.runner.call(comp.srname, "start")
                        report.did(f"{comp.srname}: started (the start diagram was interrupted)")
                    except TuneError as exc:
                        report.problem(f"{comp.srname}: start failed: {exc}")


def resume(m: "Manager", *, start: bool = True) -> RecoveryReport:
    """Recover the deployment journaled in ``m.state_dir`` and serve it again (see module doc)."""
    t0 = time.monotonic()
    if m.dry_run:
        raise UsageError("--resume and --dry-run do not go together")
    os.makedirs(m.state_dir, mode=0o700, exist_ok=True)
    os.chmod(m.state_dir, 0o700)
    journal = m._open_journal() if m.use_journal else None
    if journal is None:
        journal = m.journal = Journal.open(m.state_dir)
    begin = journal.live_deployment()
    if begin is None:
        raise UsageError(f"nothing to resume in {m.state_dir}: its journal holds no deployment whose "
                         "manager died (deploy without --resume)")
    found = journal.last_snapshot()
    if found is None:
        raise UsageError(f"nothing to resume in {m.state_dir}: the journal has no System Representation")
    report = RecoveryReport(deployment=begin.seq)
    recs = journal.records(begin.seq)
    open_intents = journal.open_intents(begin.seq)
    rb = journal.write("recovery.begin", {"pid": os.getpid(), "open": [r.seq for r in open_intents]})
    persist_world(m.world, m.state_dir)
    m.sr = load_sr(m, found[1])
    report.replayed = replay(m.sr, journal.records(found[0] + 1))
    m.planned = True
    deployed = any(r.kind == "deploy.end" and r.data.get("status") == "done" for r in recs)
    for node in m.sr.nodes():
        if node.driver:
            try:
                m.driver(node.id)
            except TuneError as exc:
                report.problem(f"node {node.id}: hypervisor driver unavailable: {exc}")
    reality = _Reality(m, report)
    reality.ask()

    if not deployed:
        report.did("the deployment itself was interrupted: deploying again (idempotent)")
        try:
            deployer.deploy(m, m.sr.instances())
        except TuneError as exc:
            report.problem(f"deployment: {exc}")
        m.journal_write("deploy.end", ref=begin.seq, status="done", recovered=True)
    m.deployed = True

    by_kind = lambda kind: [r for r in open_intents if r.kind == kind]  # noqa: E731
    for intent in by_kind("migrate.intent"):
        _finish_migration(m, intent, reality, report)
    for intent in by_kind("create.intent"):
        _compensate_create(m, intent, recs, reality, report)
    for intent in by_kind("remove.intent"):
        _complete_remove(m, intent, recs, reality, report)
    if by_kind("create.intent") or by_kind("remove.intent"):
        reality.ask()
    _reconcile_power(m, report)
    _reconcile_domains(m, reality, report)
    _reconcile_others(m, reality, report)
    for intent in by_kind("call.intent"):
        m.journal_write("call.failed", ref=intent.seq, instance=intent.data.get("instance"),
                        method=intent.data.get("method"), recovered=True, error="interrupted by a manager crash")
    for intent in by_kind("node.begin"):
        m.journal_write("node.end", ref=intent.seq, node=intent.data.get("node"), status="interrupted")
    interrupted = by_kind("run.begin")
    for intent in interrupted:
        report.interrupted_runs.append({"run": intent.seq, "diagram": intent.data.get("diagram"),
                                        "args": intent.data.get("args", [])})
        journal.write("run.end", {"diagram": intent.data.get("diagram"), "status": "interrupted",
                                  "recovered": True}, ref=intent.seq, run=intent.seq, sr=m.sr)
    for intent in by_kind("recovery.begin"):
        journal.write("recovery.end", {"status": "interrupted"}, ref=intent.seq)
    for intent in by_kind("undeploy.begin"):
        report.did("an undeployment was interrupted: serving again (undeploy to finish it)")
        m.journal_write("undeploy.end", ref=intent.seq, status="interrupted", recovered=True)
    m.save_snapshot()
    journal.write("resume", {"pid": os.getpid()}, sr=m.sr, force_snapshot=True)

    # serve again
    m.notify("deploy.resume", instances=len(m.sr.instances()), interrupted=len(interrupted))
    m.bus.start()
    if m.use_control_socket and m._control is None:
        from ..events.control import ControlServer
        m._control = ControlServer(m.state_dir, m.handle_request)
        m._control.start()
    for node_id in sorted({c.node for c in m.sr.instances() if c.node}):
        try:  # the application folder and pipe where instances arrived by migration (idempotent)
            deployer.deploy_commands(m, m.executor(node_id), node_id, [])
        except TuneError as exc:
            report.problem(f"node {node_id}: cannot prepare its pipe: {exc}")
    m._start_relays()
    _restart(m, report)
    starts = [r for r in recs if r.kind == "run.begin" and r.data.get("diagram") in ("start", "default-start")
              and not r.data.get("compensation")]
    if start and (not deployed or not starts or any(r in interrupted for r in starts)):
        _finish_start(m, report)   # the deployment, or its start diagram, did not get to its end
    for intent in interrupted:
        diagram = m.app.diagram_graphs.get(str(intent.data.get("diagram")))
        if diagram is not None and diagram.on_failure and not intent.data.get("compensation"):
            comp = m.app.diagram_graphs.get(diagram.on_failure)
            if comp is not None:
                report.compensations.append(comp.name)
                m.notify("diagram.compensate", diagram=diagram.name, compensation=comp.name)
                m.execute(comp, tuple(intent.data.get("args", [])), compensation=True)
    report.duration = time.monotonic() - t0
    journal.write("recovery.end", report.to_dict(), ref=rb, sr=m.sr)
    m.recovery = report
    m.save_snapshot()
    m.notify("recovery.done", actions=len(report.actions), problems=len(report.problems),
             interrupted=len(interrupted), duration=round(report.duration, 3))
    return report


__all__ = ["KEEP", "RESTART", "RecoveryReport", "domain_backed", "load_sr", "recovery_policy", "resume"]
