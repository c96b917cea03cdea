"""RDL actions: what an action node does.

``Comp.method args`` · ``$arg.method`` · ``$arg.Comp.method`` · ``$new.method`` ·
``Comp++`` / ``Comp++ N`` · ``Comp--`` / ``$arg--`` / ``$new--`` · ``X.attr = value``.
Several actions in one node are separated by ``;`` and run in order.

>>> parse_actions("$arg.VM.migrate $arg2; Probe++ 2")
[Call(target=Target(base='arg', component=None, index=1, via='VM'), method='migrate', args=(Var(root='arg', path=(), index=2),)), Create(component='Probe', count=2)]
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import ExpressionError
from ..wdl.expr import Expr, parse_expression

_ID = r"[A-Za-z_][A-Za-z0-9_-]*"
_TARGET = r"(?:\$(?:arg\d*|new)|%s)(?:\.%s)?" % (_ID, _ID)
_CREATE_RE = re.compile(r"^(?P<comp>%s)\s*\+\+(?:\s*(?:\[\s*(?P<bn>[0-9]+)\s*\]|(?P<n>[0-9]+)))?$" % _ID)
_REMOVE_RE = re.compile(r"^(?P<target>%s)\s*--$" % _TARGET)
_ASSIGN_RE = re.compile(r"^(?P<target>%s)\.(?P<attr>%s)\s*=(?!=)\s*(?P<value>.*)$" % (_TARGET, _ID), re.S)
_CALL_RE = re.compile(r"^(?P<target>%s)\.(?P<method>%s)(?:\s+(?P<args>.*))?$" % (_TARGET, _ID), re.S)
MAX_ACTION_TEXT = 4096
MAX_CREATE = 10_000


@dataclass(frozen=True)
class Target:
    """Which instances an action addresses.

    ``base``: ``comp`` (every instance of ``component``), ``arg`` (the instance named by event
    argument ``index``), ``new`` (instances created earlier in this diagram run); ``via``
    follows the binding to that component type.
    """

    base: str
    component: Optional[str] = None
    index: int = 1
    via: Optional[str] = None

    def __str__(self) -> str:
        head = {"comp": self.component or "", "new": "$new"}.get(self.base, f"$arg{'' if self.index == 1 else self.index}")
        return head + (f".{self.via}" if self.via else "")

    @property
    def component_names(self) -> list[str]:
        return [c for c in (self.component, self.via) if c]


@dataclass(frozen=True)
class Call:
    target: Target
    method: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Create:
    component: str
    count: int = 1


@dataclass(frozen=True)
class Remove:
    target: Target


@dataclass(frozen=True)
class Assign:
    target: Target
    attribute: str
    value: Expr


Action = Union[Call, Create, Remove, Assign]


def _target(text: str) -> Target:
    head, _, via = text.partition(".")
    if head.startswith("$arg"):
        digits = head[4:]
        index = int(digits) if digits else 1
        if index < 1:
            raise ExpressionError("$arg0 does not exist")
        return Target("arg", index=index, via=via or None)
    if head == "$new":
        return Target("new", via=via or None)
    if via:
        raise ExpressionError(f"{text!r}: a component target cannot follow a binding (use $arg.{via})")
    return Target("comp", component=head)


def _split(text: str) -> list[str]:
    """Split on ``;`` outside quotes."""
    parts, buf, quote = [], [], ""
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == ";":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise ExpressionError(f"unterminated quote in {text[:80]!r}")
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def parse_action(text: str) -> Action:
    t = text.strip()
    m = _CREATE_RE.match(t)
    if m:
        n = int(m.group("n") or m.group("bn") or 1)
        if not 1 <= n <= MAX_CREATE:
            raise ExpressionError(f"{t!r}: count must be between 1 and {MAX_CREATE}")
        return Create(m.group("comp"), n)
    m = _REMOVE_RE.match(t)
    if m:
        return Remove(_target(m.group("target")))
    m = _ASSIGN_RE.match(t)
    if m:
        return Assign(_target(m.group("target")), m.group("attr"), parse_expression(m.group("value").strip()))
    m = _CALL_RE.match(t)
    if m:
        target_text = m.group("target")
        method = m.group("method")
        raw_args = m.group("args") or ""
        try:
            words = shlex.split(raw_args, posix=True) if raw_args.strip() else []
        except ValueError as exc:
            raise ExpressionError(f"bad arguments in {t[:80]!r}: {exc}") from None
        return Call(_target(target_text), method, tuple(parse_expression(w) for w in words))
    raise ExpressionError(f"cannot read action {t[:80]!r} (expected Comp.method args, $arg.method, "
                          "Comp++ N, Comp--, X.attr = value)")


def parse_actions(text: str) -> list[Action]:
    if len(text) > MAX_ACTION_TEXT:
        raise ExpressionError(f"action text longer than {MAX_ACTION_TEXT} characters")
    actions = [parse_action(p) for p in _split(text)]
    if not actions:
        raise ExpressionError("empty action")
    return actions


def _quote_arg(text: str) -> str:
    """Quote an argument; a bare ``=x`` or ``--`` would read back as an assignment or a removal."""
    q = shlex.quote(text)
    return f"'{q}'" if q.startswith(("=", "-")) else q


def unparse_action(action: Action) -> str:
    from ..wdl.expr import unparse
    if isinstance(action, Create):
        return f"{action.component}++ {action.count}"
    if isinstance(action, Remove):
        return f"{action.target}--"
    if isinstance(action, Assign):
        return f"{action.target}.{action.attribute} = {unparse(action.value)}"
    args = " ".join(_quote_arg(unparse(a)) for a in action.args)
    return f"{action.target}.{action.method}" + (f" {args}" if args else "")
