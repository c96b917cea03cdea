"""The deployment graph: component types and host families as a ``networkx`` graph.

Nodes are ``("component", NAME)`` and ``("family", NAME)``; edges are bindings (with their
multiplicities) and placements (component → family).  Drawing, start order and validation
read it.
"""

from __future__ import annotations

from typing import Iterable

import networkx as nx

from .model import Application


def deployment_graph(app: Application) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph(name=app.name)
    for fam in app.families.values():
        g.add_node(("family", fam.name), kind="family", name=fam.name, protocol=fam.protocol,
                   nodes=sum(n.slots for n in fam.nodes))
    for comp in app.components.values():
        g.add_node(("component", comp.name), kind="component", name=comp.name, initial=comp.initial,
                   attributes=dict(comp.attributes), wrapper=comp.wrapper)
        if comp.host_family:
            g.add_edge(("component", comp.name), ("family", comp.host_family), kind="placement")
    for b in app.bindings:
        g.add_edge(("component", b.source), ("component", b.target), kind="binding",
                   from_multiplicity=str(b.from_multiplicity), to_multiplicity=str(b.to_multiplicity))
    return g


def graph_signature(app: Application) -> dict[str, object]:
    """A comparable summary of the deployment graph (used to check UML == native CDL)."""
    g = deployment_graph(app)
    return {
        "nodes": sorted((k, n) for (k, n) in g.nodes),
        "edges": sorted((u[1], v[1], d["kind"], d.get("from_multiplicity", ""), d.get("to_multiplicity", ""))
                        for u, v, d in g.edges(data=True)),
        "attributes": {c.name: dict(sorted(c.attributes.items())) for c in app.components.values()},
        "initial": {c.name: c.initial for c in app.components.values()},
    }


def start_order(app: Application) -> list[list[str]]:
    """Component types in dependency order, as waves that may start together.

    A binding ``from → to`` means ``from`` uses ``to``: ``to`` starts first.  Cycles (allowed in
    the description) are broken by keeping the components of a cycle in one wave.
    """
    g = nx.DiGraph()
    g.add_nodes_from(app.components)
    for b in app.bindings:
        if b.source != b.target:
            g.add_edge(b.target, b.source)
    cond = nx.condensation(g)
    waves: list[list[str]] = []
    for generation in nx.topological_generations(cond):
        wave: list[str] = []
        for scc in generation:
            wave.extend(sorted(cond.nodes[scc]["members"], key=list(app.components).index))
        waves.append(sorted(wave, key=list(app.components).index))
    return waves


def flatten(waves: Iterable[list[str]]) -> list[str]:
    return [c for w in waves for c in w]
