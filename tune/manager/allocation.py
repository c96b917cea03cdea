"""Node allocation strategies: which node of a family gets the next instance.

Strategies are classes behind one method, chosen by the family's ``allocation`` name:
``round-robin`` (the default: one instance per node in turn), ``fill`` (use every slot of a node
before the next, as OAR does) and ``spread`` (the node with the fewest instances).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

from ..components.component import Node
from ..errors import AllocationError
from ..registry import Registry


class Allocation(ABC):
    name = ""

    @abstractmethod
    def pick(self, nodes: Sequence[Node], used: Callable[[str], int]) -> Node:
        """One node with a free slot among ``nodes`` (in nodefile order), given slots in use."""


def _free(nodes: Sequence[Node], used: Callable[[str], int]) -> list[Node]:
    free = [n for n in nodes if n.state == "up" and used(n.id) < n.slots]
    if not free:
        family = nodes[0].family if nodes else "?"
        raise AllocationError(f"family {family}: no free slot left on {len(nodes)} node(s)")
    return free


class RoundRobin(Allocation):
    """Each node in turn, starting after the last one picked."""

    name = "round-robin"

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def pick(self, nodes: Sequence[Node], used: Callable[[str], int]) -> Node:
        free = {n.id for n in _free(nodes, used)}
        family = nodes[0].family
        last = self._last.get(family)
        start = next((i + 1 for i, n in enumerate(nodes) if n.id == last), 0)
        ring = list(nodes[start:]) + list(nodes[:start])
        choice = next(n for n in ring if n.id in free)
        self._last[family] = choice.id
        return choice


class Fill(Allocation):
    """Fill a node's slots before using the next one."""

    name = "fill"

    def pick(self, nodes: Sequence[Node], used: Callable[[str], int]) -> Node:
        return _free(nodes, used)[0]


class Spread(Allocation):
    """The node with the fewest instances (first in nodefile order on ties)."""

    name = "spread"

    def pick(self, nodes: Sequence[Node], used: Callable[[str], int]) -> Node:
        order = {n.id: i for i, n in enumerate(nodes)}
        return min(_free(nodes, used), key=lambda n: (used(n.id), order[n.id]))


allocations: Registry[Allocation] = Registry("allocation")
allocations.register("round-robin", "tune.manager.allocation:RoundRobin")
allocations.register("fill", "tune.manager.allocation:Fill")
allocations.register("spread", "tune.manager.allocation:Spread")
