"""Run commands on real hosts over SSH (paramiko).

What a manager of many hosts needs, and what the naive loops get wrong:

- **one connection per host, reused**: a process-wide pool hands every executor for the same
  ``(user, host, port, key, known hosts, policy)`` the same paramiko transport; commands are
  channels on it (about 1 ms instead of a 20-150 ms handshake).  A lost transport is
  reconnected on the next command.  Concurrent channels per connection are bounded
  (``max_sessions``, sshd's ``MaxSessions`` defaults to 10);
- **bounded parallel connects**: a process-wide semaphore (10 by default,
  :func:`set_max_parallel_connects`) so that connecting to 100 hosts at once does not trip
  sshd's ``MaxStartups`` ("Error reading SSH protocol banner");
- **timeouts and retries**: connect timeout, retries with exponential backoff for network
  errors only (an authentication failure or a host-key problem is not retried), a per-command
  timeout that raises :class:`~tune.errors.CommandTimeout`, closes the channel and kills the
  remote process group;
- **host keys**: ``accept-new`` by default, ``strict``, ``insecure`` (see
  :mod:`tune.remote.hostkeys`);
- errors that name the host and the command: :class:`~tune.errors.HostUnreachable` (refused,
  timeout, no route, lost connection), :class:`AuthenticationFailed` (key refused),
  :class:`~tune.errors.HostKeyError`, :class:`~tune.errors.CommandFailed`.

Commands are argument lists quoted by :func:`~tune.remote.base.quote_command` (or a
:class:`~tune.remote.base.Shell` the caller quoted); the remote login shell parses them.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import paramiko

from ..errors import (CommandFailed, CommandTimeout, ExecutorError, HostKeyError, HostUnreachable,
                      UsageError)
from .base import Command, Executor, Result, Stream, quote_command
from .hostkeys import (POLICIES, KnownHosts, TunePolicy, changed_key_error, default_known_hosts,
                       host_key_name)
from .local import MAX_LINE_BYTES, bounded_lines

log = logging.getLogger(__name__)

__all__ = ["SSHExecutor", "AuthenticationFailed", "set_max_parallel_connects",
           "connect_stats", "close_all"]


class AuthenticationFailed(HostUnreachable):
    """The host answered but refused our key (not retried)."""


# -- process-wide connect limiter ----------------------------------------------------------
class _ConnectLimiter:
    """A resizable semaphore that also records the peak number of connects in flight."""

    def __init__(self, limit: int) -> None:
        self._cond = threading.Condition()
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self.total = 0

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise UsageError("max parallel connects must be >= 1")
        with self._cond:
            self.limit = limit
            self._cond.notify_all()

    def __enter__(self) -> "_ConnectLimiter":
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1
            self.total += 1
            self.peak = max(self.peak, self.in_flight)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def reset_stats(self) -> None:
        with self._cond:
            self.peak = self.in_flight
            self.total = 0


_limiter = _ConnectLimiter(int(os.environ.get("TUNE_SSH_MAX_CONNECTS", "10")))


def set_max_parallel_connects(limit: int) -> None:
    """How many SSH handshakes may be in flight at once in this process (default 10)."""
    _limiter.set_limit(limit)


def connect_stats(reset: bool = False) -> dict[str, int]:
    """``limit``, ``in_flight``, ``peak`` and ``total`` handshakes (for tests and benchmarks)."""
    stats = {"limit": _limiter.limit, "in_flight": _limiter.in_flight, "peak": _limiter.peak,
             "total": _limiter.total}
    if reset:
        _limiter.reset_stats()
    return stats


# -- pooled connections --------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    host: str
    port: int
    user: str
    key_filename: Optional[str]
    known_hosts: str
    policy: str


class _Connection:
    """One SSH transport to one host, shared by every executor with the same :class:`_Key`."""

    def __init__(self, key: _Key, max_sessions: int) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.client: Optional[paramiko.SSHClient] = None
        self.sftp: Optional[paramiko.SFTPClient] = None
        self.sftp_lock = threading.Lock()
        self.sessions = threading.BoundedSemaphore(max_sessions)
        self.refs = 0
        self.generation = 0

    def transport(self) -> Optional[paramiko.Transport]:
        client = self.client
        t = client.get_transport() if client is not None else None
        return t if t is not None and t.is_active() else None

    def drop(self) -> None:
        """Forget a dead transport (the next command reconnects)."""
        client, self.client = self.client, None
        sftp, self.sftp = self.sftp, None
        for obj in (sftp, client):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - closing a dead link
                    pass


_pool: dict[_Key, _Connection] = {}
_pool_lock = threading.Lock()


def close_all() -> None:
    """Close every pooled connection of this process."""
    with _pool_lock:
        conns = list(_pool.values())
        _pool.clear()
    for conn in conns:
        with conn.lock:
            conn.drop()


_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT,
                   errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.EHOSTDOWN}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PID_MARK = "TUNE-PGID:"


class SSHExecutor(Executor):
    """Executor for one host over SSH.

    Parameters
    ----------
    host:
        name or address of the node.
    user, port, key_filename:
        login; without ``key_filename`` the usual ``~/.ssh`` keys and the agent are tried.
    known_hosts:
        the manager's known-hosts file (``$TUNE_KNOWN_HOSTS`` or
        ``~/.local/share/tune/known_hosts``); never the user's ``~/.ssh/known_hosts``.
    host_key_policy:
        ``accept-new`` (default), ``strict`` or ``insecure``.
    connect_timeout, retries, backoff:
        each connect attempt is bounded by ``connect_timeout``; network failures are retried
        ``retries`` times, waiting ``backoff * 2**i`` seconds.
    command_timeout:
        default timeout of :meth:`run` (``None``: wait forever).
    max_sessions:
        concurrent channels on the pooled connection (sshd ``MaxSessions``, 10 by default).
    """

    protocol = "ssh"

    def __init__(self, host: str, *, user: Optional[str] = None, port: Optional[int] = None,
                 key_filename: Optional[str] = None, known_hosts: Optional[str] = None,
                 host_key_policy: str = "accept-new", connect_timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.5, command_timeout: Optional[float] = None,
                 max_sessions: int = 8, ssh_config: Optional[str] = None, _jump_depth: int = 0,
                 **_ignored: object) -> None:
        super().__init__(host)
        if host_key_policy not in POLICIES:
            raise UsageError(f"unknown host_key_policy {host_key_policy!r}; "
                             f"use one of {', '.join(POLICIES)}")
        # ~/.ssh/config (or $TUNE_SSH_CONFIG) fills what the nodefile or family did not say:
        # HostName (aliases), User, Port, IdentityFile and ProxyJump
        from ..adl.sshconfig import resolve_ssh_config
        config_path = ssh_config if ssh_config is not None else os.environ.get("TUNE_SSH_CONFIG", "~/.ssh/config")
        cfg = resolve_ssh_config(host, config_path or None)
        self.address = str(cfg.get("hostname") or host)
        self.user = user or cfg.get("user") or "root"
        self.port = int(port or cfg.get("port") or 22)
        if key_filename is None:
            key_filename = next((k for k in cfg.get("identityfile") or [] if os.path.exists(k)), None)
        self.key_filename = key_filename
        self.proxyjumps: list[str] = list(cfg.get("proxyjumps") or [])
        self._jump_depth = _jump_depth
        self._jump: Optional["SSHExecutor"] = None
        self._ssh_config = config_path
        self.known_hosts = KnownHosts(known_hosts or default_known_hosts())
        self.host_key_policy = host_key_policy
        self.connect_timeout = connect_timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.command_timeout = command_timeout
        key = _Key(host, self.port, self.user, os.path.abspath(key_filename) if key_filename else None,
                   self.known_hosts.path, host_key_policy)
        with _pool_lock:
            conn = _pool.get(key)
            if conn is None:
                conn = _pool[key] = _Connection(key, max_sessions)
            conn.refs += 1
        self._conn: Optional[_Connection] = conn
        self._pool_key = key

    def __repr__(self) -> str:
        return f"<SSHExecutor {self.user}@{self.host}:{self.port}>"

    # -- connecting -------------------------------------------------------------------------
    def _conn_or_fail(self) -> _Connection:
        if self._conn is None:
            raise ExecutorError("executor is closed", host=self.host)
        return self._conn

    def _transport(self, command: str = "", *, retries: Optional[int] = None,
                   timeout: Optional[float] = None) -> paramiko.Transport:
        """The live pooled transport, connecting (with retries) when there is none."""
        conn = self._conn_or_fail()
        t = conn.transport()
        if t is not None:
            return t
        with conn.lock:
            t = conn.transport()
            if t is not None:
                return t
            if conn.client is not None:
                log.info("%s: connection lost; reconnecting", self.host)
                conn.drop()
            conn.client = self._connect(command, self.retries if retries is None else retries,
                                        timeout or self.connect_timeout)
            conn.generation += 1
            t = conn.client.get_transport()
            assert t is not None
            return t

    def _connect(self, command: str, retries: int, timeout: float) -> paramiko.SSHClient:
        last: Optional[BaseException] = None
        for attempt in range(retries + 1):
            if attempt:
                delay = self.backoff * (2 ** (attempt - 1))
                log.info("%s: connect attempt %d failed (%s); retrying in %.2f s", self.host,
                         attempt, last, delay)
                time.sleep(delay)
            try:
                return self._connect_once(command, timeout)
            except (HostKeyError, AuthenticationFailed):
                raise
            except HostUnreachable as exc:
                last = exc
        assert last is not None
        raise last

    def _jump_channel(self, timeout: float) -> Any:
        """A channel to our address through the ProxyJump hops (the last hop opens it)."""
        if self._jump_depth >= 8:
            raise HostUnreachable("ProxyJump chain longer than 8 hops", host=self.host)
        hop = self.proxyjumps[-1]
        user, _, rest = hop.rpartition("@")
        hop_host, _, hop_port = rest.partition(":")
        if self._jump is None:
            # the hop is itself an SSH host: its own config entry may name a further ProxyJump
            self._jump = SSHExecutor(hop_host, user=user or None, port=int(hop_port) if hop_port else None,
                                     known_hosts=self.known_hosts.path, host_key_policy=self.host_key_policy,
                                     connect_timeout=self.connect_timeout, retries=0,
                                     ssh_config=self._ssh_config, _jump_depth=self._jump_depth + 1)
        transport = self._jump._transport(f"ProxyJump {hop}")
        try:
            return transport.open_channel("direct-tcpip", (self.address, self.port), ("127.0.0.1", 0),
                                          timeout=timeout)
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(f"ProxyJump {hop} cannot reach {self.address}:{self.port}: {exc}",
                                  host=self.host) from None

    def _connect_once(self, command: str, timeout: float) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        name = host_key_name(self.address, self.port)
        if self.host_key_policy != "insecure":
            for ktype, key in self.known_hosts.lookup(name).items():
                client.get_host_keys().add(name, ktype, key)
        client.set_missing_host_key_policy(TunePolicy(self.host_key_policy, self.known_hosts,
                                                      self.host))
        t0 = time.monotonic()
        try:
            with _limiter:
                if self.proxyjumps:
                    sock: Any = self._jump_channel(timeout)
                else:
                    sock = socket.create_connection((self.address, self.port), timeout=timeout)
                    # small request/response packets: without this, delayed ACKs add ~40 ms
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client.connect(
                    self.address, port=self.port, username=self.user, sock=sock,
                    key_filename=self.key_filename, timeout=timeout, banner_timeout=timeout,
                    auth_timeout=timeout, channel_timeout=timeout,
                    allow_agent=self.key_filename is None,
                    look_for_keys=self.key_filename is None)
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise changed_key_error(self.host, exc, self.known_hosts) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise AuthenticationFailed(
                f"key refused for {self.user}@{self.host}:{self.port} "
                f"({self.key_filename or 'default keys/agent'}): {exc}",
                host=self.host, command=command or None) from None
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            client.close()
            raise HostUnreachable(f"connection refused or no route on port {self.port}: {exc}",
                                  host=self.host, command=command or None) from None
        except (socket.timeout, TimeoutError) as exc:
            client.close()
            raise HostUnreachable(f"connect timed out after {timeout:g} s ({exc or 'timeout'})",
                                  host=self.host, command=command or None) from None
        except (paramiko.SSHException, EOFError) as exc:
            client.close()
            raise HostUnreachable(f"SSH handshake failed: {exc}", host=self.host,
                                  command=command or None) from None
        except OSError as exc:  # refused, no route, unknown name, reset
            client.close()
            kind = "refused" if exc.errno == errno.ECONNREFUSED else \
                "no route" if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else \
                "network error" if exc.errno in _NETWORK_ERRNOS else "error"
            raise HostUnreachable(f"cannot connect to port {self.port} ({kind}): {exc}",
                                  host=self.host, command=command or None) from None
        log.debug("%s: connected in %.1f ms", self.host, (time.monotonic() - t0) * 1000)
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        return client

    def connect(self) -> None:
        """Open the pooled connection now (it is otherwise opened on first use)."""
        self._transport()

    def _open_channel(self, command: str, deadline: Optional[float] = None) -> paramiko.Channel:
        """A session channel on the pooled transport; reconnects once if the transport died.

        With a ``deadline`` (from a command timeout) opening and reconnecting fit within it.
        """
        def budget() -> float:
            if deadline is None:
                return self.connect_timeout
            left = deadline - time.monotonic()
            if left <= 0:
                raise HostUnreachable("no answer within the command timeout", host=self.host,
                                      command=command)
            return min(self.connect_timeout, left)

        for attempt in (0, 1):
            t = self._transport(command, retries=None if deadline is None else 0,
                                timeout=budget())
            try:
                return t.open_session(timeout=budget())
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if attempt or (t.is_active() and "prohibited" in str(exc).lower()):
                    raise HostUnreachable(f"cannot open a channel: {exc}", host=self.host,
                                          command=command) from None
                conn = self._conn_or_fail()
                with conn.lock:
                    if conn.client is not None and conn.client.get_transport() is t:
                        conn.drop()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- commands ---------------------------------------------------------------------------
    @staticmethod
    def _line(command: Command, env: Optional[dict[str, str]]) -> tuple[str, str]:
        """(line to send, line to report): env becomes quoted ``export`` statements."""
        line = quote_command(command)
        if not env:
            return line, line
        parts = []
        for k, v in env.items():
            if not _ENV_NAME.match(str(k)):
                raise UsageError(f"bad environment variable name {k!r}")
            parts.append(f"{k}={quote_command([str(v)])}; export {k};")
        return " ".join(parts) + " " + line, line

    def run(self, command: Command, *, timeout: Optional[float] = None, check: bool = True,
            input: Optional[str] = None, env: Optional[dict[str, str]] = None) -> Result:
        line, shown = self._line(command, env)
        timeout = timeout if timeout is not None else self.command_timeout
        if timeout is not None:
            # report our process group so a timed-out command can be killed, not just orphaned
            line = f"echo {_PID_MARK}$$ >&2; {line}"
        conn = self._conn_or_fail()
        started = time.monotonic()
        log.debug("%s: run %s", self.host, shown)
        with conn.sessions:
            chan = self._open_channel(shown, None if timeout is None else started + timeout)
            try:
                chan.exec_command(line)
                if input is not None:
                    chan.sendall(input.encode())
                chan.shutdown_write()
                out, err, status = self._collect(chan, shown, timeout, started)
            finally:
                chan.close()
        stdout = out.decode(errors="replace")
        stderr = err.decode(errors="replace")
        if timeout is not None and stderr.startswith(_PID_MARK):
            stderr = stderr.split("\n", 1)[1] if "\n" in stderr else ""
        result = Result(shown, status, stdout, stderr, self.host, time.monotonic() - started)
        if check and status != 0:
            raise CommandFailed(
                f"exit status {status}: {stderr.strip()[-500:]}".rstrip(": "),
                host=self.host, command=shown, exit_status=status, stdout=stdout, stderr=stderr)
        return result

    def _collect(self, chan: paramiko.Channel, shown: str, timeout: Optional[float],
                 started: float) -> tuple[bytes, bytes, int]:
        out, err = bytearray(), bytearray()
        deadline = None if timeout is None else started + timeout
        fd = chan.fileno()
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                if chan.eof_received or chan.closed:
                    break
            if chan.closed and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            transport = chan.get_transport()
            if transport is None or not transport.is_active():
                raise HostUnreachable("connection lost while the command ran", host=self.host,
                                      command=shown)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                pgid = self._pgid(bytes(err))
                chan.close()
                self._kill_remote(pgid)
                raise CommandTimeout(f"timed out after {timeout:g} s (channel closed"
                                     f"{', remote process group killed' if pgid else ''})",
                                     host=self.host, command=shown)
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
            select.select([fd], [], [], wait)
        if not chan.exit_status_ready():
            raise HostUnreachable("connection lost while the command ran (no exit status)",
                                  host=self.host, command=shown)
        status = chan.recv_exit_status()
        if status == -1:
            # paramiko sets -1 when the transport closed under the channel, or when sshd
            # reported exit-signal (the command was killed) instead of an exit status
            transport = chan.get_transport()
            if transport is None or not transport.is_active():
                raise HostUnreachable("connection lost while the command ran", host=self.host,
                                      command=shown)
            status = 255
        return bytes(out), bytes(err), status

    @staticmethod
    def _pgid(err: bytes) -> Optional[int]:
        first = err.split(b"\n", 1)[0].decode(errors="replace")
        if first.startswith(_PID_MARK):
            try:
                return int(first[len(_PID_MARK):])
            except ValueError:
                return None
        return None

    def _kill_remote(self, pgid: Optional[int]) -> None:
        """Best effort: kill a remote process group over the same connection."""
        if not pgid or pgid <= 1:
            return
        conn = self._conn
        t = conn.transport() if conn is not None else None
        if t is None:
            return
        try:
            chan = t.open_session(timeout=2)
            chan.exec_command(f"kill -TERM -- -{pgid} 2>/dev/null; sleep 0.2; "
                              f"kill -KILL -- -{pgid} 2>/dev/null; true")
            chan.settimeout(3)
            chan.recv_exit_status()
            chan.close()
        except Exception as exc:  # noqa: BLE001 - best effort on a failing host
            log.debug("%s: could not kill process group %s: %s", self.host, pgid, exc)

    # -- files ------------------------------------------------------------------------------
    def _sftp(self) -> paramiko.SFTPClient:
        conn = self._conn_or_fail()
        t = self._transport("sftp")
        with conn.sftp_lock:
            if conn.sftp is None or conn.sftp.get_channel() is None or \
                    conn.sftp.get_channel().get_transport() is not t or conn.sftp.get_channel().closed:
                conn.sftp = paramiko.SFTPClient.from_transport(t)
            assert conn.sftp is not None
            return conn.sftp

    def put(self, local_path: str, remote_path: str, *, mode: Optional[int] = None) -> None:
        command = f"put {remote_path}"
        try:
            sftp = self._sftp()
            with self._conn_or_fail().sftp_lock:
                sftp.put(local_path, remote_path)
                if mode is not None:
                    sftp.chmod(remote_path, mode)
        except (HostUnreachable, HostKeyError):
            raise
        except FileNotFoundError as exc:
            raise ExecutorError(f"cannot copy {local_path} to {remote_path}: {exc}",
                                host=self.host, command=command) from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            t = self._conn.transport() if self._conn else None
            if t is None:
                raise HostUnreachable(f"connection lost during put: {exc}", host=self.host,
                                      command=command) from None
            raise ExecutorError(f"cannot copy {local_path} to {remote_path}: {exc}",
                                host=self.host, command=command) from None

    # -- streams ----------------------------------------------------------------------------
    def stream(self, command: Command) -> Stream:
        """Start ``command``; stdout and stderr arrive merged, one line at a time.

        The remote shell first reports its process group; ``close()`` kills that group (and
        closes the channel), so a ``tail -f`` or a probe loop does not outlive the stream.
        """
        shown = quote_command(command)
        conn = self._conn_or_fail()
        conn.sessions.acquire()
        try:
            chan = self._open_channel(shown)
            chan.set_combine_stderr(True)
            chan.exec_command(f"echo {_PID_MARK}$$; {shown}")
            chan.shutdown_write()
            fh = chan.makefile("rb")
            first = fh.readline(MAX_LINE_BYTES).decode(errors="replace")
        except BaseException:
            conn.sessions.release()
            raise
        pgid = None
        if first.startswith(_PID_MARK):
            try:
                pgid = int(first[len(_PID_MARK):].strip())
            except ValueError:
                pgid = None
        released = threading.Event()

        def lines() -> Iterator[str]:
            try:
                yield from bounded_lines(fh.readline)  # a huge line is cut, not buffered
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if not released.is_set():
                    raise HostUnreachable(f"connection lost during stream: {exc}",
                                          host=self.host, command=shown) from None
            if not released.is_set():
                transport = chan.get_transport()
                if transport is None or not transport.is_active():
                    close()
                    raise HostUnreachable("connection lost during stream", host=self.host,
                                          command=shown)
                close()  # the command ended: give its session slot back

        def close() -> None:
            if released.is_set():
                return
            released.set()
            if not chan.exit_status_ready():
                self._kill_remote(pgid)
            chan.close()
            conn.sessions.release()

        return Stream(shown, self.host, lines, close)

    # -- health -----------------------------------------------------------------------------
    def alive(self, timeout: float = 5.0) -> bool:
        """One round trip (``true`` on a new channel) over the pooled connection.

        Connects, without retries, when there is no connection yet.
        """
        try:
            self._transport("true", retries=0, timeout=timeout)
            return self.run(["true"], timeout=timeout, check=False).ok
        except Exception as exc:  # noqa: BLE001 - any failure means not alive
            log.debug("%s: not alive: %s", self.host, exc)
            return False

    def close(self) -> None:
        """Release this executor's share of the pooled connection (closed by the last user)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with _pool_lock:
            conn.refs -= 1
            last = conn.refs <= 0
            if last and _pool.get(self._pool_key) is conn:
                del _pool[self._pool_key]
        if last:
            with conn.lock:
                conn.drop()
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    def __enter__(self) -> "SSHExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
