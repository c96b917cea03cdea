"""Binding instances within their multiplicities.

At deployment every instance is bound so that each bound count lies within its binding's
multiplicities; when that is impossible the deployment is refused before anything starts, with a
message naming the binding.  Partners are chosen fairly (fewest partners first) and, on ties,
on the same node (a probe next to its VM).
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..adl.model import Binding
from ..components.component import Component
from ..components.sr import SystemRepresentation
from ..errors import MultiplicityError


def _describe(b: Binding) -> str:
    return f"binding {b.source}->{b.target} ({b.from_multiplicity} / {b.to_multiplicity})"


def bind_new(sr: SystemRepresentation, new: Sequence[Component], spec: Binding) -> None:
    """Bind freshly created instances along ``spec`` (either side), as many partners as allowed."""
    for comp in new:
        if comp.type == spec.source:
            mine, theirs, other_type = spec.to_multiplicity, spec.from_multiplicity, spec.target
        else:
            mine, theirs, other_type = spec.from_multiplicity, spec.to_multiplicity, spec.source
        partners = [p for p in sr.instances(other_type) if p.srname != comp.srname]
        want = mine.upper if mine.upper is not None else len(partners)
        have = len(sr.bound(comp.srname, other_type))
        candidates = [p for p in partners
                      if (theirs.upper is None or len(sr.bound(p.srname, comp.type)) < theirs.upper)
                      and p not in sr.bound(comp.srname, other_type)]
        candidates.sort(key=lambda p: (len(sr.bound(p.srname, comp.type)), p.node != comp.node))
        for p in candidates[:max(0, want - have)]:
            sr.bind(comp.srname, p.srname)


def bind_all(sr: SystemRepresentation, bindings: Sequence[Binding]) -> None:
    """Bind every instance for every binding; raise :class:`MultiplicityError` if impossible."""
    for spec in bindings:
        if spec.source == spec.target:
            continue
        froms = sr.instances(spec.source)
        tos = sr.instances(spec.target)
        # first pass: each `from` takes its lower bound of partners, least-bound `to` first
        for a in froms:
            _take(sr, a, tos, spec.to_multiplicity.lower, spec.from_multiplicity.upper, spec)
        # second pass: each `to` below its lower bound takes `from` partners that still have room
        for b in tos:
            need = spec.from_multiplicity.lower - len(sr.bound(b.srname, spec.source))
            if need > 0:
                _take(sr, b, froms, spec.from_multiplicity.lower, spec.to_multiplicity.upper, spec)
        # third pass: unbounded or wider multiplicities take what remains (fair, up to the upper bound)
        for a in froms:
            upper = spec.to_multiplicity.upper
            goal = len(tos) if upper is None else upper
            _take(sr, a, tos, goal, spec.from_multiplicity.upper, spec)
        problems = sr.binding_problems(spec)
        if problems:
            raise MultiplicityError(f"{_describe(spec)} cannot be met with {len(froms)} {spec.source} and "
                                    f"{len(tos)} {spec.target}: {problems[0]}", file=spec.origin.file,
                                    line=spec.origin.line)


def _take(sr: SystemRepresentation, who: Component, pool: Sequence[Component], goal: int,
          partner_upper: Optional[int], spec: Binding) -> None:
    other_type = pool[0].type if pool else None
    if other_type is None:
        return
    have = sr.bound(who.srname, other_type)
    missing = goal - len(have)
    if missing <= 0:
        return
    candidates = [p for p in pool if p not in have
                  and (partner_upper is None or len(sr.bound(p.srname, who.type)) < partner_upper)]
    candidates.sort(key=lambda p: (len(sr.bound(p.srname, who.type)), p.node != who.node))
    for p in candidates[:missing]:
        sr.bind(who.srname, p.srname)
