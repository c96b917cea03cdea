"""Structural checks of a diagram: the workflow must be runnable before anything runs.

Exactly one initial node; every node reachable from it; every node can reach a final node (so
every fork's branches end at a join or a final); node degrees fit their kind; guards only after
a choice, at most one ``else``; cycles only through a choice (a loop needs a way out).
"""

from __future__ import annotations

import networkx as nx

from ..errors import Problem
from .model import Diagram, NodeKind


def diagram_problems(d: Diagram) -> list[Problem]:
    problems: list[Problem] = []

    def add(msg: str, node_id: str | None = None, line: int | None = None) -> None:
        src = d.nodes[node_id].source if node_id in d.nodes else d.source
        problems.append(Problem(f"diagram {d.name}: {msg}", src.file or d.file, line or src.line))

    for t in d.transitions:
        for end in (t.source, t.target):
            if end not in d.nodes:
                problems.append(Problem(f"diagram {d.name}: transition refers to unknown node {end!r}",
                                        t.origin.file or d.file, t.origin.line))
    initials = [n for n in d.nodes.values() if n.kind is NodeKind.INITIAL]
    if len(initials) != 1:
        add(f"needs exactly one initial node, has {len(initials)}")
    g = d.graph()
    for n in d.nodes.values():
        out, inc = d.outgoing(n.id), d.incoming(n.id)
        k = n.kind
        if k is NodeKind.INITIAL and (inc or len(out) != 1):
            add(f"initial node {n.id} needs no incoming and exactly one outgoing transition", n.id)
        elif k is NodeKind.ACTION and len(out) != 1:
            add(f"action {n.id} needs exactly one outgoing transition (has {len(out)}); use a fork or a choice",
                n.id)
        elif k is NodeKind.FORK and len(out) < 1:
            add(f"fork {n.id} has no branch", n.id)
        elif k is NodeKind.JOIN and len(out) != 1:
            add(f"join {n.id} needs exactly one outgoing transition", n.id)
        elif k is NodeKind.CHOICE:
            if not out:
                add(f"choice {n.id} has no outgoing transition", n.id)
            elses = [t for t in out if t.is_else]
            if len(elses) > 1:
                add(f"choice {n.id} has {len(elses)} 'else' transitions", n.id)
            for t in out:
                if t.guard_text is None:
                    problems.append(Problem(f"diagram {d.name}: transition {t.source}->{t.target} after choice "
                                            "needs a guard (or 'else')", t.origin.file or d.file, t.origin.line))
        elif k is NodeKind.FINAL and out:
            add(f"final node {n.id} cannot have outgoing transitions", n.id)
        if k is not NodeKind.CHOICE:
            for t in out:
                if t.guard_text is not None:
                    problems.append(Problem(f"diagram {d.name}: guard on {t.source}->{t.target} is only "
                                            "allowed after a choice", t.origin.file or d.file, t.origin.line))
    if len(initials) == 1:
        reach = nx.descendants(g, initials[0].id) | {initials[0].id}
        for n in d.nodes.values():
            if n.id not in reach:
                add(f"node {n.id} is unreachable from the initial node", n.id)
    finals = [n.id for n in d.nodes.values() if n.kind is NodeKind.FINAL]
    if not finals:
        add("has no final node")
    else:
        can_end = set(finals)
        for f in finals:
            can_end |= nx.ancestors(g, f)
        for n in d.nodes.values():
            if n.id not in can_end:
                add(f"node {n.id} never reaches a final node (a branch that cannot end)", n.id)
    plain = g.subgraph([n.id for n in d.nodes.values() if n.kind is not NodeKind.CHOICE])
    if not nx.is_directed_acyclic_graph(plain):
        try:
            cycle = nx.find_cycle(plain)
            where = cycle[0][0]
        except nx.NetworkXNoCycle:  # pragma: no cover
            where = None
        add("has a cycle that does not pass through a choice", where)
    return problems
