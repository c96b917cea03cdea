"""The manager: deploys an application, then watches it and reconfigures it by itself.

Lifecycle: :meth:`Manager.plan` (allocate nodes, bind instances — nothing touched),
:meth:`Manager.deploy` (put instances on their nodes, run the ``start`` diagram),
:meth:`Manager.serve` (events → diagrams until told to stop), :meth:`Manager.shutdown`
(``stop`` diagram, undeploy, clean).  It is also a context manager for Python experiments::

    import tune
    app = tune.load("examples/xen_attitune/app.xml")
    with tune.Manager(app, clock=tune.SimClock(50)) as m:
        m.deploy()
        m.run_diagram("overload", "VM1")
"""

from __future__ import annotations

import logging
import os
import posixpath
import shlex
import tempfile
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..adl.graph import start_order
from ..adl.model import Application
from ..clock import Clock
from ..components.component import Component, Lifecycle, Node
from ..components.sr import SystemRepresentation
from ..diagrams.engine import DiagramRun, Engine
from ..diagrams.model import Diagram, DiagramNode, NodeKind
from ..errors import AllocationError, DriverError, TuneError, UsageError
from ..events.bus import EventBus
from ..events.control import ControlServer
from ..events.event import Event, EventError, make_event
from ..events.pipe import PIPE_NAME, PipeRelay
from ..remote import executor_for
from ..remote.base import Executor
from ..virt import driver_for
from ..virt.base import HypervisorDriver, MigrationReport
from ..virt.sim import SimWorld
from ..virt.simstate import persist as persist_world
from . import deployer
from .allocation import Allocation, allocations
from .binding import bind_all, bind_new
from .health import HealthMonitor
from .journal import Journal
from .runner import ActionRunner

log = logging.getLogger(__name__)

COALESCE, QUEUE = "coalesce", "queue"


@dataclass
class TimelineEvent:
    """One line of the manager's timeline (what the CLI prints as it happens)."""

    time: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "kind": self.kind, **self.data}


def default_state_dir(app_name: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "tune", app_name)


# How each protocol's executor and each driver is built for a node: one small function each.
EXECUTOR_OPTIONS: dict[str, Callable[["Manager", Node], dict[str, Any]]] = {
    "sim": lambda m, n: {"root": m.sim_root},
    "local": lambda m, n: {},
    "ssh": lambda m, n: {"user": n.user, "port": n.port, "key_filename": n.key,
                         "known_hosts": m.known_hosts, "host_key_policy": m.host_key_policy},
}


def _qemu_options(m: "Manager", n: Node) -> dict[str, Any]:
    """The qemu driver's options from the family's attributes, ``{host}`` / ``{address}`` filled in.

    ``run_dir``; for hosts that are network namespaces of the manager's machine (the test bed),
    ``exec-prefix`` (the command entering the host, e.g. ``ip netns exec tb-{host}``), ``bridge``
    (VM taps go there) and ``migration-address`` (default: the node's address).
    """
    def fill(value: str) -> str:
        return value.replace("{host}", n.host).replace("{address}", n.address or n.host)

    a = n.attributes
    opts: dict[str, Any] = {"executor": m.executor(n.id)}
    if "run_dir" in a:
        opts["run_dir"] = fill(a["run_dir"])
    if "exec-prefix" in a:
        opts["exec_prefix"] = shlex.split(fill(a["exec-prefix"]))
    if "migration-address" in a or "exec-prefix" in a:
        opts["migration_address"] = fill(a.get("migration-address", "{address}"))
    if "bridge" in a:
        opts["bridge"] = a["bridge"]
    return opts


DRIVER_OPTIONS: dict[str, Callable[["Manager", Node], dict[str, Any]]] = {
    "sim": lambda m, n: {"world": m.world, "cores": int(n.attributes.get("cores", 4)),
                         "memory_mb": int(n.attributes.get("memory", 4096)),
                         "bandwidth_mbps": float(n.attributes.get("bandwidth", 1000))},
    "xen": lambda m, n: {"executor": m.executor(n.id), "address": n.address or n.host,
                         "config_dir": posixpath.join(n.dirlocal, "xen")},
    "qemu": lambda m, n: _qemu_options(m, n),
    "libvirt": lambda m, n: {"uri": n.attributes.get("uri", "qemu+ssh://{}/system".format(n.address or n.host))},
}


