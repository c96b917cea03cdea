"""Strategies chosen by name: a tiny registry with lazy imports.

Executors, hypervisor drivers and policies are registered as ``"module:Class"`` strings so that
optional backends (libvirt, paramiko) are imported only when used, and a missing package gives a
clear :class:`tune.errors.UsageError` instead of an ``ImportError`` at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, Optional, TypeVar

from .errors import UnknownPolicyError, UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → lazily imported class."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._paths: dict[str, str] = {}
        self._extras: dict[str, str] = {}

    def register(self, name: str, path: str, *, extra: Optional[str] = None) -> None:
        """Register ``name`` as ``"package.module:Class"``; ``extra`` names the pip extra."""
        self._paths[name] = path
        if extra:
            self._extras[name] = extra

    def names(self) -> list[str]:
        return sorted(self._paths)

    def get(self, name: str) -> type[T]:
        try:
            path = self._paths[name]
        except KeyError:
            raise UnknownPolicyError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            extra = self._extras.get(name)
            hint = f" (pip install 'tune-autonomic[{extra}]')" if extra else ""
            raise UsageError(f"{self.kind} {name!r} needs a missing package: {exc}{hint}") from exc
        cls: Any = getattr(module, attr)
        return cls  # type: ignore[no-any-return]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)
