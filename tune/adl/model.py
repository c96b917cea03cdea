"""Value objects of an application description (CDL): families, component types, bindings.

Parsers (:mod:`tune.adl.cdl`, :mod:`tune.adl.uml`) produce these; validation
(:mod:`tune.validate`) is a separate step.  Every object remembers where it was written
(:class:`Source`) so that problems can be reported as ``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ParseError

#: attribute names of <component> that are not free attributes
RESERVED_COMPONENT_ATTRIBUTES = ("name", "wrapper", "legacyFile", "host-family", "initial")
#: names of instances, components, families, attributes: safe to show, log and pass along
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")
PROTOCOLS = ("ssh", "local", "sim")
ALLOCATIONS = ("round-robin", "fill", "spread")


@dataclass(frozen=True)
class Source:
    """Where something was written."""

    file: Optional[str] = None
    line: Optional[int] = None

    def __str__(self) -> str:
        if self.file is None:
            return "<memory>"
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Multiplicity:
    """A UML multiplicity: ``1``, ``0..1``, ``1..4``, ``*`` (``upper=None`` means unbounded).

    >>> Multiplicity.parse("1..4")
    Multiplicity(lower=1, upper=4)
    >>> str(Multiplicity.parse("*"))
    '*'
    >>> Multiplicity.parse("0..*").contains(12)
    True
    """

    lower: int
    upper: Optional[int]

    @classmethod
    def parse(cls, text: str, source: Source = Source()) -> "Multiplicity":
        t = (text or "").strip()
        try:
            if t == "*":
                return cls(0, None)
            if ".." in t:
                lo, hi = t.split("..", 1)
                low = int(lo)
                high = None if hi.strip() == "*" else int(hi)
            else:
                low = high = int(t)
        except ValueError:
            raise ParseError(f"bad multiplicity {text!r} (expected 1, 0..1, 1..4 or *)",
                             file=source.file, line=source.line) from None
        if low < 0 or (high is not None and (high < low or high < 1)):
            raise ParseError(f"impossible multiplicity {text!r}", file=source.file, line=source.line)
        return cls(low, high)

    def contains(self, n: int) -> bool:
        return n >= self.lower and (self.upper is None or n <= self.upper)

    def __str__(self) -> str:
        if self.upper is None:
            return "*" if self.lower == 0 else f"{self.lower}..*"
        return str(self.lower) if self.lower == self.upper else f"{self.lower}..{self.upper}"


@dataclass(frozen=True)
class NodeSpec:
    """One host of a nodefile: ``user@host:port`` and how many slots it offers."""

    host: str
    user: Optional[str] = None
    port: Optional[int] = None
    slots: int = 1
    key: Optional[str] = None
    address: Optional[str] = None  # where to connect when different from ``host`` (inventories)
    source: Source = field(default=Source(), compare=False)

    @property
    def connect_host(self) -> str:
        return self.address or self.host


@dataclass
class Family:
    """A host family (TUNe's cluster description)."""

    name: str
    nodefile: Optional[str] = None
    user: Optional[str] = None
    protocol: str = "local"
    dirlocal: str = "/tmp/tune"
    python: Optional[str] = None
    key: Optional[str] = None
    port: Optional[int] = None
    allocation: str = "round-robin"
    driver: Optional[str] = None
    attributes: dict[str, str] = field(default_factory=dict)
    nodes: list[NodeSpec] = field(default_factory=list)
    source: Source = field(default=Source(), compare=False)


@dataclass
class ComponentType:
    """A software type of the application: its wrapper, legacy file, family and attributes."""

    name: str
    wrapper: Optional[str] = None
    legacy_file: Optional[str] = None
    host_family: Optional[str] = None
    initial: int = 1
    attributes: dict[str, str] = field(default_factory=dict)
    #: attributes whose values must never be logged or journaled
    secret: frozenset[str] = frozenset()
    source: Source = field(default=Source(), compare=False)
    attribute_sources: dict[str, Source] = field(default_factory=dict, compare=False)


@dataclass
class Binding:
    """A UML association between two component types, with a multiplicity at each end.

    ``to_multiplicity``: how many ``to`` instances each ``from`` instance is bound to;
    ``from_multiplicity``: how many ``from`` instances each ``to`` instance is bound to.
    """

    source: str
    target: str
    from_multiplicity: Multiplicity = Multiplicity(1, 1)
    to_multiplicity: Multiplicity = Multiplicity(1, 1)
    origin: Source = field(default=Source(), compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.target)


@dataclass
class DiagramRef:
    """Which diagram file handles which event."""

    event: str
    file: Optional[str] = None
    source: Source = field(default=Source(), compare=False)


@dataclass
class Application:
    """A whole application as described, before anything is deployed."""

    name: str
    path: Optional[str] = None
    families: dict[str, Family] = field(default_factory=dict)
    components: dict[str, ComponentType] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    diagrams: dict[str, DiagramRef] = field(default_factory=dict)
    source: Source = field(default=Source(), compare=False)
    #: filled by :func:`tune.adl.load_application`
    wrappers: dict[str, Any] = field(default_factory=dict, compare=False)
    diagram_graphs: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def base_dir(self) -> str:
        import os
        return os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()

    def resolve(self, relative: Optional[str]) -> Optional[str]:
        """A path written in the application file, made absolute against its folder."""
        import os
        if not relative:
            return None
        return relative if os.path.isabs(relative) else os.path.normpath(os.path.join(self.base_dir, relative))

    def bindings_of(self, component: str) -> list[Binding]:
        return [b for b in self.bindings if component in (b.source, b.target)]

    def neighbour(self, binding: Binding, component: str) -> str:
        return binding.target if binding.source == component else binding.source
