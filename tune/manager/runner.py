"""Carrying out diagram actions against the System Representation, the nodes and the wrappers.

Each action keeps the System Representation true to what happened: a method that raises
leaves states as they really are (a failed ``start`` marks the instance failed; a failed
``migrate`` leaves the VM where it was), ``Comp++`` that fails half-way removes what it added,
``Comp--`` removes only what it really stopped and undeployed.
"""

from __future__ import annotations

import inspect
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Sequence

from ..components.component import Component, Lifecycle
from ..components.sr import UnknownInstance
from ..diagrams.actions import Action, Assign, Call, Create, Remove, Target
from ..diagrams.engine import DiagramRun
from ..diagrams.guards import Guard, evaluate_guard
from ..diagrams.model import DiagramNode
from ..errors import ActionError, ExpressionError, TuneError
from ..wdl.expr import Scope, evaluate
from ..wdl.resolve import resolve_method
from .context import SRResolver, WrapperContext

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager

log = logging.getLogger(__name__)

#: methods whose success or failure moves an instance through its lifecycle
LIFECYCLE = {"start": (Lifecycle.STARTING, Lifecycle.STARTED), "stop": (Lifecycle.STOPPING, Lifecycle.STOPPED)}


class ActionRunner:
    """The engine's :class:`tune.diagrams.engine.ActionRunner` for a live manager."""

    def __init__(self, manager: "Manager", *, max_calls: int = 64) -> None:
        self.m = manager
        self.calls = ThreadPoolExecutor(max_workers=max_calls, thread_name_prefix="tune-call")
        self._objects: dict[str, Any] = {}
        self._takes_ctx: dict[type, bool] = {}

    def close(self) -> None:
        self.calls.shutdown(wait=True, cancel_futures=True)

    # ---- engine interface ----------------------------------------------------------------
    def run_node(self, node: DiagramNode, run: DiagramRun) -> None:
        m = self.m
        seq = m.journal_write("node.begin", run=run, node=node.id, text=node.text)
        status = "done"
        try:
            for action in node.actions:
                if run.cancelled:
                    status = "cancelled"
                    return
                self.run_action(action, node, run)
        except BaseException:
            status = "failed"
            raise
        finally:
            m.journal_write("node.end", ref=seq, run=run, node=node.id, status=status)

    def evaluate(self, guard: Guard, run: DiagramRun) -> bool:
        sr = self.m.sr
        resolver = SRResolver(sr)
        scope = Scope(resolver, args=run.args, new=run.new)

        def lookup(g: Guard) -> Any:
            if g.kind == "var":
                return evaluate(g.value, scope)
            comp, attr = g.value
            if g.kind == "count":
                return sr.count(comp)
            values = [resolver.instance_attribute(c, attr) for c in sr.instances(comp)]
            return values[0] if len(values) == 1 else ",".join(str(v) for v in values)

        with sr.lock:
            return evaluate_guard(guard, lookup)

    # ---- actions -------------------------------------------------------------------------
    def run_action(self, action: Action, node: DiagramNode, run: DiagramRun) -> None:
        where = dict(diagram=run.name, node=node.id)
        try:
            if isinstance(action, Call):
                self._call(action, node, run)
            elif isinstance(action, Create):
                run.new = self.m.create_instances(action.component, action.count, run=run)
            elif isinstance(action, Remove):
                for inst in self.targets(action.target, run, node):
                    self.m.remove_instance(inst.srname)
            elif isinstance(action, Assign):
                scope = Scope(SRResolver(self.m.sr), args=run.args, new=run.new)
                value = evaluate(action.value, scope)
                for inst in self.targets(action.target, run, node):
                    text = str(getattr(value, "srname", value))
                    self.m.sr.set_attribute(inst.srname, action.attribute, text)
                    self.m.journal_write("assign", run=run, instance=inst.srname, attribute=action.attribute,
                                         value="***" if action.attribute in inst.secret else text)
            elif callable(getattr(action, "perform", None)):  # built-in actions (default repair)
                action.perform(self, run, node)  # type: ignore[attr-defined]
        except ActionError:
            raise
        except TuneError as exc:
            raise ActionError(exc.message, cause=exc, **where) from exc

    def targets(self, target: Target, run: DiagramRun, node: DiagramNode) -> list[Component]:
        sr = self.m.sr
        if target.base == "comp":
            found = sr.instances(target.component)
            if not found:
                log.warning("diagram %s node %s: %s has no instance; nothing to do", run.name, node.id, target)
            return found
        if target.base == "arg":
            if len(run.args) < target.index:
                raise ActionError(f"{target}: the event has no argument {target.index}", diagram=run.name,
                                  node=node.id)
            name = run.args[target.index - 1]
            try:
                base = [sr.instance(name)]
            except UnknownInstance:
                raise ActionError(f"{target}: no instance named {name[:80]!r}", diagram=run.name, node=node.id,
                                  instance=name[:80]) from None
        else:
            base = list(run.new)
            if not base:
                raise ActionError("$new: no instance was created earlier in this diagram", diagram=run.name,
                                  node=node.id)
        if target.via:
            out: list[Component] = []
            for b in base:
                out.extend(sr.bound(b.srname, target.via))
            if not out:
                raise ActionError(f"{target}: {', '.join(b.srname for b in base)} is bound to no {target.via}",
                                  diagram=run.name, node=node.id)
            return out
        return base

    def _call(self, action: Call, node: DiagramNode, run: DiagramRun) -> None:
        instances = self.targets(action.target, run, node)
        if not instances:
            return
        args: Sequence[str] = run.args
        if action.args:
            scope = Scope(SRResolver(self.m.sr), args=run.args, new=run.new)
            args = [_text(evaluate(a, scope)) for a in action.args]
        if len(instances) == 1:
            self.call(instances[0].srname, action.method, args, run=run, node=node.id)
            return
        futures = {self.calls.submit(self.call, inst.srname, action.method, args, run=run, node=node.id): inst
                   for inst in instances}
        errors = []
        for fut, inst in futures.items():
            exc = fut.exception()
            if exc is not None:
                errors.append(exc)
        if errors:
            first = errors[0]
            if isinstance(first, ActionError) and len(errors) == 1:
                raise first
            names = ", ".join(getattr(e, "instance", "?") for e in errors)
            raise ActionError(f"{len(errors)} of {len(instances)} instance(s) failed ({names}): {errors[0]}",
                              diagram=run.name, node=node.id, instance=getattr(first, "instance", ""), cause=first)

    def wrapper_object(self, srname: str, cls: type) -> Any:
        obj = self._objects.get(srname)
        if obj is None or type(obj) is not cls:
            takes = self._takes_ctx.get(cls)
            if takes is None:
                try:
                    params = [p for p in inspect.signature(cls).parameters.values()
                              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
                    takes = bool(params)
                except (TypeError, ValueError):
                    takes = False
                self._takes_ctx[cls] = takes
            obj = cls(WrapperContext(self.m, srname)) if takes else cls()
            self._objects[srname] = obj
        return obj

    def forget(self, srname: str) -> None:
        self._objects.pop(srname, None)

    def call(self, srname: str, method: str, args: Sequence[str] = (), *, run: DiagramRun | None = None,
             node: str = "") -> Any:
        """Call wrapper method ``method`` of instance ``srname`` (lifecycle kept in the SR)."""
        m = self.m
        diagram = run.name if run else ""
        inst = m.sr.instance(srname)
        wrapper = m.app.wrappers.get(inst.type)
        wm = wrapper.methods.get(method) if wrapper else None
        if wm is None:
            raise ActionError(f"component {inst.type} has no wrapper method {method!r}", diagram=diagram, node=node,
                              instance=srname)
        try:
            cls, _fn = resolve_method(wm, m.app.base_dir)
            scope = Scope(SRResolver(m.sr), this=inst, args=tuple(args), new=run.new if run else ())
            params = [evaluate(p.expr, scope) for p in wm.params]
        except TuneError as exc:
            raise ActionError(exc.message, diagram=diagram, node=node, instance=srname, cause=exc) from exc
        states = LIFECYCLE.get(method)
        if states:
            m.sr.set_state(srname, states[0])
        intent = m.journal_write("call.intent", run=run, instance=srname, method=method, node=node,
                                 args=_redacted(m, inst, wm, params))
        m.notify("action.start", instance=srname, method=method, diagram=diagram, node=node)
        clock = m.clock
        t0 = clock.now()
        timeout = action_timeout(m, run, node)
        try:
            obj = self.wrapper_object(srname, cls)
            if timeout is None:
                result = getattr(obj, wm.method)(*params)
            else:
                result = call_with_timeout(getattr(obj, wm.method), params, timeout, clock,
                                           f"{inst.type}.{method} of {srname}")
        except Exception as exc:  # noqa: BLE001 - any wrapper failure is reported, never fatal
            err = exc.message if isinstance(exc, TuneError) else f"{type(exc).__name__}: {exc}"
            m.journal_write("call.failed", ref=intent, run=run, instance=srname, method=method,
                            error=_scrub(inst, err))
            if states:
                m.sr.set_state(srname, Lifecycle.FAILED, error=err)
            else:
                with m.sr.lock:
                    m.sr.instance(srname).error = err
            m.notify("action.failed", instance=srname, method=method, diagram=diagram, node=node, error=err)
            raise ActionError(f"{inst.type}.{method} failed: {err}", diagram=diagram, node=node, instance=srname,
                              cause=exc) from exc
        if states:
            m.sr.set_state(srname, states[1])
        m.journal_write("call.done", ref=intent, run=run, instance=srname, method=method)
        m.notify("action.end", instance=srname, method=method, diagram=diagram, node=node,
                 duration=round(clock.now() - t0, 3))
        return result


class ActionTimeout(TuneError):
    """A wrapper call did not return within its action's timeout; it was abandoned."""


def action_timeout(manager: "Manager", run: DiagramRun | None, node_id: str) -> float | None:
    """The timeout of action node ``node_id`` (its ``timeout="SECONDS"``), else the manager's default."""
    if run is not None and node_id:
        node = run.diagram.nodes.get(node_id)
        value = getattr(node, "timeout", None) if node is not None else None
        if value is None:
            value = node_timeouts(run.diagram).get(node_id)
        if value is not None:
            return float(value)
    return manager.action_timeout


def node_timeouts(diagram: Any) -> dict[str, float]:
    """``timeout`` attributes of a diagram file's action nodes (read once per Diagram object)."""
    import os

    cached = getattr(diagram, "_tune_timeouts", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    path = getattr(diagram, "file", None)
    found: dict[str, float] = {}
    if path and os.path.exists(path):
        from ..xmlsafe import local_name, parse_xml
        for el in parse_xml(path).getroot():
            if isinstance(el.tag, str) and local_name(el) == "action" and el.get("timeout") and el.get("id"):
                try:
                    value = float(el.get("timeout"))
                except ValueError:
                    raise ActionError(f"action {el.get('id')}: timeout={el.get('timeout')[:40]!r} is not a "
                                      "number of seconds", diagram=diagram.name, node=el.get("id")) from None
                if not value > 0:
                    raise ActionError(f"action {el.get('id')}: timeout must be positive", diagram=diagram.name,
                                      node=el.get("id"))
                found[el.get("id")] = value
    try:
        diagram._tune_timeouts = found  # no stat of the file per call (tune.manager.runner)
    except AttributeError:
        pass
    return found


def call_with_timeout(fn: Any, params: Sequence[Any], timeout: float, clock: Any, what: str) -> Any:
    """``fn(*params)`` in a thread of its own; abandoned (left to finish alone) after ``timeout``."""
    import threading

    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = fn(*params)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"tune-call-{what[:30]}", daemon=True).start()
    if not clock.wait(done, timeout):
        raise ActionTimeout(f"{what} timed out after {timeout:g} s and was abandoned (it may still be running)")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _scrub(inst: Component, text: str) -> str:
    """``text`` with the instance's secret attribute values replaced by ``***``."""
    for k in inst.secret:
        value = str(inst.attributes.get(k) or "")
        if value:
            text = text.replace(value, "***")
    return text


def _redacted(m: "Manager", inst: Component, wm: Any, params: Sequence[Any]) -> list[str]:
    """Parameters for the journal: secret attribute values (``Component.secret``) replaced by ``***``."""
    secret_names = set(inst.secret).union(*(getattr(ct, "secret", ()) for ct in m.app.components.values()))
    secrets = {str(inst.attributes[k]) for k in inst.secret if inst.attributes.get(k)}
    out = []
    for p, value in zip(wm.params, params):
        text = _text(value)
        names = {part for part in p.text.replace("$", ".").split(".") if part}
        if text in secrets or names & secret_names or any(s in text for s in secrets):
            text = "***"
        out.append(text)
    return out


def _text(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(_text(x) for x in v)
    name = getattr(v, "srname", None)
    return str(name if name is not None else ("" if v is None else v))


__all__ = ["ActionRunner", "ExpressionError"]
