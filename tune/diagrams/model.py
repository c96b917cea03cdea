"""A reconfiguration diagram as a workflow graph: nodes, transitions, guards."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

import networkx as nx

from ..adl.model import Source
from .actions import Action
from .guards import Guard


class NodeKind(str, Enum):
    INITIAL = "initial"
    ACTION = "action"
    FORK = "fork"
    JOIN = "join"
    CHOICE = "choice"
    FINAL = "final"


@dataclass
class DiagramNode:
    id: str
    kind: NodeKind
    text: str = ""
    actions: list[Action] = field(default_factory=list)
    source: Source = field(default=Source(), compare=False)


@dataclass
class Transition:
    source: str
    target: str
    guard_text: Optional[str] = None
    guard: Optional[Guard] = field(default=None, compare=False)
    origin: Source = field(default=Source(), compare=False)

    @property
    def is_else(self) -> bool:
        return self.guard_text is not None and self.guard_text.strip() == "else"


@dataclass
class Diagram:
    """A parsed diagram.  Run it with :class:`tune.diagrams.engine.Engine`."""

    name: str
    nodes: dict[str, DiagramNode] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    on_failure: Optional[str] = None
    file: Optional[str] = None
    source: Source = field(default=Source(), compare=False)

    def graph(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph(name=self.name)
        for n in self.nodes.values():
            g.add_node(n.id, kind=n.kind.value)
        for t in self.transitions:
            if t.source in self.nodes and t.target in self.nodes:
                g.add_edge(t.source, t.target, guard=t.guard_text)
        return g

    def outgoing(self, node_id: str) -> list[Transition]:
        return [t for t in self.transitions if t.source == node_id]

    def incoming(self, node_id: str) -> list[Transition]:
        return [t for t in self.transitions if t.target == node_id]

    @property
    def initial(self) -> Optional[DiagramNode]:
        for n in self.nodes.values():
            if n.kind is NodeKind.INITIAL:
                return n
        return None

    def action_nodes(self) -> list[DiagramNode]:
        return [n for n in self.nodes.values() if n.kind is NodeKind.ACTION]
