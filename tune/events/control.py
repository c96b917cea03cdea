"""The running manager's control socket: ``tune event``, ``tune status``, ``tune undeploy``.

A Unix socket, mode 0600 in a 0700 state directory, that also checks the peer's uid
(``SO_PEERCRED``): only the user who runs the manager (or root) may talk to it.  One JSON
request a line, one JSON reply a line.  No port is opened.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import struct
import threading
from typing import Any, Callable, Optional

from ..errors import ManagerError

log = logging.getLogger(__name__)
MAX_REQUEST = 64 * 1024
SOCKET_NAME = "manager.sock"
#: connections served at once (more are answered "busy" and closed) and idle seconds allowed
MAX_CLIENTS = 64
IDLE_TIMEOUT = 60.0

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _peer_uid(sock: socket.socket) -> Optional[int]:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return uid
    except (OSError, AttributeError):  # pragma: no cover - non-Linux
        return None


class _RequestHandler(socketserver.StreamRequestHandler):
    server: "_Server"
    timeout = IDLE_TIMEOUT  # a client that stops mid-line does not hold its thread forever

    def handle(self) -> None:
        try:
            self._handle()
        except OSError:  # timed out or gone
            return

    def _handle(self) -> None:
        uid = _peer_uid(self.connection)
        if uid is not None and uid not in (0, os.geteuid()):
            log.warning("control socket: refused uid %s", uid)
            self._reply({"ok": False, "error": "permission denied"})
            return
        while True:
            line = self.rfile.readline(MAX_REQUEST + 1)
            if not line:
                return
            if len(line) > MAX_REQUEST:
                self._reply({"ok": False, "error": "request too large"})
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                self._reply({"ok": False, "error": f"bad request: {exc}"})
                continue
            try:
                reply = self.server.handler(request)
            except Exception as exc:  # noqa: BLE001 - a bad request never kills the server
                log.exception("control request failed")
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self._reply(reply)

    def _reply(self, obj: dict[str, Any]) -> None:
        try:
            self.wfile.write(json.dumps(obj, default=str).encode() + b"\n")
            self.wfile.flush()
        except OSError:
            pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: str, handler: Handler) -> None:
        self.handler = handler
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(path, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # a connection flood gets no thread each
            try:
                request.sendall(b'{"ok": false, "error": "busy"}\n')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class ControlServer:
    """Serve ``handler(request) -> reply`` on ``state_dir/manager.sock``."""

    def __init__(self, state_dir: str, handler: Handler) -> None:
        self.path = os.path.join(state_dir, SOCKET_NAME)
        self.handler = handler
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if os.path.exists(self.path):
            if _alive(self.path):
                raise ManagerError(f"a manager is already running on {self.path}")
            os.unlink(self.path)
        old = os.umask(0o177)
        try:
            self._server = _Server(self.path, self.handler)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, name="tune-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def request(state_dir: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the manager running in ``state_dir``."""
    path = os.path.join(state_dir, SOCKET_NAME)
    if not os.path.exists(path):
        raise ManagerError(f"no manager running (no socket at {path})")
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise ManagerError(f"cannot talk to the manager at {path}: {exc}") from None
    finally:
        s.close()
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError:
        raise ManagerError(f"bad reply from the manager at {path}") from None
    if not reply.get("ok", False):
        raise ManagerError(f"manager: {reply.get('error', 'request failed')}")
    return reply
