"""Static checks across all the files of an application (``tune validate``).

Finds, before anything runs: unknown components, methods or attributes used by diagrams and
wrappers; wrapper keys that do not import; multiplicities that cannot be met with the
``initial`` counts; host families without nodes; structural diagram problems.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from .adl.model import Application, ComponentType
from .diagrams.actions import Assign, Call, Create, Remove, Target
from .diagrams.model import Diagram
from .diagrams.validate import diagram_problems
from .errors import Problem, ValidationFailed
from .wdl.expr import Expr, Var, variables

#: attributes every instance has besides its component's free attributes
BUILTIN_ATTRIBUTES = frozenset({"srname", "nodeName", "dirLocal", "name", "type", "state", "node", "count",
                                "cpu", "host"})
#: lifecycle methods every component understands even without a wrapper method
BUILTIN_METHODS: frozenset[str] = frozenset()


def _attrs(comp: ComponentType) -> set[str]:
    return set(comp.attributes) | BUILTIN_ATTRIBUTES


def _check_var(app: Application, var: Var, this: Optional[ComponentType], where: Problem,
               out: list[Problem]) -> None:
    def add(msg: str) -> None:
        out.append(Problem(f"{msg}", where.file, where.line))

    root = var.root
    if root == "this":
        if this is None:
            add(f"{var}: no $this here")
            return
        if var.path and var.path[0] not in _attrs(this):
            add(f"{var}: component {this.name} has no attribute {var.path[0]!r}")
        return
    if root in ("arg", "new"):
        return  # known only at run time
    if root not in app.components:
        add(f"{var}: unknown component {root!r}")
        return
    if this is not None and not any({b.source, b.target} == {this.name, root} for b in app.bindings):
        add(f"{var}: component {this.name} is not bound to {root}")
    comp = app.components[root]
    if var.path and var.path[0] not in _attrs(comp):
        add(f"{var}: component {root} has no attribute {var.path[0]!r}")


def _check_expr(app: Application, expr: Expr, this: Optional[ComponentType], where: Problem,
                out: list[Problem]) -> None:
    for v in variables(expr):
        _check_var(app, v, this, where, out)


def _target_components(app: Application, t: Target) -> list[str]:
    """Component types a target may address (``$arg`` alone: unknown until run time)."""
    if t.base == "comp":
        return [t.component] if t.component else []
    return [t.via] if t.via else []


def _diagram_semantics(app: Application, d: Diagram, out: list[Problem]) -> None:
    for node in d.nodes.values():
        where = Problem("", node.source.file or d.file, node.source.line)
        for action in node.actions:
            comps: list[str] = []
            if isinstance(action, Create):
                comps = [action.component]
            elif isinstance(action, (Call, Remove, Assign)):
                comps = _target_components(app, action.target)
            for c in comps:
                if c not in app.components:
                    out.append(Problem(f"diagram {d.name}: unknown component {c!r}", where.file, where.line))
            if isinstance(action, Create) and action.component in app.components:
                created = app.components[action.component]
                if not created.host_family and not any(action.component in (b.source, b.target)
                                                       for b in app.bindings):
                    out.append(Problem(f"diagram {d.name}: {created.name}++ has no host family and no binding "
                                       "to place it by", where.file, where.line))
            if isinstance(action, Call):
                for c in comps:
                    comp = app.components.get(c)
                    if comp is None:
                        continue
                    wrapper = app.wrappers.get(c)
                    if wrapper is None or action.method not in wrapper.methods:
                        known = ", ".join(sorted(wrapper.methods)) if wrapper else "none (no wrapper)"
                        out.append(Problem(f"diagram {d.name}: component {c} has no method {action.method!r} "
                                           f"(known: {known})", where.file, where.line))
                if action.target.base == "arg" and not action.target.via:
                    if not any(action.method in w.methods for w in app.wrappers.values()):
                        out.append(Problem(f"diagram {d.name}: no wrapper has a method {action.method!r}",
                                           where.file, where.line))
                for a in action.args:
                    _check_expr(app, a, None, where, out)
            if isinstance(action, Assign):
                for c in comps:
                    comp = app.components.get(c)
                    if comp is not None and action.attribute not in comp.attributes:
                        out.append(Problem(f"diagram {d.name}: component {c} has no attribute "
                                           f"{action.attribute!r}", where.file, where.line))
                _check_expr(app, action.value, None, where, out)
    for t in d.transitions:
        if t.guard is None:
            continue
        where = Problem("", t.origin.file or d.file, t.origin.line)
        stack = [t.guard]
        while stack:
            g = stack.pop()
            stack.extend(g.children)
            if g.kind == "var":
                _check_var(app, g.value, None, where, out)
            elif g.kind in ("count", "attr"):
                comp_name, attr = g.value
                if comp_name not in app.components:
                    out.append(Problem(f"guard: unknown component {comp_name!r}", where.file, where.line))
                elif g.kind == "attr" and attr not in _attrs(app.components[comp_name]):
                    out.append(Problem(f"guard: component {comp_name} has no attribute {attr!r}",
                                       where.file, where.line))


def _multiplicity_problems(app: Application, out: list[Problem]) -> None:
    for b in app.bindings:
        src = b.origin
        for end in (b.source, b.target):
            if end not in app.components:
                out.append(Problem(f"binding {b.source}-{b.target}: unknown component {end!r}", src.file, src.line))
        if b.source not in app.components or b.target not in app.components:
            continue
        n_from, n_to = app.components[b.source].initial, app.components[b.target].initial
        if b.source == b.target:
            continue
        # every `from` instance needs to_multiplicity.lower partners among n_to `to` instances ...
        if n_from and n_to < b.to_multiplicity.lower:
            out.append(Problem(f"binding {b.source}->{b.target}: each {b.source} needs at least "
                               f"{b.to_multiplicity.lower} {b.target} but only {n_to} are created", src.file, src.line))
        if n_to and n_from < b.from_multiplicity.lower:
            out.append(Problem(f"binding {b.source}->{b.target}: each {b.target} needs at least "
                               f"{b.from_multiplicity.lower} {b.source} but only {n_from} are created", src.file, src.line))
        # ... and the edge counts must be compatible: n_from*[lo_to,hi_to] ∩ n_to*[lo_from,hi_from]
        lo = max(n_from * b.to_multiplicity.lower, n_to * b.from_multiplicity.lower)
        his = [x for x in (None if b.to_multiplicity.upper is None else n_from * b.to_multiplicity.upper,
                           None if b.from_multiplicity.upper is None else n_to * b.from_multiplicity.upper)
               if x is not None]
        hi = min(his) if his else None
        hi = min(hi, n_from * n_to) if hi is not None else n_from * n_to
        if lo > hi:
            out.append(Problem(f"binding {b.source}->{b.target}: multiplicities {b.from_multiplicity} / "
                               f"{b.to_multiplicity} cannot be met with {n_from} {b.source} and {n_to} "
                               f"{b.target}", src.file, src.line))


def application_problems(app: Application, *, resolve_keys: bool = True) -> list[Problem]:
    """Every static problem of an already parsed application."""
    out: list[Problem] = []
    for fam in app.families.values():
        if not fam.nodes:
            out.append(Problem(f"host family {fam.name} has no nodes"
                               + (f" (nodefile {fam.nodefile} is empty)" if fam.nodefile else
                                  " (give it a nodefile or an inventory)"), fam.source.file, fam.source.line))
        if fam.protocol == "ssh" and fam.key:
            key = fam.key if os.path.isabs(fam.key) else os.path.join(app.base_dir, fam.key)
            if not os.path.exists(key):
                out.append(Problem(f"host family {fam.name}: key file {fam.key} not found",
                                   fam.source.file, fam.source.line))
    for comp in app.components.values():
        src = comp.source
        if comp.host_family and comp.host_family not in app.families:
            out.append(Problem(f"component {comp.name}: unknown host-family {comp.host_family!r}", src.file, src.line))
        if not comp.host_family and not any(comp.name in (b.source, b.target) for b in app.bindings) \
                and comp.initial > 0:
            out.append(Problem(f"component {comp.name}: no host-family and no binding to place it by",
                               src.file, src.line))
        if comp.legacy_file:
            lf = app.resolve(comp.legacy_file)
            if not lf or not os.path.isfile(lf):
                out.append(Problem(f"component {comp.name}: legacyFile {comp.legacy_file} not found",
                                   src.file, src.line))
        if comp.wrapper:
            wp = app.resolve(comp.wrapper)
            if not wp or not os.path.isfile(wp):
                if comp.name not in app.wrappers:
                    out.append(Problem(f"component {comp.name}: wrapper {comp.wrapper} not found", src.file, src.line))
        wrapper = app.wrappers.get(comp.name)
        if wrapper is not None:
            for m in wrapper.methods.values():
                for p in m.params:
                    _check_expr(app, p.expr, comp, Problem("", p.source.file, p.source.line), out)
            if resolve_keys:
                from .wdl.resolve import check_wrapper
                for exc in check_wrapper(wrapper, app.base_dir):
                    out.append(Problem(exc.message, exc.file, exc.line))
    _multiplicity_problems(app, out)
    for event, d in app.diagram_graphs.items():
        out.extend(diagram_problems(d))
        _diagram_semantics(app, d, out)
        if d.on_failure and d.on_failure not in app.diagrams:
            out.append(Problem(f"diagram {d.name}: on-failure names unknown diagram {d.on_failure!r}",
                               d.file, d.source.line))
    return _unique(out)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        key = (p.file, p.line, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def validate_file(path: str, *, grid: Optional[str] = None) -> Application:
    """Load and check ``path``; raises :class:`ValidationFailed` listing every problem."""
    from .adl.loader import load_application
    return load_application(path, grid=grid)


__all__ = ["application_problems", "validate_file", "ValidationFailed"]
