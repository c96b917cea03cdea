"""Host-key checking for the SSH executor: ``accept-new`` (default), ``strict``, ``insecure``.

Why our own: fabric hard-codes paramiko's ``AutoAddPolicy``, which silently trusts a changed
key.  ``tune`` keeps the manager's own known-hosts file (OpenSSH format, so ``ssh -o
UserKnownHostsFile=...`` can share it) and follows OpenSSH's ``StrictHostKeyChecking``:

- ``accept-new``: an unknown host's key is recorded (the file is rewritten atomically, mode
  0600); a known host offering a different key is refused with :class:`HostKeyError` naming
  the host, the expected and the offered fingerprints;
- ``strict``: only keys already in the file are accepted;
- ``insecure``: anything is accepted and nothing recorded; a WARNING is logged once per host.

Changed keys are detected by paramiko itself (the host's known keys are loaded into the client,
so it also prefers the recorded key type and raises ``BadHostKeyException``);
:class:`TunePolicy` handles the hosts paramiko finds missing.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import threading
from typing import Optional

import paramiko

from ..errors import HostKeyError

log = logging.getLogger(__name__)

__all__ = ["POLICIES", "KnownHosts", "TunePolicy", "fingerprint", "host_key_name",
           "default_known_hosts"]

POLICIES = ("accept-new", "strict", "insecure")

_warned_insecure: set[str] = set()
_warned_lock = threading.Lock()


def default_known_hosts() -> str:
    """The manager's known-hosts file: ``$TUNE_KNOWN_HOSTS`` or ``~/.local/share/tune/known_hosts``."""
    env = os.environ.get("TUNE_KNOWN_HOSTS")
    if env:
        return env
    return os.path.join(os.path.expanduser("~"), ".local", "share", "tune", "known_hosts")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style fingerprint, e.g. ``SHA256:uNiVz...`` (no padding)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_name(host: str, port: int) -> str:
    """The name a host's keys are filed under (``[host]:port`` off port 22, like OpenSSH)."""
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """A known-hosts file shared by the threads (and processes) of a manager.

    Reads are fresh each time (another process may have recorded a key); writes hold an
    ``fcntl`` lock and replace the file atomically with mode 0600.
    """

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = os.path.abspath(path or default_known_hosts())
        with self._locks_guard:
            self._lock = self._locks.setdefault(self.path, threading.Lock())

    def load(self) -> paramiko.HostKeys:
        keys = paramiko.HostKeys()
        if os.path.exists(self.path):
            try:
                keys.load(self.path)
            except (OSError, paramiko.SSHException) as exc:
                log.warning("cannot read known-hosts file %s: %s", self.path, exc)
        return keys

    def lookup(self, name: str) -> dict[str, paramiko.PKey]:
        """Known keys of ``name`` by key type (empty when unknown)."""
        found = self.load().lookup(name)
        return dict(found) if found else {}

    def add(self, name: str, key: paramiko.PKey) -> None:
        """Record ``key`` for ``name`` (atomic rewrite, 0600)."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with self._lock:
            lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                keys = self.load()
                keys.add(name, key.get_name(), key)
                tmp = f"{self.path}.tmp{os.getpid()}.{threading.get_ident()}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    for entry in keys._entries:  # paramiko keeps file order here
                        line = entry.to_line()
                        if line:
                            fh.write(line)
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
                os.close(lock_fd)
        log.info("recorded host key %s %s for %s in %s", key.get_name(), fingerprint(key), name,
                 self.path)


class TunePolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko when the offered key is not among the host's loaded known keys."""

    def __init__(self, mode: str, known_hosts: KnownHosts, host: str) -> None:
        if mode not in POLICIES:
            from ..errors import UsageError
            raise UsageError(f"unknown host_key_policy {mode!r}; use one of {', '.join(POLICIES)}")
        self.mode = mode
        self.known_hosts = known_hosts
        self.host = host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        offered = fingerprint(key)
        if self.mode == "insecure":
            with _warned_lock:
                first = hostname not in _warned_insecure
                _warned_insecure.add(hostname)
            if first:
                log.warning("%s: host key NOT checked (host_key_policy=insecure); offered %s %s",
                            hostname, key.get_name(), offered)
            return
        known = self.known_hosts.lookup(hostname)
        if known:
            # known under another key type: a changed host as far as we can tell
            expected = ", ".join(f"{t} {fingerprint(k)}" for t, k in known.items())
            raise HostKeyError(
                f"host key changed: expected {expected}, offered {key.get_name()} {offered} "
                f"(known hosts {self.known_hosts.path})", host=self.host)
        if self.mode == "strict":
            raise HostKeyError(
                f"unknown host key {key.get_name()} {offered} and host_key_policy=strict "
                f"(add it to {self.known_hosts.path} first)", host=self.host)
        self.known_hosts.add(hostname, key)


def changed_key_error(host: str, exc: paramiko.BadHostKeyException,
                      known_hosts: KnownHosts) -> HostKeyError:
    """Turn paramiko's ``BadHostKeyException`` into our error with both fingerprints."""
    return HostKeyError(
        f"host key changed: expected {exc.expected_key.get_name()} {fingerprint(exc.expected_key)}, "
        f"offered {exc.key.get_name()} {fingerprint(exc.key)} (known hosts {known_hosts.path}; "
        "if the host was reinstalled, remove its line)", host=host)
