"""Nodefiles: one host a line, ``#`` comments, ``user@host:port``; a repeated host is N slots.

As OAR and PBS nodefiles do, a host written N times offers N slots.  The order of first
appearance is kept: allocation strategies depend on it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable, Optional

from ..errors import NodefileError
from .model import NodeSpec, Source

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$")
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_LINE_RE = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^:@\s]+)(?::(?P<port>[^:\s]+))?$")


def parse_node_line(text: str, source: Source = Source()) -> NodeSpec:
    """Parse one ``[user@]host[:port]`` entry.

    >>> parse_node_line("root@dom0-a:2222")
    NodeSpec(host='dom0-a', user='root', port=2222, slots=1, key=None, address=None)
    """
    m = _LINE_RE.match(text.strip())
    if not m:
        raise NodefileError(f"bad nodefile line {text.strip()[:80]!r} (expected [user@]host[:port])",
                            file=source.file, line=source.line)
    user, host, port_text = m.group("user"), m.group("host"), m.group("port")
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise NodefileError(f"bad address [{host[:80]}]", file=source.file, line=source.line) from None
    elif not _HOST_RE.match(host):
        raise NodefileError(f"bad host name {host[:80]!r}", file=source.file, line=source.line)
    if user is not None and not _USER_RE.match(user):
        raise NodefileError(f"bad user name {user[:40]!r}", file=source.file, line=source.line)
    port: Optional[int] = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise NodefileError(f"bad port {port_text[:20]!r}", file=source.file, line=source.line)
        port = int(port_text)
    return NodeSpec(host=host, user=user, port=port, source=source)


def parse_nodefile_text(text: str, file: Optional[str] = None) -> list[NodeSpec]:
    """Parse a nodefile's text; repeated entries add slots to the first one."""
    order: list[tuple[Optional[str], str, Optional[int]]] = []
    specs: dict[tuple[Optional[str], str, Optional[int]], NodeSpec] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for word in line.split():  # PBS-style files may hold several hosts on one line
            spec = parse_node_line(word, Source(file, number))
            key = (spec.user, spec.host, spec.port)
            if key in specs:
                old = specs[key]
                specs[key] = NodeSpec(old.host, old.user, old.port, old.slots + 1, old.key, old.address, old.source)
            else:
                specs[key] = spec
                order.append(key)
    return [specs[k] for k in order]


def parse_nodefile(path: str) -> list[NodeSpec]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(4 * 1024 * 1024 + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise NodefileError(f"cannot read nodefile: {exc}", file=path) from None
    if len(text) > 4 * 1024 * 1024:
        raise NodefileError("nodefile too large", file=path)
    return parse_nodefile_text(text, path)


def format_nodefile(nodes: Iterable[NodeSpec]) -> str:
    """The inverse of :func:`parse_nodefile_text` (slots written as repeated lines)."""
    lines = []
    for n in nodes:
        word = (f"{n.user}@" if n.user else "") + (f"[{n.host}]" if ":" in n.host else n.host)
        if n.port is not None:
            word += f":{n.port}"
        lines.extend([word] * n.slots)
    return "\n".join(lines) + ("\n" if lines else "")