class Manager:
    """Deploys and manages one application.  Thread-safe; one per application."""

    sim_root: str
    known_hosts: str
    host_key_policy: str
    world: SimWorld

    def __init__(self, app: Application, *, state_dir: Optional[str] = None, clock: Optional[Clock] = None,
                 event_policy: str = COALESCE, heartbeat: Optional[float] = None,
                 host_key_policy: str = "accept-new", max_parallel: int = 10,
                 sim_root: Optional[str] = None, control_socket: bool = True, dry_run: bool = False,
                 known_hosts: Optional[str] = None, action_timeout: Optional[float] = None,
                 journal: bool = True) -> None:
        if event_policy not in (COALESCE, QUEUE):
            raise UsageError(f"event policy must be {COALESCE!r} or {QUEUE!r}, not {event_policy!r}")
        self.app = app
        self.clock = clock or Clock()
        self.state_dir = state_dir or default_state_dir(app.name)
        self.event_policy = event_policy
        self.host_key_policy = host_key_policy
        self.max_parallel = max_parallel
        self.dry_run = dry_run
        self.use_control_socket = control_socket and not dry_run
        self.known_hosts = known_hosts or os.path.join(self.state_dir, "known_hosts")
        self.sim_root = sim_root or os.path.join(self.state_dir, "simgrid")
        self.world = SimWorld(clock=self.clock)
        self.sr = SystemRepresentation.for_application(app)
        self.runner = ActionRunner(self)
        self.engine = Engine(self.runner)
        self.bus = EventBus(self._on_event)
        self.diagrams = ThreadPoolExecutor(max_workers=32, thread_name_prefix="tune-diagram")
        self.timeline: deque[TimelineEvent] = deque(maxlen=5000)
        self.runs: deque[DiagramRun] = deque(maxlen=200)
        self._observers: list[Callable[[TimelineEvent], None]] = []
        self._executors: dict[str, Executor] = {}
        self._drivers: dict[str, HypervisorDriver] = {}
        self._allocations: dict[str, Allocation] = {}
        self._relays: list[PipeRelay] = []
        self._active_keys: set[str] = set()
        self._pending: dict[str, deque[Event]] = defaultdict(deque)
        self._running: dict[int, DiagramRun] = {}
        self._keys_lock = threading.Lock()
        self._structure = threading.RLock()  # serialises Comp++ / Comp-- placement decisions
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._control: Optional[ControlServer] = None
        self.deployed = False
        self.planned = False
        self.started_at = 0.0
        self.migrations: list[MigrationReport] = []
        # node failure and repair (tune.manager.health, tune.manager.repair)
        self.health = HealthMonitor(self, heartbeat)
        self._failed_destinations: dict[str, dict[str, float]] = {}
        # reliability: the journal (tune.manager.journal), recovery report, action timeout default
        self.action_timeout = action_timeout
        self.use_journal = journal and not dry_run
        self.journal: Optional[Journal] = None
        self.recovery: Optional[Any] = None
        self._migration_intents: dict[str, int] = {}

    # ---- context manager -------------------------------------------------------------------
    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---- observers -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[TimelineEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every timeline event; returns a function that unsubscribes."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    def notify(self, kind: str, **data: Any) -> None:
        if kind == "migration.start" and self.journal is not None:  # written before the driver acts
            self._migration_intents[str(data.get("vm"))] = self.journal_write(
                "migrate.intent", vm=data.get("vm"), source=data.get("source"), destination=data.get("destination"))
        ev = TimelineEvent(self.clock.now(), kind, data)
        self.timeline.append(ev)
        for cb in list(self._observers):
            try:
                cb(ev)
            except Exception:  # noqa: BLE001 - an observer never breaks the manager
                log.exception("timeline observer failed")

    # ---- nodes, executors, drivers ---------------------------------------------------------
    def executor(self, node_id: str) -> Executor:
        with self._lock:
            ex = self._executors.get(node_id)
            if ex is None:
                node = self.sr.node(node_id)
                opts = EXECUTOR_OPTIONS[node.protocol](self, node)
                ex = executor_for(node.protocol, node.address or node.host, **opts)
                self._executors[node_id] = ex
            return ex

    def driver(self, node_id: str) -> HypervisorDriver:
        with self._lock:
            drv = self._drivers.get(node_id)
            if drv is not None:
                return drv
        node = self.sr.node(node_id)
        name = node.driver
        if not name:
            raise DriverError(f"family {node.family} names no hypervisor driver (driver=\"...\")", host=node.host)
        builder = DRIVER_OPTIONS.get(name, lambda m, n: {"executor": m.executor(n.id)})
        drv = driver_for(name, node.host, **builder(self, node))
        with self._lock:
            return self._drivers.setdefault(node_id, drv)

    def _add_nodes(self) -> None:
        taken: set[str] = set()
        for fam in self.app.families.values():
            for spec in fam.nodes:
                node_id = spec.host if spec.host not in taken else f"{spec.host}@{fam.name}"
                taken.add(node_id)
                key = spec.key or fam.key
                if key and not os.path.isabs(key):
                    key = os.path.join(self.app.base_dir, key)
                self.sr.add_node(Node(id=node_id, family=fam.name, host=spec.host, protocol=fam.protocol,
                                      user=spec.user or fam.user, port=spec.port or fam.port, key=key,
                                      address=spec.address, slots=spec.slots, dirlocal=fam.dirlocal,
                                      driver=fam.driver, attributes=dict(fam.attributes)))

    # ---- planning: allocation and binding ----------------------------------------------------
    def _allocation(self, family: str) -> Allocation:
        if family not in self._allocations:
            self._allocations[family] = allocations.create(self.app.families[family].allocation)
        return self._allocations[family]

    def _new_instance(self, comp_type: str) -> Component:
        ct = self.app.components[comp_type]
        comp = Component(self.sr.next_name(comp_type), comp_type, dict(ct.attributes), secret=ct.secret)
        return self.sr.add_instance(comp)

    def _place_in_family(self, comp: Component) -> None:
        family = self.app.components[comp.type].host_family
        if not family:
            return
        nodes = self.sr.nodes(family)
        if not nodes:
            raise AllocationError(f"family {family} has no nodes for {comp.srname}")
        node = self._allocation(family).pick(nodes, self.sr.used_slots)
        self.sr.place(comp.srname, node.id)

    def _place_beside(self, comps: list[Component]) -> None:
        """Components without a family go on the node of an instance they are bound to."""
        pending = [c for c in comps if c.node is None and not self.app.components[c.type].host_family]
        for _ in range(len(pending) + 1):
            still = []
            for c in pending:
                partners = [p for p in self.sr.bound(c.srname) if p.node is not None]
                if partners:
                    self.sr.place(c.srname, partners[0].node, uses_slot=False)  # type: ignore[arg-type]
                else:
                    still.append(c)
            if len(still) == len(pending):
                break
            pending = still
        for c in pending:
            raise AllocationError(f"{c.srname}: no host family and bound to nothing placed")

    def _set_dirs(self, comps: list[Component]) -> None:
        for c in comps:
            if c.node is not None:
                c.dir_local = deployer.instance_dir(self, c)

    def plan(self) -> SystemRepresentation:
        """Allocate nodes and bind every initial instance; touches no node."""
        if self.planned:
            return self.sr
        with self._structure:
            self._add_nodes()
            created: list[Component] = []
            for ct in self.app.components.values():
                for _ in range(ct.initial):
                    comp = self._new_instance(ct.name)
                    created.append(comp)
                    self._place_in_family(comp)
            bind_all(self.sr, self.app.bindings)
            self._place_beside(created)
            self._set_dirs(created)
            self.planned = True
        return self.sr

    # ---- journal and recovery (tune.manager.journal, tune.manager.recovery) ----------------
    def journal_write(self, kind: str, *, ref: Optional[int] = None, run: Optional[DiagramRun] = None,
                      **data: Any) -> int:
        """Append a journal record (with the SR if it changed); 0 when not journaling."""
        j = self.journal
        if j is None:
            return 0
        return j.write(kind, data, ref=ref, run=j.run_seq(run.id) if run is not None else None, sr=self.sr)

    def _open_journal(self) -> Optional[Journal]:
        if self.use_journal and self.journal is None:
            self.journal = Journal.open(self.state_dir)
            # a fresh deployment starts from a fresh simulated world; a resumed one finds it again
            persist_world(self.world, self.state_dir, fresh=self.journal.live_deployment() is None)
        return self.journal

    def resume(self, *, start: bool = True) -> dict[str, Any]:
        """Recover a deployment whose manager died (``tune deploy --resume``), then serve.

        See :mod:`tune.manager.recovery`; returns the recovery report as a dict.
        """
        from .recovery import resume
        self.started_at = time.time()
        return resume(self, start=start).to_dict()

    # ---- deployment ----------------------------------------------------------------------
    def deploy(self, *, start: bool = True) -> dict[str, Any]:
        """Plan, put every instance on its node, start serving events, run ``start``."""
        self.started_at = time.time()
        self.plan()
        if self.dry_run:
            return self.dry_run_report()
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        journal = self._open_journal()
        if journal is not None and journal.live_deployment() is not None:
            log.warning("%s: the journal holds a deployment whose manager died: resuming it", self.state_dir)
            return self.resume(start=start)
        deploy_seq = self.journal_write("deploy.begin", application=self.app.name, pid=os.getpid())
        if any(n.driver for n in self.sr.nodes()):
            import tune.policies.placement  # noqa: F401 - loaded now, not between a decision and its migration
        for node in self.sr.nodes():
            if node.driver:
                try:
                    self.driver(node.id)
                except TuneError as exc:
                    log.warning("node %s: hypervisor driver unavailable: %s", node.id, exc)
        self.clock.restart()
        self.notify("deploy.plan", clock=self.clock.describe(),
                    placement={c.srname: c.node for c in self.sr.instances()})
        self.bus.start()
        if self.use_control_socket:
            self._control = ControlServer(self.state_dir, self.handle_request)
            self._control.start()
        try:
            results = deployer.deploy(self, self.sr.instances())
        except TuneError as exc:
            self.journal_write("deploy.end", ref=deploy_seq, status="failed", error=str(exc))
            raise
        self.journal_write("deploy.end", ref=deploy_seq, status="done")
        self.deployed = True
        self._start_relays()
        self.health.start()
        self.notify("deploy.done", hosts=len(results), instances=len(self.sr.instances()))
        self.save_snapshot()
        if start:
            run = self.start_application()
            if run is not None and run.status == "failed":
                raise run.error  # type: ignore[misc]
        return dict(results)

    def dry_run_report(self) -> dict[str, Any]:
        """What :meth:`deploy` would do: allocation, bindings and commands, nothing connected."""
        commands: dict[str, list[str]] = {}
        by_node: dict[str, list[Component]] = defaultdict(list)
        for c in self.sr.instances():
            if c.node:
                by_node[c.node].append(c)
        for node_id, comps in sorted(by_node.items()):
            node = self.sr.node(node_id)
            commands[node_id] = deployer.deploy_commands(self, deployer.PlanOnly(node.host), node_id, comps)
            for c in comps:
                wrapper = self.app.wrappers.get(c.type)
                if wrapper and "start" in wrapper.methods:
                    m = wrapper.methods["start"]
                    commands[node_id].append(f"{c.srname}: {m.key}.{m.method}("
                                             + ", ".join(p.text for p in m.params) + ")")
        return {"application": self.app.name,
                "placement": {c.srname: c.node for c in self.sr.instances()},
                "bindings": self.sr.to_dict()["bindings"],
                "commands": commands}

    def _start_relays(self) -> None:
        nodes = {c.node for c in self.sr.instances() if c.node and c.state is not Lifecycle.FAILED}
        for node_id in sorted(nodes):  # type: ignore[arg-type]
            ex = self.executor(node_id)
            pipe = ex.path(posixpath.join(deployer.app_dir(self, node_id), PIPE_NAME))
            relay = PipeRelay(ex, pipe, self._post_from_pipe, on_bad_line=self._bad_pipe_line)
            try:
                relay.start()
                self._relays.append(relay)
            except TuneError as exc:
                log.warning("node %s: no event relay: %s", node_id, exc)

    def _bad_pipe_line(self, line: str, exc: Exception) -> None:
        self.bus.count("dropped_bad")

    def _post_from_pipe(self, event: Event) -> None:
        self.notify("event.received", event=str(event), source=event.source)
        self.bus.post(event)

    def start_application(self) -> Optional[DiagramRun]:
        if "start" in self.app.diagram_graphs:
            return self.run_diagram("start")
        return self._default_order("start", start_order(self.app))

    def _default_order(self, method: str, waves: list[list[str]]) -> Optional[DiagramRun]:
        """Without a diagram: call ``method`` wave by wave (dependencies first for start)."""
        d = Diagram(name=f"default-{method}")
        d.nodes["i"] = DiagramNode("i", NodeKind.INITIAL)
        prev = "i"
        from ..diagrams.actions import Call, Target
        from ..diagrams.model import Transition
        for k, wave in enumerate(waves):
            comps = [c for c in wave if method in getattr(self.app.wrappers.get(c), "methods", {})]
            if not comps:
                continue
            nid = f"w{k}"
            d.nodes[nid] = DiagramNode(nid, NodeKind.ACTION, "; ".join(f"{c}.{method}" for c in comps),
                                       [Call(Target("comp", component=c), method) for c in comps])
            d.transitions.append(Transition(prev, nid))
            prev = nid
        d.nodes["end"] = DiagramNode("end", NodeKind.FINAL)
        d.transitions.append(Transition(prev, "end"))
        return self.execute(d, ())

    # ---- running diagrams --------------------------------------------------------------------
    def run_diagram(self, event: str, *args: str) -> DiagramRun:
        """Run the diagram of ``event`` now, in this thread (no coalescing); returns its run."""
        diagram = self.app.diagram_graphs.get(event)
        if diagram is None:
            raise UsageError(f"no diagram for event {event!r}; known: {', '.join(sorted(self.app.diagram_graphs))}")
        return self.execute(diagram, tuple(args))

    def execute(self, diagram: Diagram, args: tuple[str, ...], event: Optional[Event] = None,
                compensation: bool = False) -> DiagramRun:
        run = DiagramRun(diagram, args, event=event)
        with self._lock:
            self._running[run.id] = run
        if self.journal is not None:
            self.journal.begin_run(run.id, {"diagram": diagram.name, "args": list(args), "run_id": run.id,
                                            "compensation": compensation, "on_failure": diagram.on_failure},
                                   sr=self.sr)
        self.notify("diagram.start", diagram=diagram.name, run=run.id, args=list(args))
        try:
            self.engine.run(diagram, args, event=event, run=run)
        finally:
            with self._lock:
                self._running.pop(run.id, None)
            if self.journal is not None:
                self.journal.end_run(run.id, {"diagram": diagram.name, "status": run.status,
                                              "error": str(run.error) if run.error else None}, sr=self.sr)
        self.runs.append(run)
        self.notify("diagram.end", diagram=diagram.name, run=run.id, status=run.status,
                    duration=round(run.duration * self.clock.speed, 3),
                    error=str(run.error) if run.error else None)
        if run.status == "failed":
            log.error("diagram %s failed: %s", diagram.name, run.error)
        if run.status in ("failed", "cancelled") and diagram.on_failure and not compensation:
            comp = self.app.diagram_graphs.get(diagram.on_failure)
            if comp is not None:
                self.notify("diagram.compensate", diagram=diagram.name, compensation=comp.name)
                self.execute(comp, args, event, compensation=True)
        self.save_snapshot()
        return run

    def cancel(self, run_id: int) -> bool:
        with self._lock:
            run = self._running.get(run_id)
        if run is None:
            return False
        run.cancel()
        self.notify("diagram.cancel", diagram=run.name, run=run_id)
        return True

    def cancel_all(self, wait: Optional[float] = 60.0) -> list[int]:
        """Cancel every running diagram (shutdown does); wait until they and their compensations end."""
        with self._lock:
            ids = list(self._running)
        for run_id in ids:
            self.cancel(run_id)
        deadline = time.monotonic() + (wait or 0.0)
        while wait is not None and time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    break
            time.sleep(0.01)
        return ids

    # ---- events ------------------------------------------------------------------------------
    def emit(self, name: str, *args: str, source: str = "api") -> Event:
        """Queue an event (from Python, a wrapper, the control socket); never blocks."""
        event = make_event(name, [str(a) for a in args], source)
        self.bus.start()
        self.bus.post(event)
        return event

    def _on_event(self, event: Event) -> None:
        if event.name == "stop" and event.source.startswith("pipe:"):
            # a program on a node may not stop the manager (nor run the stop diagram)
            self.bus.count("rejected")
            log.error("event %s from %s: nodes may not stop the application (ignored)", event, event.source)
            self.notify("event.rejected", event=str(event), error="stop is not accepted from a node pipe")
            return
        if event.name == "stop":
            self.bus.count("handled")
            self.request_stop()
            return
        if self._stop.is_set():
            # stopping: the stop diagram and undeployment are under way, no reconfiguration starts
            self.bus.count("rejected")
            log.info("event %s arrived while stopping (ignored)", event)
            self.notify("event.rejected", event=str(event), error="the manager is stopping")
            return
        diagram = self.app.diagram_graphs.get(event.name)
        if diagram is None and event.name == "repair":
            from .repair import default_diagram
            diagram = default_diagram()
        if diagram is None:
            self.bus.count("unknown")
            if self.bus.counters["unknown"] <= 10 or self.bus.counters["unknown"] % 1000 == 0:  # no log flood
                log.warning("event %s: no diagram for %r (ignored; %d so far)", event, event.name,
                            self.bus.counters["unknown"])
            self.notify("event.unknown", event=str(event))
            return
        if event.args and not self.sr.has_instance(event.args[0]) and _uses_arg_instance(diagram):
            self.bus.count("rejected")
            log.error("event %s: no instance named %r", event, event.args[0][:80])
            self.notify("event.rejected", event=str(event), error=f"no instance {event.args[0][:80]!r}")
            return
        key = event.args[0] if event.args else event.name
        with self._keys_lock:
            if key in self._active_keys:
                if self.event_policy == COALESCE:
                    self.bus.count("coalesced")
                    self.notify("event.coalesced", event=str(event))
                    return
                self._pending[key].append(event)
                self.bus.count("queued")
                return
            self._active_keys.add(key)
        for inst in event.args[:1]:
            if self.sr.has_instance(inst):
                self.sr.instance(inst).last_event = event.name
        self.notify("event.dispatch", event=str(event), diagram=diagram.name,
                    latency_ms=round((time.monotonic() - event.received_at) * 1000, 3))
        self.diagrams.submit(self._run_event, event, diagram, key)

    def _run_event(self, event: Event, diagram: Diagram, key: str) -> None:
        try:
            self.execute(diagram, event.args, event)
            self.bus.count("handled")
        except Exception:  # noqa: BLE001
            self.bus.count("handler_errors")
            log.exception("diagram %s crashed on %s", diagram.name, event)
        finally:
            with self._keys_lock:
                nxt = self._pending[key].popleft() if self._pending.get(key) else None
                if nxt is None:
                    self._active_keys.discard(key)
                    self._pending.pop(key, None)
            if nxt is not None:
                self.diagrams.submit(self._run_event, nxt, diagram, key)

    # ---- structural changes (Comp++ / Comp--) ------------------------------------------------
    def create_instances(self, comp_type: str, count: int = 1, run: Optional[DiagramRun] = None) -> list[Component]:
        """Allocate, place, bind and deploy ``count`` new instances; all or nothing."""
        if comp_type not in self.app.components:
            raise UsageError(f"unknown component {comp_type!r}")
        created: list[Component] = []
        with self._structure:
            first = self.sr._counters.get(comp_type, 0) + 1
            intent = self.journal_write("create.intent", run=run, component=comp_type, count=count,
                                        names=[f"{comp_type}{first + k}" for k in range(count)])
            try:
                for _ in range(count):
                    comp = self._new_instance(comp_type)
                    created.append(comp)
                    self._place_in_family(comp)
                for spec in self.app.bindings:
                    if comp_type in (spec.source, spec.target) and spec.source != spec.target:
                        bind_new(self.sr, created, spec)
                self._place_beside(created)
                self._set_dirs(created)
                self.journal_write("create.placed", ref=intent, run=run,
                                   instances={c.srname: {"node": c.node, "dir": c.dir_local} for c in created})
                if self.deployed:
                    deployer.deploy(self, created)
            except Exception as exc:
                for comp in created:
                    self._forget_instance(comp.srname, undeploy=self.deployed)
                self.journal_write("create.failed", ref=intent, run=run, error=str(exc))
                raise
            self.journal_write("create.done", ref=intent, run=run, instances=[c.srname for c in created])
        for comp in created:
            self.notify("instance.created", instance=comp.srname, node=comp.node)
        return created

    def remove_instance(self, srname: str) -> None:
        """Stop (if running), unbind, undeploy and free ``srname``'s node slot."""
        comp = self.sr.instance(srname)
        wrapper = self.app.wrappers.get(comp.type)
        intent = self.journal_write("remove.intent", instance=srname, node=comp.node, dir=comp.dir_local,
                                    state=comp.state.value)
        try:
            if comp.state in (Lifecycle.STARTED, Lifecycle.STARTING) and wrapper and "stop" in wrapper.methods:
                self.runner.call(srname, "stop")
            with self._structure:
                self._forget_instance(srname, undeploy=self.deployed)
        except Exception as exc:
            self.journal_write("remove.failed", ref=intent, instance=srname, error=str(exc))
            raise
        self.journal_write("remove.done", ref=intent, instance=srname)
        self.notify("instance.removed", instance=srname)

    def _forget_instance(self, srname: str, *, undeploy: bool) -> None:
        if not self.sr.has_instance(srname):
            return
        comp = self.sr.instance(srname)
        if undeploy and comp.node is not None and self.sr.node(comp.node).state == "down":
            self.health.note_leftover(comp)  # cleaned when the node answers again
        elif undeploy:
            try:
                deployer.undeploy_instance(self, comp)
            except TuneError as exc:
                log.warning("%s: undeploy failed: %s", srname, exc)
        self.sr.remove_instance(srname)
        self.runner.forget(srname)

    # ---- placement policy for migrations -----------------------------------------------------
    def choose_destination(self, srname: str, exclude: Optional[list[str]] = None) -> Optional[str]:
        """The node of the same family the placement policy picks for ``srname`` (or None).

        Nodes in ``exclude`` and those a migration of ``srname`` failed to in the last minute are
        never picked.
        """
        from ..policies.base import HostLoad, VMLoad
        from ..policies.placement import choose_destination

        comp = self.sr.instance(srname)
        if comp.node is None:
            return None
        family = self.sr.node(comp.node).family
        hosts: list[HostLoad] = []
        me: Optional[VMLoad] = None
        for node in self.sr.nodes(family):
            if node.state != "up":
                continue
            try:
                drv = self.driver(node.id)
                info = drv.info()
                domains = drv.list()
            except TuneError as exc:
                log.warning("placement: skipping %s: %s", node.id, exc)
                continue
            vms = [VMLoad(d.name, d.memory_mb, d.cpu_percent or 0.0) for d in domains]
            for v in vms:
                if v.name == srname:
                    me = v
            full = self.sr.free_slots(node.id) <= 0 and node.id != comp.node
            hosts.append(HostLoad(node.id, 100.0 * info.cpus, info.memory_mb, vms, active=not full))
        if me is None:
            me = VMLoad(srname, float(comp.attributes.get("memory", 0) or 0), 0.0)
        now = time.monotonic()
        recent = [d for d, t in self._failed_destinations.get(srname, {}).items() if now - t < 60.0]
        return choose_destination(me, hosts, exclude=[comp.node, *(exclude or ()), *recent])

    def relocate(self, srname: str, node_id: str) -> None:
        with self._structure:
            comp = self.sr.instance(srname)
            source = comp.node
            self.sr.place(srname, node_id, uses_slot=comp.uses_slot)
            comp.dir_local = deployer.instance_dir(self, comp)
            self.journal_write("relocate", instance=srname, source=source, node=node_id)
        self.notify("instance.moved", instance=srname, node=node_id)

    def record_migration(self, report: MigrationReport) -> None:
        if self.journal is not None:
            self.journal_write("migrate.done" if report.ok else "migrate.failed",
                               ref=self._migration_intents.pop(report.domain, None), vm=report.domain,
                               source=report.source, destination=report.destination, status=report.status,
                               message=report.message)
        self.migrations.append(report)
        self.notify("migration.end", **report.to_dict())
        if report.status != "completed" and report.destination:
            self._failed_destinations.setdefault(report.domain, {})[report.destination] = time.monotonic()

    # ---- serving and stopping ----------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def serve(self, duration: Optional[float] = None) -> None:
        """Handle events until :meth:`request_stop` (or ``duration`` seconds of the manager's clock)."""
        self.bus.start()
        self.clock.wait(self._stop, duration)

    def shutdown(self) -> None:
        """Run ``stop``, undeploy every instance, clean the nodes, release connections."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        self._stop.set()
        self.health.stop()
        try:
            if self.deployed:
                self.notify("undeploy.start")
                self.bus.drain(5.0)
                self.cancel_all()
                undeploy = self.journal_write("undeploy.begin")
                if "stop" in self.app.diagram_graphs:
                    self.run_diagram("stop")
                else:
                    self._default_order("stop", list(reversed(start_order(self.app))))
                for relay in self._relays:
                    relay.stop()
                nodes = {c.node for c in self.sr.instances() if c.node and self.sr.node(c.node).state == "up"}
                results = deployer.clean_nodes(self, nodes)  # type: ignore[arg-type]
                for node_id, res in results.items():
                    if isinstance(res, BaseException):
                        log.warning("node %s: cleaning failed: %s", node_id, res)
                self.notify("undeploy.done", nodes=len(nodes))
                self.deployed = False
                self.journal_write("undeploy.end", ref=undeploy)
                self.save_snapshot()
            else:
                self.cancel_all()
                self.journal_write("undeploy.end", status="nothing deployed")
        finally:
            if self.journal is not None:
                self.journal.close()
            self.bus.stop()
            if self._control is not None:
                self._control.stop()
            self.diagrams.shutdown(wait=True)
            self.engine.close()
            self.runner.close()
            for closer in list(self._drivers.values()) + list(self._executors.values()):
                try:
                    closer.close()
                except Exception:  # noqa: BLE001
                    pass

    # ---- reports -------------------------------------------------------------------------------
    def save_snapshot(self) -> None:
        if self.dry_run or not os.path.isdir(self.state_dir):
            return
        path = os.path.join(self.state_dir, "sr.json")
        version = self.sr.version
        if getattr(self, "_saved_version", None) == version and os.path.exists(path):
            return  # unchanged since the last snapshot: not rewritten after every diagram run
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".sr-")
        with os.fdopen(fd, "w") as fh:
            fh.write(self.sr.to_json())
        os.replace(tmp, path)
        self._saved_version = version

    def cpu_of(self, comp: Component, cache: dict[str, dict[str, Any]]) -> Optional[float]:
        if comp.node is None or not self.sr.node(comp.node).driver or self.sr.node(comp.node).state != "up":
            return None
        if comp.node not in cache:
            try:
                cache[comp.node] = {d.name: d.cpu_percent for d in self.driver(comp.node).list()}
            except TuneError:
                cache[comp.node] = {}
        return cache[comp.node].get(comp.srname)

    def status(self) -> dict[str, Any]:
        cache: dict[str, dict[str, Any]] = {}
        instances = []
        for c in self.sr.instances():
            d = c.to_dict()
            d["cpu"] = self.cpu_of(c, cache)
            instances.append(d)
        return {"application": self.app.name, "clock": self.clock.describe(), "time": round(self.clock.now(), 3),
                "deployed": self.deployed, "instances": instances,
                "nodes": [n.to_dict() for n in self.sr.nodes()],
                "events": dict(self.bus.counters),
                "running": [r.summary() for r in list(self._running.values())],
                "recent": [r.summary() for r in list(self.runs)[-10:]],
                "migrations": [m.to_dict() for m in self.migrations[-20:]],
                "health": self.health.status()}

    def handle_request(self, req: dict[str, Any]) -> dict[str, Any]:
        """The control socket's requests (``tune event``, ``status``, ``undeploy``, ``cancel``)."""
        op = req.get("op")
        if op == "event":
            if not isinstance(req.get("args", []), list):
                self.bus.count("dropped_bad")
                return {"ok": False, "error": "args must be a list of strings"}
            try:
                ev = self.emit(str(req.get("name", "")), *[str(a) for a in req.get("args", [])],
                               source="socket")
            except EventError as exc:
                self.bus.count("dropped_bad")
                return {"ok": False, "error": exc.message}
            return {"ok": True, "id": ev.id}
        if op == "status":
            return {"ok": True, "status": self.status()}
        if op == "sr":
            return {"ok": True, "sr": self.sr.to_dict()}
        if op == "timeline":
            since = float(req.get("since", 0))
            return {"ok": True, "timeline": [e.to_dict() for e in list(self.timeline) if e.time > since]}
        if op == "stop":
            self.request_stop()
            return {"ok": True}
        if op == "cancel":
            return {"ok": True, "cancelled": self.cancel(int(req.get("run", 0)))}
        return {"ok": False, "error": f"unknown request {str(op)[:40]!r}"}


def _uses_arg_instance(diagram: Diagram) -> bool:
    from ..diagrams.actions import Assign, Call, Remove
    for node in diagram.nodes.values():
        for a in node.actions:
            if isinstance(a, (Call, Remove, Assign)) and a.target.base == "arg":
                return True
    for t in diagram.transitions:
        stack = [t.guard] if t.guard is not None else []
        while stack:
            g = stack.pop()
            stack.extend(g.children)
            if g.kind == "var" and g.value.root == "arg" and g.value.path:
                return True  # a guard reads an attribute of the event's instance
    return False
