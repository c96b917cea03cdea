"""Heartbeats: a lost node is noticed, marked down, its instances failed and a repair asked for.

A :class:`HealthMonitor` checks every watched node with :meth:`Executor.alive` (for SSH one
``true`` on a new channel of the pooled transport: no new connection while the node answers).
A node that has not answered for ``timeout`` seconds (default 5) is *lost*:

1. it is marked ``down`` in the System Representation (allocation and placement skip it);
2. every instance placed on it is marked ``failed`` ("node ... lost");
3. one ``repair INSTANCE NODE`` event per lost instance is posted; the application's ``repair``
   diagram handles it, or :mod:`tune.manager.repair`'s default (redeploy elsewhere).

Watched nodes keep being checked while down.  When one answers again it is marked ``up`` and
what its lost instances left there (their folders, a domain of the same name) is removed, so
nothing is counted twice.

Which nodes are watched: those whose family sets ``heartbeat-timeout`` (or ``heartbeat``;
``0`` or ``off`` disables), else every node when the manager was given ``heartbeat=``, else the
SSH nodes with the default 5 s (local and simulated nodes cannot be lost).  A lost node is
declared between ``timeout`` and ``timeout + period`` seconds after its last answer, where
``period = min(1, timeout / 4)`` is the time between two heartbeats of a node (a heartbeat to a
node that is up is given until the node's time is up, so a silent link is not waited for longer).
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..components.component import Lifecycle
from ..errors import TuneError

if TYPE_CHECKING:  # pragma: no cover
    from ..components.component import Component, Node
    from .manager import Manager

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
_OFF = ("0", "off", "no", "false", "none")


@dataclass
class NodeHealth:
    """What the monitor knows of one node."""

    timeout: float
    last_ok: float
    checking: bool = False
    next_check: float = 0.0
    checks: int = 0
    failures: int = 0
    lost_at: Optional[float] = None
    recovered_at: Optional[float] = None

    @property
    def period(self) -> float:
        return min(1.0, self.timeout / 4)


@dataclass
class Leftover:
    """What a removed instance may have left on a node that was down when it was removed."""

    srname: str
    dir_local: str
    driver: bool = False


@dataclass
class HealthMonitor:
    manager: "Manager"
    timeout: Optional[float] = None
    nodes: dict[str, NodeHealth] = field(default_factory=dict)
    leftovers: dict[str, list[Leftover]] = field(default_factory=dict)
    previous_states: dict[str, Lifecycle] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pool: Optional[ThreadPoolExecutor] = None

    # ---- configuration ---------------------------------------------------------------------
    def timeout_of(self, node: "Node") -> Optional[float]:
        """The heartbeat timeout of ``node`` in seconds, or None when it is not watched."""
        raw = node.attributes.get("heartbeat-timeout", node.attributes.get("heartbeat"))
        if raw is not None:
            if str(raw).strip().lower() in _OFF:
                return None
            try:
                value = float(raw)
            except ValueError:
                log.warning("node %s: bad heartbeat timeout %r; using %g s", node.id, raw, DEFAULT_TIMEOUT)
                return DEFAULT_TIMEOUT
            return value if value > 0 else None
        if self.timeout is not None:
            return self.timeout if self.timeout > 0 else None
        return DEFAULT_TIMEOUT if node.protocol == "ssh" else None

    # ---- running ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        now = time.monotonic()
        for node in self.manager.sr.nodes():
            t = self.timeout_of(node)
            if t is not None:
                self.nodes[node.id] = NodeHealth(timeout=t, last_ok=now, next_check=now)
        if not self.nodes:
            return
        self._pool = ThreadPoolExecutor(max_workers=min(32, len(self.nodes)), thread_name_prefix="tune-heartbeat")
        self._thread = threading.Thread(target=self._loop, name="tune-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _loop(self) -> None:
        tick = max(0.02, min(h.period for h in self.nodes.values()) / 4)
        while not self._stop.wait(tick):
            now = time.monotonic()
            for node_id, h in self.nodes.items():
                with self._lock:
                    if h.checking or now < h.next_check:
                        continue
                    h.checking = True
                    h.next_check = now + h.period
                try:
                    assert self._pool is not None
                    self._pool.submit(self._check, node_id)
                except RuntimeError:  # shutting down
                    return

    def _check(self, node_id: str) -> None:
        """One heartbeat and what follows from it; the next heartbeat of the node waits for both
        (a node coming back is cleaned once, by one thread)."""
        try:
            self._check_once(node_id)
        finally:
            h = self.nodes[node_id]
            with self._lock:
                h.checking = False

    def _check_once(self, node_id: str) -> None:
        h = self.nodes[node_id]
        if self.manager.sr.node(node_id).state == "up":
            # the check ends when the node's time is up, so a lost node is declared on time
            budget = min(h.timeout, max(h.period, h.last_ok + h.timeout - time.monotonic()))
        else:
            budget = max(h.timeout, 10.0)  # a node coming back may need a slow handshake (loaded manager)
        try:
            ok = self.manager.executor(node_id).alive(timeout=budget)
        except Exception:  # noqa: BLE001 - a broken executor is a dead node, not a dead monitor
            ok = False
        if self._stop.is_set():
            return
        now = time.monotonic()
        lost = recovered = False
        with self._lock:
            h.checks += 1
            state = self.manager.sr.node(node_id).state
            if ok:
                h.last_ok = now
                recovered = state == "down"
            else:
                h.failures += 1
                lost = state == "up" and now - h.last_ok >= h.timeout * 0.98
        try:
            if lost:
                self.node_lost(node_id, silent_for=now - h.last_ok)
            elif recovered:
                self.node_back(node_id)
        except Exception:  # noqa: BLE001 - the monitor survives any handling bug
            log.exception("heartbeat handling of %s failed", node_id)

    # ---- a node lost ---------------------------------------------------------------------------
    def node_lost(self, node_id: str, silent_for: float = 0.0) -> list[str]:
        """Mark ``node_id`` down, fail its instances, ask for their repair; returns them."""
        m = self.manager
        sr = m.sr
        with sr.lock:
            if sr.node(node_id).state == "down":
                return []
            sr.set_node_state(node_id, "down")
            lost = sr.instances_on(node_id)
            for c in lost:
                self.previous_states[c.srname] = c.state
                sr.set_state(c.srname, Lifecycle.FAILED, error=f"node {node_id} lost")
        h = self.nodes.get(node_id)
        if h is not None:
            h.lost_at = time.monotonic()
        names = [c.srname for c in lost]
        log.warning("node %s lost (no answer for %.1f s); failed: %s", node_id, silent_for, ", ".join(names) or "-")
        m.notify("node.down", node=node_id, instances=names, silent_for=round(silent_for, 3))
        self._stop_relay(node_id)
        m.save_snapshot()
        for name in names:
            try:
                m.emit("repair", name, node_id, source="health")
            except TuneError as exc:  # pragma: no cover - names are ours
                log.error("cannot ask for the repair of %s: %s", name, exc)
        return names

    def _stop_relay(self, node_id: str) -> None:
        """The relay of a lost node reads a dead stream: stop it without waiting for it."""
        ex = self.manager.executor(node_id)
        relays = [r for r in list(self.manager._relays) if r.executor is ex]
        for r in relays:
            self.manager._relays.remove(r)
            threading.Thread(target=r.stop, name=f"tune-relay-stop-{node_id}", daemon=True).start()

    # ---- leftovers and a node back -------------------------------------------------------------
    def note_leftover(self, comp: "Component") -> None:
        """``comp`` was removed while its node was down: clean its remains when the node is back."""
        if comp.node is None:
            return
        has_driver = bool(self.manager.sr.node(comp.node).driver)
        with self._lock:
            self.leftovers.setdefault(comp.node, []).append(Leftover(comp.srname, comp.dir_local, has_driver))
        self.previous_states.pop(comp.srname, None)

    def node_back(self, node_id: str) -> None:
        """``node_id`` answers again: mark it up, remove what its lost instances left there."""
        m = self.manager
        with self._lock:
            leftovers = self.leftovers.pop(node_id, [])
        cleaned, kept = self.clean(node_id, leftovers)
        if kept:
            with self._lock:
                self.leftovers.setdefault(node_id, []).extend(kept)
            log.warning("node %s: back, but %d leftover(s) not cleaned yet", node_id, len(kept))
            return  # stays down until its leftovers are gone: nothing is ever counted twice
        m.sr.set_node_state(node_id, "up")
        h = self.nodes.get(node_id)
        if h is not None:
            h.recovered_at = time.monotonic()
        log.warning("node %s is back; cleaned %s", node_id, ", ".join(cleaned) or "nothing")
        m.notify("node.up", node=node_id, cleaned=cleaned)
        self._restart_relay(node_id)
        m.save_snapshot()

    def clean(self, node_id: str, leftovers: list[Leftover]) -> tuple[list[str], list[Leftover]]:
        m = self.manager
        ex = m.executor(node_id)
        cleaned, kept = [], []
        for lo in leftovers:
            try:
                if lo.driver:
                    drv = m.driver(node_id)
                    exists = getattr(drv, "exists", None)
                    if exists is None or exists(lo.srname):
                        drv.destroy(lo.srname)
                if lo.dir_local:
                    ex.run(["rm", "-rf", "--", ex.path(lo.dir_local)], timeout=30)
                cleaned.append(lo.srname)
            except TuneError as exc:
                if type(exc).__name__ == "DomainNotFound":
                    cleaned.append(lo.srname)
                    continue
                log.warning("node %s: cannot clean %s yet: %s", node_id, lo.srname, exc)
                kept.append(lo)
        return cleaned, kept

    def _restart_relay(self, node_id: str) -> None:
        from ..events.pipe import PIPE_NAME, PipeRelay, create_pipe_command
        from . import deployer

        m = self.manager
        if not m.deployed or m.stopping:
            return
        ex = m.executor(node_id)
        if any(r.executor is ex for r in m._relays):
            return
        base = ex.path(deployer.app_dir(m, node_id))
        pipe = posixpath.join(base, PIPE_NAME)
        relay = PipeRelay(ex, pipe, m._post_from_pipe)
        try:
            ex.run(["mkdir", "-p", "-m", "0750", base], timeout=30)
            ex.run(create_pipe_command(pipe), timeout=30)
            relay.start()
            m._relays.append(relay)
        except TuneError as exc:
            log.warning("node %s: no event relay after recovery: %s", node_id, exc)

    # ---- reports -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {node_id: {"timeout": h.timeout, "silent_for": round(now - h.last_ok, 3), "checks": h.checks,
                          "failures": h.failures, "state": self.manager.sr.node(node_id).state}
                for node_id, h in self.nodes.items()}
