"""Helpers for the engine tests: a recording ActionRunner and a tiny diagram builder.

(No tests here; the module is imported by ``test_engine.py`` and ``test_engine_props.py``.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from tune.adl.model import Source
from tune.diagrams.engine import DiagramRun, Engine
from tune.diagrams.guards import Guard, evaluate_guard
from tune.diagrams.model import Diagram, DiagramNode, NodeKind
from tune.diagrams.rdl import make_action_node, make_transition
from tune.errors import CommandFailed, ExpressionError


@dataclass
class Call:
    """One call of ``run_node``, timed by the runner itself."""

    node: str
    start: float
    end: float = 0.0
    thread: str = ""
    failed: bool = False


class RecordingRunner:
    """An ActionRunner that records when each node ran, sleeps, fails on demand.

    ``sleep``: seconds per node (a number for all, or a mapping node → seconds).
    ``fail``: node ids whose run raises (after sleeping) ``error`` (a CommandFailed by default).
    ``values``: what guards see: ``Comp.attr`` / ``Comp.count`` by ``"Comp.attr"``, ``$arg.x`` by ``"$arg.x"``.
    ``on_start``: called with (node id, run) when a node starts, before sleeping.
    """

    def __init__(self, *, sleep: Union[float, Mapping[str, float]] = 0.0, fail: Iterable[str] = (),
                 values: Optional[Mapping[str, Any]] = None, error: Optional[Callable[[str], BaseException]] = None,
                 on_start: Optional[Callable[[str, DiagramRun], None]] = None) -> None:
        self.sleep = sleep
        self.fail = set(fail)
        self.values = dict(values or {})
        self.error = error or (lambda nid: CommandFailed(f"{nid} broke", host="h1", command=f"do {nid}"))
        self.on_start = on_start
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.guards: list[str] = []

    # --- the ActionRunner protocol ---
    def run_node(self, node: DiagramNode, run: DiagramRun) -> None:
        call = Call(node.id, time.monotonic(), thread=threading.current_thread().name)
        with self.lock:
            self.calls.append(call)
        try:
            if self.on_start is not None:
                self.on_start(node.id, run)
            delay = self.sleep if isinstance(self.sleep, (int, float)) else self.sleep.get(node.id, 0.0)
            if delay:
                time.sleep(delay)
            if node.id in self.fail:
                call.failed = True
                raise self.error(node.id)
        finally:
            call.end = time.monotonic()

    def evaluate(self, guard: Guard, run: DiagramRun) -> bool:
        with self.lock:
            self.guards.append(str(guard))

        def lookup(g: Guard) -> Any:
            key = str(g.value) if g.kind == "var" else ".".join(g.value)
            if key not in self.values:
                raise ExpressionError(f"unknown {key}")
            return self.values[key]

        return evaluate_guard(guard, lookup)

    # --- what happened ---
    def ran(self) -> list[str]:
        return [c.node for c in self.calls]

    def call(self, node: str) -> Call:
        found = [c for c in self.calls if c.node == node]
        assert len(found) == 1, f"{node} ran {len(found)} times"
        return found[0]


KINDS = {k.value: k for k in NodeKind}


def diagram(name: str, nodes: str, edges: Iterable[Union[tuple[str, str], tuple[str, str, str]]]) -> Diagram:
    """Build a diagram from ``"i:initial a:action f:fork j:join c:choice end:final"`` and edges.

    An action node's text is ``T.<id>`` (a call, so it parses).  An edge is (from, to) or
    (from, to, guard text).
    """
    d = Diagram(name=name)
    for spec in nodes.split():
        nid, kind = spec.split(":")
        if kind == "action":
            d.nodes[nid] = make_action_node(nid, f"T.{nid}", Source())
        else:
            d.nodes[nid] = DiagramNode(nid, KINDS[kind])
    for e in edges:
        d.transitions.append(make_transition(e[0], e[1], e[2] if len(e) > 2 else None, Source()))  # type: ignore[misc]
    return d


def run_diagram(d: Diagram, runner: RecordingRunner, args: tuple[str, ...] = ()) -> DiagramRun:
    engine = Engine(runner)
    try:
        return engine.run(d, args)
    finally:
        engine.close()


def statuses(run: DiagramRun, kind: str = "action") -> dict[str, str]:
    """node → status for the trace entries of ``kind``; fails if a node was recorded twice."""
    out: dict[str, str] = {}
    for t in run.trace:
        if t.kind == kind:
            assert t.node not in out, f"{t.node} recorded twice: {run.trace}"
            out[t.node] = t.status
    return out


def traced(run: DiagramRun, node: str) -> Any:
    found = [t for t in run.trace if t.node == node]
    assert len(found) == 1, found
    return found[0]


def ended_before(runner: RecordingRunner, a: str, b: str) -> bool:
    """``a`` ended before ``b`` started (by the runner's own clock readings)."""
    return runner.call(a).end <= runner.call(b).start
