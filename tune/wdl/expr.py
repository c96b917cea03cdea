"""Parameter expressions of WDL and RDL: ``$this.memory``, ``$Comp.port``, ``$arg2``, literals.

An expression is parsed once into a small tree (:class:`Literal`, :class:`Var`,
:class:`Template`) and evaluated later, as many times as needed, against a :class:`Scope`
(the instance, the event's arguments, the System Representation).  Nothing is ever ``eval``'d.

Syntax: ``$name(.name)*`` or ``${name(.name)*}`` inside free text; ``$$`` is a dollar sign.

>>> parse_expression("$this.dirLocal/probe.log")
Template(parts=(Var(root='this', path=('dirLocal',), index=None), Literal(value='/probe.log')))
>>> parse_expression("$arg2")
Var(root='arg', path=(), index=2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence, Union

from ..errors import ExpressionError

_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_VAR_RE = re.compile(r"\$(?:\{(?P<braced>%s(?:\.%s)*)\}|(?P<plain>%s(?:\.%s)*))" % (_IDENT, _IDENT, _IDENT, _IDENT))
_ARG_RE = re.compile(r"^arg(\d*)$")
MAX_EXPRESSION = 4096


@dataclass(frozen=True)
class Literal:
    value: str


@dataclass(frozen=True)
class Var:
    """``$root.path...``; ``root`` is ``this``, ``arg`` (with ``index``), ``new`` or a component name."""

    root: str
    path: tuple[str, ...] = ()
    index: Optional[int] = None  # for $argN (1-based); $arg is index None == 1

    def __str__(self) -> str:
        head = "arg" + (str(self.index) if self.index else "") if self.root == "arg" else self.root
        return "$" + ".".join((head,) + self.path)


@dataclass(frozen=True)
class Template:
    parts: tuple[Union[Literal, Var], ...]


Expr = Union[Literal, Var, Template]


def _make_var(text: str) -> Var:
    names = text.split(".")
    m = _ARG_RE.match(names[0])
    if m:
        index = int(m.group(1)) if m.group(1) else None
        if index == 0:
            raise ExpressionError("$arg0 does not exist; arguments count from $arg1 (= $arg)")
        return Var("arg", tuple(names[1:]), index)
    return Var(names[0], tuple(names[1:]))


def parse_expression(text: str) -> Expr:
    """Parse a parameter value.  Raises :class:`ExpressionError` on a lone or malformed ``$``."""
    if text is None:
        raise ExpressionError("missing value")
    if len(text) > MAX_EXPRESSION:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION} characters")
    parts: list[Union[Literal, Var]] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            buf.append(ch)
            i += 1
            continue
        if text.startswith("$$", i):
            buf.append("$")
            i += 2
            continue
        m = _VAR_RE.match(text, i)
        if not m:
            raise ExpressionError(f"bad variable at {text[i:i + 20]!r} in {text[:80]!r}")
        if buf:
            parts.append(Literal("".join(buf)))
            buf = []
        parts.append(_make_var(m.group("braced") or m.group("plain")))
        i = m.end()
    if buf:
        parts.append(Literal("".join(buf)))
    if not parts:
        return Literal("")
    if len(parts) == 1:
        return parts[0]
    return Template(tuple(parts))


def variables(expr: Expr) -> Iterator[Var]:
    if isinstance(expr, Var):
        yield expr
    elif isinstance(expr, Template):
        for p in expr.parts:
            if isinstance(p, Var):
                yield p


def unparse(expr: Expr) -> str:
    """Text that parses back to ``expr``."""
    if isinstance(expr, Literal):
        return expr.value.replace("$", "$$")
    if isinstance(expr, Var):
        return "${" + str(expr)[1:] + "}"
    return "".join(unparse(p) for p in expr.parts)


class Resolver(Protocol):
    """What evaluation needs from the running system (implemented by the manager's scope)."""

    def instance_attribute(self, instance: Any, name: str) -> Any: ...

    def find_instance(self, name: str) -> Any: ...

    def bound(self, instance: Any, component: str) -> list[Any]: ...

    def instances(self, component: str) -> list[Any]: ...


@dataclass
class Scope:
    """The values variables refer to when an expression is evaluated."""

    resolver: Resolver
    this: Any = None
    args: Sequence[str] = ()
    new: Sequence[Any] = ()
    locals: dict[str, Any] = field(default_factory=dict)


def _walk(resolver: Resolver, value: Any, path: Sequence[str], where: str) -> Any:
    for name in path:
        if isinstance(value, list):
            value = [resolver.instance_attribute(v, name) for v in value]
        elif value is None:
            raise ExpressionError(f"{where}: nothing to take .{name} of")
        else:
            value = resolver.instance_attribute(value, name)
    return value


def evaluate(expr: Expr, scope: Scope) -> Any:
    """Evaluate; a lone variable keeps its type (an instance, a list), templates give strings."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Template):
        out = []
        for p in expr.parts:
            v = evaluate(p, scope)
            if isinstance(v, list):
                v = ",".join(str(_display(x)) for x in v)
            out.append(str(_display(v)))
        return "".join(out)
    r = scope.resolver
    where = str(expr)
    if expr.root == "this":
        if scope.this is None:
            raise ExpressionError(f"{where}: no $this here")
        return _walk(r, scope.this, expr.path, where)
    if expr.root == "arg":
        idx = (expr.index or 1) - 1
        if idx >= len(scope.args):
            if idx >= 1 and not expr.path:
                return None  # $arg2.. are optional (the seed's destination host, say)
            raise ExpressionError(f"{where}: the event has {len(scope.args)} argument(s)")
        raw = scope.args[idx]
        if not expr.path:
            return raw
        return _walk(r, r.find_instance(raw), expr.path, where)
    if expr.root == "new":
        if not scope.new:
            raise ExpressionError(f"{where}: no instances were created yet ($new)")
        base: Any = list(scope.new) if len(scope.new) > 1 else scope.new[0]
        return _walk(r, base, expr.path, where)
    if expr.root in scope.locals:
        return _walk(r, scope.locals[expr.root], expr.path, where)
    # $Comp.ATTR: through this instance's binding to Comp, or all instances of Comp
    targets = r.bound(scope.this, expr.root) if scope.this is not None else r.instances(expr.root)
    value: Any = targets[0] if len(targets) == 1 else list(targets)
    if not expr.path:
        return value
    return _walk(r, value, expr.path, where)


def _display(v: Any) -> Any:
    name = getattr(v, "srname", None)
    return name if name is not None else v


EvaluateFn = Callable[[Expr, Scope], Any]
