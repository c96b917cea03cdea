"""The executor interface: run a command, put a file, open a stream, on one node.

An executor is the only way ``tune`` touches a node.  Strategies (local subprocess, simulated,
SSH) are classes behind this small interface, chosen by a family's ``protocol`` through
:func:`tune.remote.executor_for`.  Commands are given as argument lists and quoted by
:func:`quote_command`; a shell string is never assembled from unquoted data.
"""

from __future__ import annotations

import logging
import shlex
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence, Union

log = logging.getLogger(__name__)

#: A command is either an argv list (quoted for you) or a :class:`Shell` fragment you built
#: yourself from quoted pieces.
Command = Union[Sequence[str], "Shell"]


@dataclass(frozen=True)
class Shell:
    """A shell command line the caller has already quoted (pipes, redirections).

    Build it with :func:`quote_command` pieces; never from raw data.
    """

    line: str


def quote_command(command: Command) -> str:
    """Return one shell line for ``command``; every argv element becomes one literal word.

    >>> quote_command(["echo", "a b", "$(rm -rf /)"])
    "echo 'a b' '$(rm -rf /)'"
    """
    if isinstance(command, Shell):
        return command.line
    if isinstance(command, str):
        raise TypeError("pass commands as argument lists or Shell(...), not plain strings")
    return " ".join(shlex.quote(str(part)) for part in command)


@dataclass
class Result:
    """What a finished command gave back."""

    command: str
    exit_status: int
    stdout: str = ""
    stderr: str = ""
    host: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def failed(self) -> bool:
        return self.exit_status != 0


@dataclass
class Stream:
    """A long-running command whose output arrives line by line.

    ``lines()`` yields decoded lines as they come; ``close()`` stops the command.
    """

    command: str
    host: str
    _lines: Callable[[], Iterator[str]]
    _close: Callable[[], None]
    _closed: threading.Event = field(default_factory=threading.Event)

    def lines(self) -> Iterator[str]:
        return self._lines()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Executor(ABC):
    """Runs commands on one node.  Implementations must be thread-safe."""

    #: the name used in ``protocol="..."``
    protocol: str = ""

    def __init__(self, host: str) -> None:
        self.host = host

    @abstractmethod
    def run(self, command: Command, *, timeout: Optional[float] = None, check: bool = True,
            input: Optional[str] = None, env: Optional[dict[str, str]] = None) -> Result:
        """Run ``command`` to completion.

        With ``check`` a non-zero exit raises :class:`tune.errors.CommandFailed`; a timeout
        raises :class:`tune.errors.CommandTimeout`; an unreachable node
        :class:`tune.errors.HostUnreachable`.
        """

    @abstractmethod
    def put(self, local_path: str, remote_path: str, *, mode: Optional[int] = None) -> None:
        """Copy a local file to the node (parent directories must exist)."""

    @abstractmethod
    def stream(self, command: Command) -> Stream:
        """Start a long-running command and return its output as a :class:`Stream`."""

    def put_archive(self, local_archive: str, remote_dir: str, *, timeout: Optional[float] = None) -> None:
        """Copy an archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) and unpack it in ``remote_dir``."""
        import os
        name = os.path.basename(local_archive)
        self.run(["mkdir", "-p", remote_dir], timeout=timeout)
        target = remote_dir.rstrip("/") + "/" + name
        self.put(local_archive, target)
        if name.endswith(".zip"):
            cmd: Command = ["unzip", "-o", "-q", target, "-d", remote_dir]
        else:
            cmd = ["tar", "-x", "-f", target, "-C", remote_dir]
        self.run(cmd, timeout=timeout)

    def path(self, node_path: str) -> str:
        """Where ``node_path`` (a path on the node) is for this executor's commands.

        The identity for real nodes; simulated nodes live in a folder of their own.
        """
        return node_path

    def alive(self, timeout: float = 5.0) -> bool:
        """Cheap liveness check used by heartbeats."""
        try:
            return self.run(["true"], timeout=timeout, check=False).ok
        except Exception:  # noqa: BLE001 - any failure means not alive
            return False

    def close(self) -> None:
        """Release connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}>"
