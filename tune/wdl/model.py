"""Value objects of WDL wrappers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..adl.model import Source
from .expr import Expr


@dataclass(frozen=True)
class Param:
    text: str
    expr: Expr = field(compare=False)
    source: Source = field(default=Source(), compare=False)


@dataclass
class WrapperMethod:
    """``name`` is what diagrams call; ``key`` the Python class; ``method`` the method on it."""

    name: str
    key: str
    method: str
    params: list[Param] = field(default_factory=list)
    source: Source = field(default=Source(), compare=False)


@dataclass
class Wrapper:
    name: str
    methods: dict[str, WrapperMethod] = field(default_factory=dict)
    file: Optional[str] = None
    source: Source = field(default=Source(), compare=False)
