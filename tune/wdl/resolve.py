"""Turn a wrapper ``key`` into a Python class, with errors that name the file and line.

Only classes an application declares in its wrappers are ever imported; event and diagram
text can name methods of those wrappers, never arbitrary code.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Optional

from ..errors import WrapperResolutionError
from .model import Wrapper, WrapperMethod

_cache: dict[str, type] = {}


def resolve_class(key: str, *, file: Optional[str] = None, line: Optional[int] = None,
                  search_path: Optional[str] = None) -> type:
    if key in _cache:
        return _cache[key]
    module_name, _, class_name = key.rpartition(".")
    added = False
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
        added = True
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's file's fault
        raise WrapperResolutionError(f"cannot import {module_name!r} for key {key!r}: "
                                     f"{type(exc).__name__}: {exc}", file=file, line=line) from None
    finally:
        if added:
            try:
                sys.path.remove(search_path)  # type: ignore[arg-type]
            except ValueError:
                pass
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise WrapperResolutionError(f"{module_name} has no class {class_name!r} (key {key!r})",
                                     file=file, line=line)
    _cache[key] = cls
    return cls


def resolve_method(m: WrapperMethod, search_path: Optional[str] = None) -> tuple[type, Any]:
    cls = resolve_class(m.key, file=m.source.file, line=m.source.line, search_path=search_path)
    fn = getattr(cls, m.method, None)
    if fn is None or not callable(fn):
        raise WrapperResolutionError(f"class {m.key} has no method {m.method!r} (wrapper method {m.name!r})",
                                     file=m.source.file, line=m.source.line)
    return cls, fn


def check_wrapper(wrapper: Wrapper, search_path: Optional[str] = None) -> list[WrapperResolutionError]:
    """Every problem of a wrapper's keys, not only the first."""
    problems = []
    for m in wrapper.methods.values():
        try:
            resolve_method(m, search_path)
        except WrapperResolutionError as exc:
            problems.append(exc)
    return problems
