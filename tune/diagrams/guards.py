"""Guards on choice transitions: a tiny expression language, parsed by hand, never ``eval``'d.

Grammar::

    guard   := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := operand (("=="|"!="|"<"|"<="|">"|">=") operand)?
    operand := NUMBER | STRING | "true" | "false" | $var(.name)* | Comp.count | Comp.attr | "(" or ")"

>>> g = parse_guard("$arg.cpu >= 90 and not VM.count > 4")
>>> g.kind
'and'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Optional, Union

from ..errors import ExpressionError
from ..wdl.expr import Var, parse_expression

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>|\(|\))
  | (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*\}?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
""", re.X)
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
MAX_GUARD = 1024
MAX_DEPTH = 64


@dataclass(frozen=True)
class Guard:
    """A node of the guard tree: ``kind`` in or/and/not/cmp/num/str/bool/var/count/attr."""

    kind: str
    children: tuple["Guard", ...] = ()
    value: Any = None

    def __str__(self) -> str:
        if self.kind in ("or", "and"):
            return "(" + f" {self.kind} ".join(str(c) for c in self.children) + ")"
        if self.kind == "not":
            return f"not {self.children[0]}"
        if self.kind == "cmp":
            a, b = (f"({c})" if c.kind in ("cmp", "not") else str(c) for c in self.children)
            return f"{a} {self.value} {b}"
        if self.kind == "str":
            return '"' + str(self.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.kind == "bool":
            return "true" if self.value else "false"
        if self.kind == "var":
            return str(self.value)
        if self.kind in ("count", "attr"):
            return ".".join(self.value)
        return repr(self.value) if self.kind != "num" else _num_text(self.value)


def _num_text(v: float) -> str:
    # never an exponent: the tokenizer reads plain decimals only
    return str(int(v)) if float(v).is_integer() else format(Decimal(repr(float(v))), "f")


def _tokenize(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_GUARD:
        raise ExpressionError(f"guard longer than {MAX_GUARD} characters")
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ExpressionError(f"unexpected {text[pos:pos + 10]!r} in guard {text[:80]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group()))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, why: str) -> ExpressionError:
        return ExpressionError(f"{why} in guard {self.text[:80]!r}")

    def parse(self) -> Guard:
        if not self.tokens:
            raise self.fail("empty guard")
        g = self.or_()
        if self.peek()[0] != "eof":
            raise self.fail(f"unexpected {self.peek()[1]!r}")
        return g

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("guard nested too deeply")

    def or_(self) -> Guard:
        items = [self.and_()]
        while self.peek() == ("name", "or"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Guard("or", tuple(items))

    def and_(self) -> Guard:
        items = [self.not_()]
        while self.peek() == ("name", "and"):
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else Guard("and", tuple(items))

    def not_(self) -> Guard:
        if self.peek() == ("name", "not"):
            self.take()
            self._nest()
            g = Guard("not", (self.not_(),))
            self.depth -= 1
            return g
        return self.cmp()

    def cmp(self) -> Guard:
        left = self.operand()
        kind, text = self.peek()
        if kind == "op" and text in COMPARISONS:
            self.take()
            return Guard("cmp", (left, self.operand()), text)
        return left

    def operand(self) -> Guard:
        kind, text = self.take()
        if kind == "num":
            return Guard("num", value=float(text))
        if kind == "str":
            body = text[1:-1]
            return Guard("str", value=re.sub(r"\\(.)", r"\1", body))
        if kind == "op" and text == "(":
            self._nest()
            g = self.or_()
            self.depth -= 1
            if self.take() != ("op", ")"):
                raise self.fail("missing ')'")
            return g
        if kind == "var":
            expr = parse_expression(text)
            if not isinstance(expr, Var):
                raise self.fail(f"bad variable {text!r}")
            return Guard("var", value=expr)
        if kind == "name":
            if text in ("true", "false"):
                return Guard("bool", value=text == "true")
            if text in ("and", "or", "not"):
                raise self.fail(f"misplaced {text!r}")
            parts = tuple(text.split("."))
            if len(parts) == 2 and parts[1] == "count":
                return Guard("count", value=parts)
            if len(parts) == 2:
                return Guard("attr", value=parts)
            raise self.fail(f"bare word {text!r} (quote strings: \"{text}\")")
        raise self.fail("expected a value" if kind == "eof" else f"unexpected {text!r}")


def parse_guard(text: str) -> Guard:
    return _Parser(text).parse()


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    def num(x: Any) -> Optional[float]:
        if isinstance(x, bool):
            return float(x)
        if isinstance(x, (int, float)):
            return float(x)
        try:
            return float(str(x))
        except ValueError:
            return None
    na, nb = num(a), num(b)
    if na is not None and nb is not None:
        return na, nb
    return str(a), str(b)


def evaluate_guard(g: Guard, lookup: Callable[[Guard], Any]) -> bool:
    """Evaluate ``g``; ``lookup`` resolves ``var``, ``count`` and ``attr`` leaves."""
    return bool(_value(g, lookup))


def _value(g: Guard, lookup: Callable[[Guard], Any]) -> Any:
    k = g.kind
    if k == "or":
        return any(_value(c, lookup) for c in g.children)
    if k == "and":
        return all(_value(c, lookup) for c in g.children)
    if k == "not":
        return not _value(g.children[0], lookup)
    if k == "cmp":
        a, b = _coerce(_value(g.children[0], lookup), _value(g.children[1], lookup))
        op = g.value
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        try:
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        except TypeError:
            raise ExpressionError(f"cannot compare {a!r} {op} {b!r}") from None
    if k in ("num", "str", "bool"):
        return g.value
    return lookup(g)


Operand = Union[Guard]
