"""Fractal-style components: attribute controller, lifecycle controller, content; and nodes.

A :class:`Component` is one *instance* (``VM1``) of a component type (``VM``).  Its bindings
and placement live in the :class:`tune.components.sr.SystemRepresentation` graph, which is the
binding controller: a component never holds references to other components, so the graph stays
the one source of truth and serialises cleanly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Optional

from ..errors import TuneError


class Lifecycle(str, Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    FAILED = "failed"


#: allowed lifecycle transitions (anything may fail; a failed component may be restarted or stopped)
TRANSITIONS: dict[Lifecycle, frozenset[Lifecycle]] = {
    Lifecycle.STOPPED: frozenset({Lifecycle.STARTING, Lifecycle.STARTED, Lifecycle.FAILED}),
    Lifecycle.STARTING: frozenset({Lifecycle.STARTED, Lifecycle.FAILED, Lifecycle.STOPPED}),
    Lifecycle.STARTED: frozenset({Lifecycle.STOPPING, Lifecycle.STOPPED, Lifecycle.FAILED, Lifecycle.STARTED}),
    Lifecycle.STOPPING: frozenset({Lifecycle.STOPPED, Lifecycle.FAILED}),
    Lifecycle.FAILED: frozenset({Lifecycle.STARTING, Lifecycle.STARTED, Lifecycle.STOPPING, Lifecycle.STOPPED,
                                 Lifecycle.FAILED}),
}


class LifecycleError(TuneError):
    """An impossible lifecycle transition (a bug in a diagram or a wrapper)."""


@dataclass
class Component:
    """One component instance."""

    srname: str
    type: str
    attributes: dict[str, str] = field(default_factory=dict)
    state: Lifecycle = Lifecycle.STOPPED
    node: Optional[str] = None
    dir_local: str = ""
    uses_slot: bool = True  # False when placed beside the instance it is bound to
    parent: Optional[str] = None  # content controller: the composite this one is inside
    secret: frozenset[str] = frozenset()
    last_event: Optional[str] = None
    error: Optional[str] = None

    def __post_init__(self) -> None:
        self.attributes = dict(self.attributes)  # never share the type's dict between instances

    # attribute controller -------------------------------------------------------------
    def get(self, name: str) -> Any:
        if name == "srname" or name == "name":
            return self.srname
        if name == "type":
            return self.type
        if name == "state":
            return self.state.value
        if name in ("nodeName", "node", "host"):
            return self.node
        if name == "dirLocal":
            return self.dir_local
        try:
            return self.attributes[name]
        except KeyError:
            raise KeyError(f"{self.srname} has no attribute {name!r}") from None

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        d["secret"] = sorted(self.secret)
        if redact:
            d["attributes"] = {k: ("***" if k in self.secret else v) for k, v in self.attributes.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Component":
        d = dict(d)
        d["state"] = Lifecycle(d.get("state", "stopped"))
        d["secret"] = frozenset(d.get("secret", ()))
        return cls(**d)


@dataclass
class Node:
    """A host slot provider: a machine of a family, with its connection details."""

    id: str
    family: str
    host: str
    protocol: str = "local"
    user: Optional[str] = None
    port: Optional[int] = None
    key: Optional[str] = None
    address: Optional[str] = None
    slots: int = 1
    dirlocal: str = "/tmp/tune"
    driver: Optional[str] = None
    attributes: dict[str, str] = field(default_factory=dict)
    state: str = "up"  # up | down | off

    def __post_init__(self) -> None:
        self.attributes = dict(self.attributes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Node":
        return cls(**d)
