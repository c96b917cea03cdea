"""What wrapper classes see of the manager: their instance, node, executor, driver, events.

A wrapper class is constructed with one :class:`WrapperContext` (when its ``__init__`` takes an
argument).  Through it, and only through it, a wrapper acts on the world: run commands on its
node, drive the hypervisor, emit events, move its instance in the System Representation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from ..components.component import Component
from ..components.sr import SystemRepresentation, UnknownInstance
from ..errors import ExpressionError

if TYPE_CHECKING:  # pragma: no cover
    from ..clock import Clock
    from ..remote.base import Executor
    from ..virt.base import HypervisorDriver, MigrationReport
    from .manager import Manager


class SRResolver:
    """Expression variables resolved against the System Representation."""

    def __init__(self, sr: SystemRepresentation) -> None:
        self.sr = sr

    def instance_attribute(self, instance: Any, name: str) -> Any:
        if isinstance(instance, str):
            instance = self.find_instance(instance)
        if not isinstance(instance, Component):
            raise ExpressionError(f"{instance!r} is not an instance (.{name})")
        if name == "count":
            return self.sr.count(instance.type)
        try:
            return instance.get(name)
        except KeyError:
            raise ExpressionError(f"{instance.srname} has no attribute {name!r}") from None

    def find_instance(self, name: str) -> Component:
        try:
            return self.sr.instance(name)
        except UnknownInstance as exc:
            raise ExpressionError(exc.message) from None

    def bound(self, instance: Any, component: str) -> list[Component]:
        return self.sr.bound(instance.srname, component)

    def instances(self, component: str) -> list[Component]:
        return self.sr.instances(component)


class WrapperContext:
    """The manager as one wrapper object (one per instance) sees it."""

    def __init__(self, manager: "Manager", srname: str) -> None:
        self._manager = manager
        self.srname = srname
        self.log = logging.getLogger(f"tune.wrapper.{srname}")

    @property
    def manager(self) -> "Manager":
        """The manager itself, for system-level wrappers (consolidation, repair)."""
        return self._manager

    @property
    def instance(self) -> Component:
        return self._manager.sr.instance(self.srname)

    @property
    def sr(self) -> SystemRepresentation:
        return self._manager.sr

    @property
    def clock(self) -> "Clock":
        return self._manager.clock

    @property
    def node(self) -> str:
        node = self.instance.node
        if node is None:
            raise UnknownInstance(f"{self.srname} is not placed on a node")
        return node

    @property
    def executor(self) -> "Executor":
        return self._manager.executor(self.node)

    @property
    def driver(self) -> "HypervisorDriver":
        return self._manager.driver(self.node)

    def executor_of(self, node_id: str) -> "Executor":
        return self._manager.executor(node_id)

    def driver_of(self, node_id: str) -> "HypervisorDriver":
        return self._manager.driver(node_id)

    def emit(self, name: str, *args: str) -> None:
        """Send an event to the manager (never blocks; counted if dropped)."""
        self._manager.emit(name, *args, source=f"wrapper:{self.srname}")

    def notify(self, kind: str, **data: Any) -> None:
        """Add a line to the manager's timeline (probe readings, migration progress)."""
        self._manager.notify(kind, instance=self.srname, **data)

    def choose_destination(self, srname: str) -> Optional[str]:
        """The node the placement policy picks for moving ``srname`` (None: nowhere fits)."""
        return self._manager.choose_destination(srname)

    def relocate(self, srname: str, node_id: str) -> None:
        """Record in the SR that ``srname`` now runs on ``node_id`` (after a migration)."""
        self._manager.relocate(srname, node_id)

    def record_migration(self, report: "MigrationReport") -> None:
        self._manager.record_migration(report)
