"""``~/.ssh/config`` for the SSH executor: aliases, wildcards, ``ProxyJump``.

A host of a nodefile or inventory may be an alias of the user's SSH configuration, as it is for
``ssh`` itself.  :func:`resolve_ssh_config` answers what OpenSSH would use to connect to it
(first value wins, ``Host`` blocks in file order, ``*`` / ``?`` / ``!`` patterns), through
:class:`paramiko.SSHConfig`.  Values given explicitly (nodefile ``user@host:port``, inventory
``ansible_user``) are the caller's to prefer; this module only reads the file.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..errors import ParseError

DEFAULT_PATH = "~/.ssh/config"


def _proxy_jumps(value: Optional[str]) -> list[str]:
    if not value or value.strip().lower() == "none":
        return []
    return [hop.strip() for hop in value.split(",") if hop.strip()]


def resolve_ssh_config(host: str, path: Optional[str] = DEFAULT_PATH) -> dict[str, Any]:
    """What the SSH configuration at ``path`` says about connecting to ``host``.

    Returns ``hostname`` (the real name or address; ``host`` itself when not aliased), ``user``
    and ``port`` (None when not set), ``identityfile`` (list of paths, ``~`` expanded; may be
    empty), ``proxyjump`` (the raw value or None), ``proxyjumps`` (its hops as a list),
    ``proxycommand`` (or None) and ``options`` (every other key paramiko returned, lower-case).
    A missing file is an empty configuration; an unreadable or malformed one raises
    :class:`tune.errors.ParseError`.
    """
    import paramiko

    found: dict[str, Any] = {"hostname": host}
    full = os.path.expanduser(path) if path else None
    if full and os.path.exists(full):
        try:
            config = paramiko.SSHConfig.from_path(full)
            found = dict(config.lookup(host))
        except (OSError, UnicodeDecodeError) as exc:
            raise ParseError(f"cannot read SSH config: {exc}", file=full) from None
        except paramiko.ssh_exception.ConfigParseError as exc:
            raise ParseError(f"bad SSH config: {exc}", file=full) from None
        except Exception as exc:  # noqa: BLE001 - paramiko raises plain errors for odd lines
            raise ParseError(f"bad SSH config: {type(exc).__name__}: {exc}", file=full) from None
    port_text = found.pop("port", None)
    port: Optional[int] = None
    if port_text is not None:
        text = str(port_text).strip()
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
            raise ParseError(f"bad Port {text[:20]!r} for host {host[:80]!r}", file=full)
        port = int(text)
    proxyjump = found.pop("proxyjump", None)
    proxycommand = found.pop("proxycommand", None)
    if isinstance(proxycommand, str) and proxycommand.strip().lower() == "none":
        proxycommand = None
    identity = found.pop("identityfile", None) or []
    return {
        "hostname": found.pop("hostname", host) or host,
        "user": found.pop("user", None),
        "port": port,
        "identityfile": [os.path.expanduser(p) for p in identity],
        "proxyjump": proxyjump,
        "proxyjumps": _proxy_jumps(proxyjump),
        "proxycommand": proxycommand,
        "options": found,
    }
