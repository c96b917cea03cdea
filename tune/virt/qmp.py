"""A small QMP (QEMU Machine Protocol) client.

QMP is line-delimited JSON over a socket: QEMU sends a greeting, the client negotiates
capabilities with ``qmp_capabilities``, then sends ``{"execute": ..., "arguments": ...}`` and
reads replies; asynchronous ``{"event": ...}`` messages may arrive at any time and are buffered
here until someone asks for them.

Every failure (no socket, timeout, QEMU gone, an ``error`` reply) is a
:class:`tune.errors.DriverError`; an ``error`` reply is the subclass :class:`QMPError`, which keeps
QEMU's ``class`` and ``desc``.

>>> QMPError("migrate", {"class": "GenericError", "desc": "boom"}).error_class
'GenericError'
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from typing import Any, Optional, Union

from ..errors import DriverError

log = logging.getLogger(__name__)

#: a unix socket path, or a ``(host, port)`` TCP address
Address = Union[str, tuple[str, int]]


class QMPError(DriverError):
    """QEMU answered a command with an ``error`` object."""

    def __init__(self, command: str, error: dict[str, Any], *, host: Optional[str] = None) -> None:
        self.error_class = str(error.get("class", ""))
        self.desc = str(error.get("desc", ""))
        super().__init__(f"QMP {command}: {self.error_class}: {self.desc}", host=host, command=command)


class QMPClient:
    """One QMP connection.  Thread-safe: commands are serialised by a lock.

    ``connect_timeout`` bounds the wait for the socket to appear and accept (QEMU creates it a
    little after it starts); ``timeout`` bounds every command.
    """

    def __init__(self, address: Address, *, timeout: float = 30.0, connect_timeout: float = 10.0,
                 host: Optional[str] = None) -> None:
        self.address = address
        self.timeout = timeout
        self.host = host
        self.greeting: dict[str, Any] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=10000)
        self._lock = threading.RLock()
        self._buf = b""
        self._sock = self._connect(connect_timeout)
        try:
            self.greeting = self._read_message(self.timeout)
            if "QMP" not in self.greeting:
                raise DriverError(f"not a QMP greeting from {address}: {self.greeting!r}", host=host)
            self.execute("qmp_capabilities")
        except BaseException:
            self._sock.close()
            raise

    # --- connection ---------------------------------------------------------------------
    def _connect(self, connect_timeout: float) -> socket.socket:
        deadline = time.monotonic() + connect_timeout
        last: Optional[BaseException] = None
        while True:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(max(0.1, min(self.timeout, deadline - time.monotonic())))
            try:
                sock.connect(self.address)
                return sock
            except (FileNotFoundError, ConnectionRefusedError, socket.timeout, OSError) as exc:
                sock.close()
                last = exc
            if time.monotonic() >= deadline:
                raise DriverError(f"cannot connect to QMP at {self.address}: {last}", host=self.host)
            time.sleep(0.02)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:  # pragma: no cover - closing twice
            pass

    def __enter__(self) -> "QMPClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- wire ---------------------------------------------------------------------------
    def _read_message(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DriverError(f"QMP timeout after {timeout:g}s on {self.address}", host=self.host)
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                raise DriverError(f"QMP timeout after {timeout:g}s on {self.address}",
                                  host=self.host) from None
            except OSError as exc:
                raise DriverError(f"QMP connection lost on {self.address}: {exc}", host=self.host) from exc
            if not chunk:
                raise DriverError(f"QMP connection closed by QEMU on {self.address}", host=self.host)
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except ValueError as exc:
            raise DriverError(f"bad QMP message {line[:200]!r}", host=self.host) from exc
        if not isinstance(msg, dict):
            raise DriverError(f"bad QMP message {line[:200]!r}", host=self.host)
        return msg

    def execute(self, command: str, arguments: Optional[dict[str, Any]] = None, *,
                timeout: Optional[float] = None) -> Any:
        """Run one QMP command and return its ``return`` value."""
        limit = self.timeout if timeout is None else timeout
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        with self._lock:
            try:
                self._sock.sendall(json.dumps(msg).encode() + b"\n")
            except OSError as exc:
                raise DriverError(f"QMP connection lost on {self.address}: {exc}", host=self.host,
                                  command=command) from exc
            deadline = time.monotonic() + limit
            while True:
                reply = self._read_message(max(0.0, deadline - time.monotonic()) or 1e-3)
                if "event" in reply:
                    log.debug("QMP event %s", reply.get("event"))
                    self._events.append(reply)
                    continue
                if "error" in reply:
                    raise QMPError(command, reply["error"], host=self.host)
                if "return" in reply:
                    return reply["return"]
                log.debug("ignoring QMP message %r", reply)

    def cmd(self, command: str, **arguments: Any) -> Any:
        """``execute`` with keyword arguments (``cmd("migrate", uri="tcp:...")``)."""
        return self.execute(command, arguments or None)

    # --- events -------------------------------------------------------------------------
    def events(self, name: Optional[str] = None, *, clear: bool = True) -> list[dict[str, Any]]:
        """Events received so far (only those named ``name`` if given); removes them by default."""
        with self._lock:
            got = [e for e in self._events if name is None or e.get("event") == name]
            if clear:
                for e in got:
                    self._events.remove(e)
            return got

    def wait_event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the next event called ``name`` (one already buffered counts)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for e in list(self._events):
                    if e.get("event") == name:
                        self._events.remove(e)
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DriverError(f"no QMP event {name} within {timeout:g}s", host=self.host)
                try:
                    msg = self._read_message(remaining)
                except DriverError:
                    if time.monotonic() >= deadline - 1e-3:
                        raise DriverError(f"no QMP event {name} within {timeout:g}s",
                                          host=self.host) from None
                    raise
                if "event" in msg:
                    self._events.append(msg)

    def __repr__(self) -> str:
        return f"<QMPClient {self.address}>"
