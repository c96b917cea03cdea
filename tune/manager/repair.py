"""The default ``repair`` diagram: redeploy the instances of a lost node on the other nodes.

When a node is lost (:mod:`tune.manager.health`) every instance on it is failed and a
``repair INSTANCE NODE`` event is posted.  An application may handle it with its own ``repair``
diagram; without one the manager runs :func:`default_diagram`, whose one action
(:class:`RepairLost`) does, for every failed instance still placed on the lost node:

1. create a replacement of the same type through the manager's create machinery (next name,
   node allocation on the family's *up* nodes, components without a family beside their
   partner), bound to the same partners (a lost partner is replaced by its replacement);
2. deploy the replacements (folders, legacy archive, pipe) and start those whose predecessor
   was started, in dependency order;
3. remove the lost instances from the SR (their wrapper objects are told to ``stop`` in the
   background, best effort, so that a probe's sampling thread ends); their remains on the dead
   node are noted and cleaned when it answers again.

All or nothing: if no node has room or the deployment fails, the replacements are removed and
the lost instances stay in the SR, failed, for a later repair.  Repairs of the same node are
serialised; a repair that finds nothing left to do (its instance was replaced together with a
partner) is a no-op.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Optional

from ..adl.graph import start_order
from ..components.component import Component, Lifecycle
from ..diagrams.engine import DiagramRun
from ..diagrams.model import Diagram, DiagramNode, NodeKind, Transition
from ..errors import ActionError, TuneError
from ..wdl.expr import Scope, evaluate
from .context import SRResolver
from . import deployer

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager
    from .runner import ActionRunner

log = logging.getLogger(__name__)

EVENT = "repair"


class RepairLost:
    """The default repair diagram's action (built in, never parsed from a file)."""

    text = "redeploy the lost instances"

    def __str__(self) -> str:
        return self.text

    def perform(self, runner: "ActionRunner", run: DiagramRun, node: DiagramNode) -> None:
        repair(runner.m, run.args, run=run, diagram_node=node.id)


def default_diagram() -> Diagram:
    """``initial → redeploy → final``, named ``repair`` (shown as ``default-repair``)."""
    d = Diagram(name="default-repair")
    d.nodes["i"] = DiagramNode("i", NodeKind.INITIAL)
    d.nodes["redeploy"] = DiagramNode("redeploy", NodeKind.ACTION, RepairLost.text, [RepairLost()])  # type: ignore[list-item]
    d.nodes["end"] = DiagramNode("end", NodeKind.FINAL)
    d.transitions += [Transition("i", "redeploy"), Transition("redeploy", "end")]
    return d


def lost_instances(m: "Manager", args: tuple[str, ...]) -> list[Component]:
    """Failed instances on the down nodes named by ``args`` (instance names or node ids)."""
    sr = m.sr
    nodes: list[str] = []
    for a in args:
        if sr.has_instance(a):
            node = sr.instance(a).node
        else:
            node = a if a in {n.id for n in sr.nodes()} else None
        if node and node not in nodes and sr.node(node).state == "down":
            nodes.append(node)
    out: list[Component] = []
    for node in nodes:
        out.extend(c for c in sr.instances_on(node) if c.state is Lifecycle.FAILED)
    return out


def repair(m: "Manager", args: tuple[str, ...], *, run: Optional[DiagramRun] = None,
           diagram_node: str = "redeploy") -> dict[str, str]:
    """Replace the lost instances named (directly or by their node) in ``args``.

    Returns ``{lost srname: replacement srname}`` (empty when nothing is left to repair).
    """
    sr = m.sr
    with m._structure:
        lost = lost_instances(m, args)
        if not lost:
            return {}
        lost_names = {c.srname for c in lost}
        partners = {c.srname: [p.srname for p in sr.bound(c.srname)] for c in lost}
        was_started = {c.srname: m.health.previous_states.get(c.srname) in (Lifecycle.STARTED, Lifecycle.STARTING)
                       for c in lost}
        mapping: dict[str, str] = {}
        created: list[Component] = []
        try:
            for c in lost:
                new = m._new_instance(c.type)
                created.append(new)
                mapping[c.srname] = new.srname
                m._place_in_family(new)
            for c in lost:
                new_name = mapping[c.srname]
                for p in partners[c.srname]:
                    other = mapping.get(p, p) if p in lost_names else p
                    sr.bind(new_name, other, check=False)
            m._place_beside(created)
            m._set_dirs(created)
            if m.deployed:
                deployer.deploy(m, created)
        except Exception as exc:
            for comp in created:
                m._forget_instance(comp.srname, undeploy=m.deployed)
            m.notify("repair.failed", lost=sorted(lost_names), error=str(exc))
            raise ActionError(f"repair of {', '.join(sorted(lost_names))} failed: {exc}",
                              diagram=run.name if run else "repair", node=diagram_node) from exc
        for c in lost:
            _release(m, c)
            m._forget_instance(c.srname, undeploy=m.deployed)
        for comp in created:
            m.notify("instance.created", instance=comp.srname, node=comp.node)
        m.notify("repair.replaced", replaced=dict(mapping), nodes=sorted({c.node for c in lost if c.node}))
        log.warning("repaired: %s", ", ".join(f"{a} -> {b}" for a, b in mapping.items()))
    _start(m, created, {mapping[k]: v for k, v in was_started.items()}, run, diagram_node)
    return mapping


def _release(m: "Manager", comp: Component) -> None:
    """Let a lost instance's wrapper object release what it holds in the manager (a probe's
    sampling thread): its ``stop`` runs in the background, best effort, never waited for (on
    a dead node it fails; its remains there are cleaned when the node is back)."""
    obj = m.runner._objects.get(comp.srname)
    wrapper = m.app.wrappers.get(comp.type)
    wm = wrapper.methods.get("stop") if wrapper else None
    if obj is None or wm is None:
        return
    try:
        scope = Scope(SRResolver(m.sr), this=comp, args=(), new=())
        params = [evaluate(p.expr, scope) for p in wm.params]
        method = getattr(obj, wm.method)
    except (TuneError, AttributeError) as exc:
        log.debug("%s: not released: %s", comp.srname, exc)
        return

    def stop() -> None:
        try:
            method(*params)
        except Exception as exc:  # noqa: BLE001 - best effort on a lost instance
            log.debug("%s: release (stop) failed: %s", comp.srname, exc)

    threading.Thread(target=stop, name=f"tune-release-{comp.srname}", daemon=True).start()


def _start(m: "Manager", created: list[Component], start: dict[str, bool], run: Optional[DiagramRun],
           diagram_node: str) -> None:
    """Start the replacements of started instances, dependencies first."""
    order = {t: i for i, wave in enumerate(start_order(m.app)) for t in wave}
    for comp in sorted(created, key=lambda c: order.get(c.type, 0)):
        wrapper = m.app.wrappers.get(comp.type)
        if not start.get(comp.srname) or wrapper is None or "start" not in wrapper.methods:
            continue
        m.runner.call(comp.srname, "start", run=run, node=diagram_node)
