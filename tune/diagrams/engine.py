"""The workflow engine: runs a reconfiguration diagram with real fork/join concurrency.

Semantics (token based, over our own graph; transitions' parallel states are not used):

* an **action** node runs its actions in order; the node ends when they all have;
* a **fork** starts all its branches at once; a **join** continues once a token arrived on
  each of its incoming transitions; when nothing is running any more and a join still waits
  for branches that ended elsewhere (at a final), it is released;
* a **choice** takes the first outgoing transition whose guard is true, ``else`` last;
* a **final** ends its branch; the diagram ends when no branch runs.

A failing action stops the diagram: the run is cancelled the moment the action fails (in the
worker thread, so no sibling starts in the meantime); actions not yet started are skipped
(recorded as such) and never run; running ones finish; the run reports the diagram, node,
instance and cause.  The decision to start an action and the cancellation are both taken under
the run's lock, so an action's recorded ``started`` time is always earlier than the recorded
end of the failure that stopped the run.  What to do
about it (an ``on-failure`` compensation diagram) is the caller's decision.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import networkx as nx

from ..errors import ActionError, DiagramCancelled, TuneError
from .guards import Guard
from .model import Diagram, DiagramNode, NodeKind

log = logging.getLogger(__name__)
_run_ids = itertools.count(1)


class ActionRunner(Protocol):
    """What the engine needs from the manager: run one action node, evaluate one guard."""

    def run_node(self, node: DiagramNode, run: "DiagramRun") -> None: ...

    def evaluate(self, guard: Guard, run: "DiagramRun") -> bool: ...


@dataclass
class NodeTrace:
    node: str
    kind: str
    status: str  # done | failed | skipped | chosen
    started: float = 0.0
    ended: float = 0.0
    detail: str = ""


@dataclass
class DiagramRun:
    """One execution of a diagram: its arguments, what it created, what happened."""

    diagram: Diagram
    args: tuple[str, ...] = ()
    id: int = field(default_factory=lambda: next(_run_ids))
    event: Any = None
    new: list[Any] = field(default_factory=list)
    status: str = "pending"  # pending | running | completed | failed | cancelled
    error: Optional[ActionError] = None
    trace: list[NodeTrace] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0
    cancel_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.diagram.name

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel(self) -> None:
        """Ask the run to stop: nothing new starts; running actions finish."""
        with self.lock:
            self.cancel_event.set()

    def fail(self, error: ActionError) -> None:
        """Record ``error`` (the first one wins) and cancel the run."""
        with self.lock:
            if self.error is None:
                self.error = error
            self.cancel_event.set()

    def begin(self, t: "NodeTrace") -> bool:
        """Atomically: unless cancelled, mark ``t`` started now.  False when it must be skipped."""
        with self.lock:
            t.started = time.monotonic()
            if self.cancel_event.is_set():
                t.status = "skipped"
                return False
            return True

    def record(self, t: NodeTrace) -> None:
        with self.lock:
            self.trace.append(t)

    @property
    def duration(self) -> float:
        return max(0.0, (self.ended_at or time.monotonic()) - self.started_at)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "diagram": self.name, "args": list(self.args), "status": self.status,
                "duration": round(self.duration, 4),
                "error": str(self.error) if self.error else None,
                "nodes": [{"node": t.node, "status": t.status, "duration": round(t.ended - t.started, 4),
                           "detail": t.detail} for t in self.trace if t.kind == "action"]}


class Engine:
    """Runs diagrams; one instance serves many concurrent runs."""

    def __init__(self, runner: ActionRunner, *, max_workers: int = 64) -> None:
        self.runner = runner
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tune-node")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _execute(self, node: DiagramNode, run: DiagramRun) -> None:
        t = NodeTrace(node.id, "action", "done")
        try:
            if not run.begin(t):
                return
            self.runner.run_node(node, run)
        except Exception as exc:  # noqa: BLE001 - a wrapper bug is a failed action, not a crash
            err = _as_action_error(exc, run, node.id)
            t.status, t.detail = "failed", str(err)
            run.fail(err)  # now, in this thread: nothing else starts from here on
            if err is exc:
                raise
            raise err from exc
        finally:
            t.ended = time.monotonic()
            run.record(t)

    def _choose(self, node: DiagramNode, run: DiagramRun) -> str:
        d = run.diagram
        outs = d.outgoing(node.id)
        fallback = None
        for tr in outs:
            if tr.is_else:
                fallback = tr.target
                continue
            if tr.guard is None:
                continue
            try:
                chosen = self.runner.evaluate(tr.guard, run)
            except Exception as exc:  # noqa: BLE001 - a lookup bug fails the run, never the caller
                why = exc.message if isinstance(exc, TuneError) else f"{type(exc).__name__}: {exc}"
                raise ActionError(f"guard [{tr.guard_text}]: {why}", diagram=run.name, node=node.id,
                                  cause=exc) from exc
            if chosen:
                now = time.monotonic()
                run.record(NodeTrace(node.id, "choice", "chosen", now, now, f"[{tr.guard_text}] -> {tr.target}"))
                return tr.target
        if fallback is None:
            raise ActionError("no guard is true and there is no 'else'", diagram=run.name, node=node.id)
        run.record(NodeTrace(node.id, "choice", "chosen", time.monotonic(), time.monotonic(), f"[else] -> {fallback}"))
        return fallback

    def run(self, diagram: Diagram, args: tuple[str, ...] | list[str] = (), *, event: Any = None,
            run: Optional[DiagramRun] = None, on_node: Optional[Callable[[str, str], None]] = None) -> DiagramRun:
        """Run ``diagram`` to its end in the calling thread; returns the run (never raises for failures)."""
        run = run or DiagramRun(diagram, tuple(args), event=event)
        run.status = "running"
        run.started_at = time.monotonic()
        d = diagram
        initial = d.initial
        if initial is None:
            run.status, run.ended_at = "failed", time.monotonic()
            run.error = ActionError("no initial node", diagram=d.name)
            return run
        successors = {nid: [t.target for t in d.outgoing(nid)] for nid in d.nodes}
        join_needs = {nid: len(d.incoming(nid)) for nid, n in d.nodes.items() if n.kind is NodeKind.JOIN}
        join_have: Counter[str] = Counter()
        ready: deque[str] = deque([initial.id])
        running: dict[Future[None], str] = {}
        order = {nid: i for i, nid in enumerate(d.nodes)}
        downstream: dict[str, set[str]] = {}

        fail = run.fail

        while True:
            to_start: list[DiagramNode] = []
            while ready:
                nid = ready.popleft()
                node = d.nodes[nid]
                kind = node.kind
                if kind in (NodeKind.INITIAL, NodeKind.FORK):
                    ready.extend(successors[nid])
                elif kind is NodeKind.JOIN:
                    join_have[nid] += 1
                    if join_have[nid] >= join_needs[nid]:
                        del join_have[nid]
                        ready.extend(successors[nid])
                elif kind is NodeKind.CHOICE:
                    if run.cancelled:
                        run.record(NodeTrace(nid, "choice", "skipped"))
                        continue
                    try:
                        ready.append(self._choose(node, run))
                    except ActionError as exc:
                        fail(exc)
                elif kind is NodeKind.FINAL:
                    run.record(NodeTrace(nid, "final", "done", time.monotonic(), time.monotonic()))
                elif kind is NodeKind.ACTION:
                    if run.cancelled:
                        run.record(NodeTrace(nid, "action", "skipped", time.monotonic(), time.monotonic()))
                    else:
                        to_start.append(node)
            if len(to_start) == 1 and not running:
                # one branch only: run it here, saving a thread hand-off (reaction latency)
                node = to_start[0]
                if on_node:
                    on_node(node.id, "start")
                try:
                    self._execute(node, run)
                    if not run.cancelled:
                        ready.extend(successors[node.id])
                except ActionError as exc:
                    fail(exc)
                continue
            for node in to_start:
                if on_node:
                    on_node(node.id, "start")
                running[self.pool.submit(self._execute, node, run)] = node.id
            if not running:
                if ready:
                    continue
                if join_have and not run.cancelled:
                    # quiescent with joins still waiting: their other branches ended at a final
                    nid = _join_to_release(d, join_have, order, downstream)
                    del join_have[nid]
                    ready.extend(successors[nid])
                    continue
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                nid = running.pop(fut)
                problem = fut.exception()
                if problem is not None:
                    fail(_as_action_error(problem, run, nid))
                elif not run.cancelled:
                    ready.extend(successors[nid])
        run.ended_at = time.monotonic()
        if run.cancelled:
            seen = {t.node for t in run.trace}
            for nid, n in d.nodes.items():
                if n.kind is NodeKind.ACTION and nid not in seen:
                    run.record(NodeTrace(nid, "action", "skipped", run.ended_at, run.ended_at, "not run"))
        if run.error is not None:
            run.status = "failed"
        elif run.cancelled:
            run.status = "cancelled"
            run.error = None
        else:
            run.status = "completed"
        return run


def _join_to_release(d: Diagram, waiting: Counter[str], order: dict[str, int],
                     downstream: dict[str, set[str]]) -> str:
    """Which waiting join to release when nothing runs any more: one that no other waiting join
    leads to (the innermost first), so an outer join does not go on before the inner branch has
    reached it -- and then fire a second time when it does."""
    if len(waiting) > 1:
        graph = None
        for j in waiting:
            if j not in downstream:
                graph = graph if graph is not None else d.graph()
                downstream[j] = nx.descendants(graph, j)
        upstream = [j for j in waiting if not any(j in downstream[o] for o in waiting if o != j)]
        if upstream:
            return min(upstream, key=order.__getitem__)
    return min(waiting, key=order.__getitem__)


def _as_action_error(exc: BaseException, run: DiagramRun, node_id: str) -> ActionError:
    """``exc`` as an ActionError that names the diagram and the node."""
    if isinstance(exc, ActionError):
        if exc.diagram and exc.node:
            return exc
        msg = exc.message
        if msg.startswith("[") and "] " in msg:
            msg = msg.split("] ", 1)[1]
        return ActionError(msg, diagram=exc.diagram or run.name, node=exc.node or node_id,
                           instance=exc.instance, cause=exc.cause or exc)
    if isinstance(exc, TuneError):
        return ActionError(exc.message, diagram=run.name, node=node_id, cause=exc)
    return ActionError(f"{type(exc).__name__}: {exc}", diagram=run.name, node=node_id, cause=exc)


def raise_for_status(run: DiagramRun) -> DiagramRun:
    if run.status == "failed" and run.error is not None:
        raise run.error
    if run.status == "cancelled":
        raise DiagramCancelled(f"diagram {run.name} (run {run.id}) was cancelled")
    return run
