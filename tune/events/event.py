"""Events: a name and arguments (``overload VM1``), checked before they reach the manager.

Events come from untrusted places (a node pipe anyone on the node can write to, a socket), so
they are bounded and checked here: names like component names, few short printable arguments.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import ValidationError

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
ARG_RE = re.compile(r"^[^\x00-\x1f\x7f]{0,256}$")
MAX_ARGS = 16
MAX_LINE = 4096
_ids = itertools.count(1)


class EventError(ValidationError):
    """A malformed or hostile event."""


@dataclass(frozen=True)
class Event:
    name: str
    args: tuple[str, ...] = ()
    source: str = "api"
    received_at: float = field(default_factory=time.monotonic, compare=False)
    id: int = field(default_factory=lambda: next(_ids), compare=False)

    def __str__(self) -> str:
        return " ".join((self.name,) + self.args)


def make_event(name: str, args: Sequence[str] = (), source: str = "api") -> Event:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EventError(f"bad event name {str(name)[:80]!r}")
    if len(args) > MAX_ARGS:
        raise EventError(f"event {name}: more than {MAX_ARGS} arguments")
    clean = []
    for a in args:
        if not isinstance(a, str) or not ARG_RE.match(a):
            raise EventError(f"event {name}: bad argument {str(a)[:80]!r} (printable, at most 256 characters)")
        clean.append(a)
    return Event(name, tuple(clean), source)


def parse_pipe_line(line: str, source: str = "pipe") -> Event:
    """``NAME;ARG;ARG`` as programs on a node write it into ``tune.pipe``."""
    if len(line) > MAX_LINE:
        raise EventError(f"event line longer than {MAX_LINE} characters")
    text = line.strip()
    if not text:
        raise EventError("empty event line")
    parts = [p.strip() for p in text.split(";")]
    return make_event(parts[0], [p for p in parts[1:] if p != ""], source)
