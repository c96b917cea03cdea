"""The ``qemu`` driver: VMs as QEMU processes on a host, controlled over QMP, with real live
migration.

Each host has a run directory (``run_dir``, by default ``/tmp/tune-qemu/HOST``) holding, per VM,
``NAME.json`` (what it was created with), ``NAME.qmp`` (the QMP socket), ``NAME.pid``,
``NAME.serial`` (the guest console) and ``NAME.log`` (QEMU's stderr).  :meth:`QemuDriver.list`
rediscovers VMs from that directory, so a new driver object finds VMs started by another one.

A host may be the local machine, a test-bed host (a network namespace) or a remote host:

- with no executor (or a local one), QEMU is started with :class:`subprocess.Popen` from this
  process, which reaps it, with ``exec_prefix`` in front of every command run on the host, e.g.
  ``["nsenter", "-t", PID, "-n", "-m", "-u", "--"]`` (see :func:`tune.testbed.vmnet.qemu_driver`);
  QMP is a :class:`~tune.virt.qmp.QMPClient` on the unix socket;
- with another executor (SSH), files are read and written with ``cat``, QEMU is started with
  ``-daemonize`` (the command returns once QEMU is up), and each QMP command runs a small Python
  helper on the host that talks to the socket (``python3`` is needed there; events are not kept).

Networking: with ``bridge="br0"`` the driver creates one tap per VM (``tq`` + 8 hex digits),
enslaves it to the bridge and removes it when the VM goes; ``DomainSpec.extra["tap"]`` names a
tap you made yourself; otherwise the guest gets QEMU's user-mode network (no inbound traffic).

Migration (:meth:`QemuDriver.migrate`): the destination driver starts the same QEMU command with
``-incoming defer``, then ``migrate-incoming tcp:ADDR:0`` (ADDR is its ``migration_address``;
QEMU picks a free port and :command:`query-migrate` tells which); the source sets
``max-bandwidth`` / ``downtime-limit``, sends ``migrate`` and polls ``query-migrate``.  On success
the source QEMU quits; on failure (destination died, refused, timeout) the half-started
destination is killed and the VM keeps running on the source (``cont`` if it was left paused),
and :class:`tune.errors.MigrationError` carries a :class:`QemuMigrationReport`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from ..errors import DomainNotFound, DriverError, MigrationError, UsageError
from ..remote.base import Executor
from .base import DomainInfo, DomainSpec, HostInfo, HypervisorDriver, MigrationReport
from .qmp import QMPClient, QMPError

log = logging.getLogger(__name__)

__all__ = ["QemuDriver", "QemuMigrationReport", "qemu_missing_reason"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
#: QEMU run states → DomainInfo states
_STATES = {"running": "running", "paused": "paused", "prelaunch": "paused", "inmigrate": "paused",
           "postmigrate": "paused", "finish-migrate": "paused", "restore-vm": "paused",
           "save-vm": "paused", "suspended": "paused", "debug": "paused", "colo": "paused",
           "watchdog": "paused", "io-error": "paused", "shutdown": "shutdown",
           "internal-error": "crashed", "guest-panicked": "crashed"}
_FINAL = ("completed", "failed", "cancelled")

#: QEMU processes started by this Python process, by pid: reaped here whichever driver object
#: stops them (PID 1 may not reap orphans)
_children: dict[int, "subprocess.Popen[bytes]"] = {}
_children_lock = threading.Lock()


def qemu_missing_reason(binary: str = "qemu-system-x86_64") -> Optional[str]:
    """Why QEMU VMs cannot run here, or ``None`` when they can."""
    if shutil.which(binary) is None:
        return f"{binary} not installed (apt-get install qemu-system-x86)"
    return None


@dataclass
class QemuMigrationReport(MigrationReport):
    """:class:`MigrationReport` plus what QEMU and the driver measured.

    ``prepare_time`` is what tune adds between the decision (the call) and the ``migrate``
    command: starting the destination QEMU and setting parameters.  ``wall_time`` runs from
    the call to the VM running on the destination.
    """

    prepare_time: Optional[float] = None
    wall_time: Optional[float] = None
    expected_downtime: Optional[float] = None
    ram_total_mb: Optional[float] = None
    dirty_sync_count: Optional[int] = None
    mbps: Optional[float] = None
    uri: str = ""


def _proc_stat(pid: int) -> Optional[tuple[str, float]]:
    """``(state letter, CPU seconds)`` of a process, or ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _reap(pid: int, timeout: float = 0.0) -> None:
    with _children_lock:
        proc = _children.get(pid)
    if proc is None:
        return
    try:
        proc.wait(timeout=timeout) if timeout else proc.poll()
    except subprocess.TimeoutExpired:
        return
    if proc.returncode is not None:
        with _children_lock:
            _children.pop(pid, None)


def _kill(pid: Optional[int], timeout: float = 5.0) -> None:
    """SIGKILL a QEMU and wait until it is gone (reaped when it is our child)."""
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid, 0.05)
        if not _alive(pid):
            break
        time.sleep(0.01)
    _reap(pid)


_QMP_HELPER = r"""
import json, socket, sys, time
path, timeout, connect_timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + connect_timeout
while True:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        break
    except OSError as exc:
        s.close()
        if time.monotonic() > deadline:
            sys.exit("cannot connect to QMP at %s: %s" % (path, exc))
        time.sleep(0.02)
f = s.makefile("rwb")
def reply():
    while True:
        line = f.readline()
        if not line:
            sys.exit("QMP connection closed by QEMU")
        msg = json.loads(line)
        if "event" not in msg:
            return msg
try:
    reply()
    f.write(b'{"execute": "qmp_capabilities"}\n'); f.flush(); reply()
    for line in sys.stdin:
        f.write(line.encode()); f.flush()
        sys.stdout.write(json.dumps(reply()) + "\n"); sys.stdout.flush()
except socket.timeout:
    sys.exit("QMP timeout after %gs on %s" % (timeout, path))
"""


class _HostAccess:
    """The host's files and processes: this machine (and its namespaces), or over an executor."""

    remote = False

    def read(self, path: str) -> Optional[str]:
        raise NotImplementedError

    def write(self, path: str, text: str) -> None:
        raise NotImplementedError

    def remove(self, *paths: str) -> None:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        raise NotImplementedError

    def list_json(self, directory: str) -> list[str]:
        raise NotImplementedError

    def proc_stat(self, pid: int) -> Optional[tuple[str, float]]:
        raise NotImplementedError

    def alive(self, pid: Optional[int]) -> bool:
        if not pid:
            return False
        st = self.proc_stat(pid)
        return st is not None and st[0] not in ("Z", "X")

    def reap(self, pid: int, timeout: float = 0.0) -> None:
        """Collect an exited child (local only); waits up to ``timeout``."""
        if timeout:
            time.sleep(min(timeout, 0.05))

    def kill(self, pid: Optional[int], timeout: float = 5.0) -> None:
        raise NotImplementedError

    def cpus(self) -> int:
        raise NotImplementedError


class _LocalAccess(_HostAccess):
    """This machine; QEMU is a child of this process (``exec_prefix`` enters a namespace host)."""

    def read(self, path: str) -> Optional[str]:
        try:
            with open(path, errors="replace") as fh:
                return fh.read()
        except OSError:
            return None

    def write(self, path: str, text: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)

    def remove(self, *paths: str) -> None:
        for p in paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def list_json(self, directory: str) -> list[str]:
        return sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(directory, "*.json")))

    def proc_stat(self, pid: int) -> Optional[tuple[str, float]]:
        return _proc_stat(pid)

    def reap(self, pid: int, timeout: float = 0.0) -> None:
        _reap(pid, timeout)

    def kill(self, pid: Optional[int], timeout: float = 5.0) -> None:
        _kill(pid, timeout)

    def cpus(self) -> int:
        return os.cpu_count() or 1


class _ExecAccess(_HostAccess):
    """A host reached through an executor (SSH): files with ``cat``, QEMU with ``-daemonize``,
    QMP through a small Python helper run on the host for each command."""

    remote = True

    def __init__(self, driver: "QemuDriver") -> None:
        self.driver = driver
        self._clk_tck: Optional[int] = None

    def _run(self, argv: Sequence[str], **kw: Any) -> Any:
        return self.driver._run(argv, **kw)

    def read(self, path: str) -> Optional[str]:
        r = self._run(["cat", path], check=False)
        return r.stdout if r.exit_status == 0 else None

    def write(self, path: str, text: str) -> None:
        self._run(["sh", "-c", 'cat > "$1.tmp" && mv -f "$1.tmp" "$1"', "sh", path], input=text)

    def remove(self, *paths: str) -> None:
        if paths:
            self._run(["rm", "-f", "--", *paths], check=False)

    def exists(self, path: str) -> bool:
        return bool(self._run(["test", "-e", path], check=False).exit_status == 0)

    def makedirs(self, path: str) -> None:
        self._run(["mkdir", "-p", path])

    def list_json(self, directory: str) -> list[str]:
        r = self._run(["sh", "-c", 'cd "$1" 2>/dev/null && ls -1 | grep "\\.json$" || true', "sh", directory],
                      check=False)
        return sorted(line[:-5] for line in r.stdout.split() if line.endswith(".json"))

    def proc_stat(self, pid: int) -> Optional[tuple[str, float]]:
        text = self.read(f"/proc/{int(pid)}/stat")
        if not text:
            return None
        if self._clk_tck is None:
            r = self._run(["getconf", "CLK_TCK"], check=False)
            out = r.stdout.strip() if r.exit_status == 0 else ""
            self._clk_tck = int(out) if out.isdigit() else 100
        try:
            fields = text.rsplit(")", 1)[1].split()
            return fields[0], (int(fields[11]) + int(fields[12])) / self._clk_tck
        except (IndexError, ValueError):
            return None

    def kill(self, pid: Optional[int], timeout: float = 5.0) -> None:
        if not pid:
            return
        self._run(["kill", "-9", str(int(pid))], check=False)
        deadline = time.monotonic() + timeout
        while self.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def cpus(self) -> int:
        r = self._run(["nproc"], check=False)
        return int(r.stdout.strip()) if r.exit_status == 0 and r.stdout.strip().isdigit() else 1


class _ExecQMP:
    """QMP through an executor: one helper process on the host per command (events are lost)."""

    def __init__(self, driver: "QemuDriver", path: str, timeout: float, connect_timeout: float) -> None:
        self.driver = driver
        self.path = path
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def execute(self, command: str, arguments: Optional[dict[str, Any]] = None, *,
                timeout: Optional[float] = None) -> Any:
        limit = self.timeout if timeout is None else timeout
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        try:
            r = self.driver._run(["python3", "-c", _QMP_HELPER, self.path, str(limit),
                                  str(self.connect_timeout)], input=json.dumps(msg) + "\n", check=False,
                                 timeout=limit + self.connect_timeout + 15)
        except Exception as exc:  # noqa: BLE001 - executor failures are driver failures here
            raise DriverError(f"QMP {command} on {self.path}: {exc}", host=self.driver.host) from exc
        if r.exit_status != 0 or not r.stdout.strip():
            raise DriverError(f"QMP {command} on {self.path}: {(r.stderr or '').strip()[-300:]}",
                              host=self.driver.host)
        reply = json.loads(r.stdout.strip().splitlines()[-1])
        if "error" in reply:
            raise QMPError(command, reply["error"], host=self.driver.host)
        return reply.get("return")

    def cmd(self, command: str, **arguments: Any) -> Any:
        return self.execute(command, arguments or None)

    def close(self) -> None:
        """Nothing held between commands."""

    def __enter__(self) -> "_ExecQMP":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QemuDriver(HypervisorDriver):
    """QEMU VMs on one host (local, or a namespace host through ``exec_prefix``).

    Parameters
    ----------
    host:
        the host's name (labels, default run dir).
    executor:
        how the host is reached; a :class:`~tune.remote.local.LocalExecutor` by default (QEMU
        is then a child of this process); an SSH executor drives a remote host.
    run_dir:
        where sockets, pid files and logs live (default ``/tmp/tune-qemu/HOST``).
    exec_prefix:
        argv prefix that enters the host (``nsenter ... --``); empty for the local machine.
    bridge:
        bridge to attach a per-VM tap to (``None``: user-mode network unless the spec names a tap).
    migration_address:
        the address this host receives migrations on (``-incoming tcp:ADDR:0``); by default
        the executor's host for a remote executor, ``127.0.0.1`` locally.
    accel:
        ``tcg`` (default; no KVM here) or ``kvm``.
    max_bandwidth_mib, downtime_limit_ms:
        migration parameters set on the source before ``migrate`` (``None``: QEMU's defaults,
        128 MiB/s and 300 ms in QEMU 7.2).
    cpu_interval:
        sampling interval for CPU% when :meth:`list` has no recent earlier sample.
    """

    name = "qemu"

    def __init__(self, host: str = "localhost", *, executor: Optional[Executor] = None,
                 run_dir: Optional[str] = None, exec_prefix: Sequence[str] = (),
                 netns_argv_prefix: Optional[Sequence[str]] = None,
                 bridge: Optional[str] = None, migration_address: Optional[str] = None,
                 accel: str = "tcg", qemu_binary: str = "qemu-system-x86_64",
                 max_bandwidth_mib: Optional[float] = None, downtime_limit_ms: Optional[int] = None,
                 cpu_interval: float = 0.5, qmp_timeout: float = 30.0, machine: str = "pc") -> None:
        super().__init__(host)
        if executor is None:
            from ..remote.local import LocalExecutor
            executor = LocalExecutor(host)
        self.executor = executor
        self.run_dir = os.path.normpath(run_dir or os.path.join("/tmp/tune-qemu", host))
        if not os.path.isabs(self.run_dir):
            self.run_dir = os.path.abspath(self.run_dir)
        self.exec_prefix = list(netns_argv_prefix if netns_argv_prefix is not None else exec_prefix)
        self.bridge = bridge
        remote = getattr(executor, "protocol", "") not in ("local", "")
        #: where this host receives migrations: the address we reach it at, or loopback
        self.migration_address = migration_address or (executor.host if remote else "127.0.0.1")
        self.accel = accel
        self.qemu_binary = qemu_binary
        self.max_bandwidth_mib = max_bandwidth_mib
        self.downtime_limit_ms = downtime_limit_ms
        self.cpu_interval = cpu_interval
        self.qmp_timeout = qmp_timeout
        self.machine = machine
        self._cpu_samples: dict[int, tuple[float, float]] = {}
        #: QMP connections held by migrations in progress (QEMU serves one client at a time)
        self._busy: dict[str, Any] = {}
        self._access: _HostAccess = (_LocalAccess() if getattr(executor, "protocol", "") in ("local", "")
                                     else _ExecAccess(self))
        self._access.makedirs(self.run_dir)

    # --- files ------------------------------------------------------------------------------
    def _path(self, name: str, ext: str) -> str:
        return os.path.join(self.run_dir, f"{name}.{ext}")

    def _meta(self, name: str) -> dict[str, Any]:
        text = self._access.read(self._path(name, "json"))
        if text is None:
            raise DomainNotFound(f"no domain {name!r}", host=self.host)
        try:
            meta: dict[str, Any] = json.loads(text)
            return meta
        except ValueError as exc:
            raise DriverError(f"corrupt {self._path(name, 'json')}: {exc}", host=self.host) from exc

    def _write_meta(self, name: str, meta: dict[str, Any]) -> None:
        self._access.write(self._path(name, "json"), json.dumps(meta, indent=1, sort_keys=True))

    def _pid(self, name: str) -> Optional[int]:
        text = self._access.read(self._path(name, "pid"))
        try:
            return int((text or "").strip() or 0) or None
        except ValueError:
            return None

    def _names(self) -> list[str]:
        return self._access.list_json(self.run_dir)

    def _vm_alive(self, name: str, pid: Optional[int]) -> bool:
        """Is ``pid`` alive and still the QEMU of ``name`` (not a recycled pid)?"""
        if not pid or not self._access.alive(pid):
            return False
        cmdline = self._access.read(f"/proc/{int(pid)}/cmdline")
        return cmdline is not None and self._path(name, "qmp") in cmdline.replace("\0", " ")

    def _run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0,
             input: Optional[str] = None) -> Any:
        return self.executor.run([*self.exec_prefix, *argv], check=check, timeout=timeout, input=input)

    def _qmp(self, name: str, timeout: Optional[float] = None, connect_timeout: float = 5.0) -> Any:
        """A QMP connection to ``name`` (a :class:`QMPClient`, or per-command over the executor)."""
        if self._access.remote:
            return _ExecQMP(self, self._path(name, "qmp"), timeout or self.qmp_timeout, connect_timeout)
        return QMPClient(self._path(name, "qmp"), timeout=timeout or self.qmp_timeout,
                         connect_timeout=connect_timeout, host=self.host)

    # --- network ----------------------------------------------------------------------------
    def _tap_name(self, name: str) -> str:
        return "tq" + hashlib.sha1(f"{self.host}/{self.run_dir}/{name}".encode()).hexdigest()[:8]

    def _setup_net(self, meta: dict[str, Any]) -> list[str]:
        """Create the VM's tap if the driver owns it; return QEMU's -netdev/-device args."""
        net = meta.get("net", "auto")
        mac = meta["mac"]
        device = ["-device", f"virtio-net-pci,netdev=n0,mac={mac}"]
        if net == "none":
            return []
        if meta.get("tap"):
            return ["-netdev", f"tap,id=n0,ifname={meta['tap']},script=no,downscript=no", *device]
        if net == "user" or not self.bridge:
            return ["-netdev", "user,id=n0", *device]
        tap = self._tap_name(meta["name"])
        if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", self.bridge):
            raise UsageError(f"bad bridge name {self.bridge!r}", host=self.host)
        # one `ip` process for the three steps (-force: a missing old tap is not an error)
        made = self._run(["ip", "-force", "-batch", "-"], check=False, input=f"link del {tap}\n"
                         f"tuntap add dev {tap} mode tap\nlink set {tap} master {self.bridge} up\n")
        shown = self._run(["ip", "-o", "link", "show", tap], check=False)
        if shown.exit_status != 0 or f"master {self.bridge}" not in shown.stdout:
            self._run(["ip", "link", "del", tap], check=False)
            err = "; ".join(line for line in made.stderr.splitlines() if "Cannot find device" not in line)
            raise DriverError(f"cannot create tap {tap} in bridge {self.bridge}: {err}", host=self.host)
        meta["own_tap"] = tap
        return ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no", *device]

    def _teardown_net(self, meta: dict[str, Any]) -> None:
        tap = meta.get("own_tap")
        if tap:
            self._run(["ip", "link", "del", tap], check=False)

    # --- processes --------------------------------------------------------------------------
    def _argv(self, meta: dict[str, Any], net_args: list[str], incoming: bool) -> list[str]:
        name = meta["name"]
        argv = [self.qemu_binary, "-name", name, "-machine", self.machine, "-accel", self.accel,
                "-m", str(meta["memory_mb"]), "-smp", str(meta["vcpus"]), "-nodefaults",
                "-no-user-config", "-display", "none",
                "-serial", f"file:{self._path(name, 'serial')}",
                "-qmp", f"unix:{self._path(name, 'qmp')},server=on,wait=off",
                "-pidfile", self._path(name, "pid")]
        if meta.get("kernel"):
            argv += ["-kernel", meta["kernel"]]
        if meta.get("initrd"):
            argv += ["-initrd", meta["initrd"]]
        if meta.get("cmdline"):
            argv += ["-append", meta["cmdline"]]
        argv += net_args
        argv += [str(a) for a in meta.get("qemu_args", [])]
        if incoming:
            argv += ["-incoming", "defer"]
        return argv

    def _start(self, meta: dict[str, Any], *, incoming: bool = False) -> int:
        """Start QEMU for ``meta``; return its pid once QMP answers."""
        name = meta["name"]
        self._access.remove(*(self._path(name, ext) for ext in ("qmp", "pid", "serial")))
        net_args = self._setup_net(meta)
        argv = self._argv(meta, net_args, incoming)
        meta["argv"] = argv
        self._write_meta(name, meta)
        log.info("%s: starting %s%s", self.host, name, " (incoming)" if incoming else "")
        log.debug("%s: %s", self.host, " ".join(argv))
        if self._access.remote:
            return self._start_daemon(meta, argv)
        with open(self._path(name, "log"), "wb") as logf:
            try:
                proc = subprocess.Popen([*self.exec_prefix, *argv], stdin=subprocess.DEVNULL,
                                        stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                self._cleanup(name, meta)
                raise DriverError(f"cannot start QEMU: {exc}", host=self.host) from exc
        with _children_lock:
            _children[proc.pid] = proc
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise DriverError(f"QEMU for {name} exited ({proc.returncode}): "
                                      f"{self._log_tail(name)}", host=self.host)
                if os.path.exists(self._path(name, "qmp")) and self._pid(name):
                    try:
                        self._qmp(name, timeout=5, connect_timeout=1).close()
                        break
                    except DriverError:
                        pass
                if time.monotonic() > deadline:
                    raise DriverError(f"QEMU for {name} did not open its QMP socket in 30 s",
                                      host=self.host)
                time.sleep(0.01)
        except BaseException:
            _kill(proc.pid)
            self._cleanup(name, meta)
            raise
        pid = self._pid(name) or proc.pid
        meta["pid"] = pid
        self._write_meta(name, meta)
        return pid

    def _start_daemon(self, meta: dict[str, Any], argv: list[str]) -> int:
        """Start QEMU on a host reached through the executor: ``-daemonize`` returns once it is up."""
        name = meta["name"]
        try:
            r = self._run([*argv, "-daemonize"], check=False, timeout=60)
            if r.exit_status != 0:
                raise DriverError(f"QEMU for {name} failed ({r.exit_status}): {r.stderr.strip()[-500:]}",
                                  host=self.host)
            pid = self._pid(name)
            if not pid:
                raise DriverError(f"QEMU for {name} wrote no pid file", host=self.host)
        except BaseException:
            self._access.kill(self._pid(name))
            self._cleanup(name, meta)
            raise
        meta["pid"] = pid
        self._write_meta(name, meta)
        return pid

    def _log_tail(self, name: str) -> str:
        return (self._access.read(self._path(name, "log")) or "")[-500:].strip()

    def _cleanup(self, name: str, meta: Optional[dict[str, Any]] = None) -> None:
        if meta is None:
            try:
                meta = self._meta(name)
            except DriverError:
                meta = {}
        self._teardown_net(meta)
        self._access.remove(*(self._path(name, ext) for ext in ("qmp", "pid", "json")))

    def _stop(self, name: str, pid: Optional[int], quit_timeout: float = 3.0) -> None:
        """``quit`` over QMP, SIGKILL if that does not end it; reap."""
        acc = self._access
        if self._vm_alive(name, pid):
            try:
                with self._qmp(name, timeout=2, connect_timeout=1) as q:
                    q.execute("quit")
            except DriverError:
                pass
            deadline = time.monotonic() + quit_timeout
            while self._vm_alive(name, pid) and time.monotonic() < deadline:
                acc.reap(pid or 0, 0.05)
            if self._vm_alive(name, pid):
                acc.kill(pid)
        if pid:
            acc.reap(pid, 1.0)

    # --- the driver interface ---------------------------------------------------------------
    def create(self, spec: DomainSpec) -> DomainInfo:
        if not _NAME.match(spec.name):
            raise UsageError(f"bad VM name {spec.name!r} (letters, digits, _ . -)", host=self.host)
        if spec.memory_mb < 16 or spec.vcpus < 1:
            raise UsageError(f"{spec.name}: memory_mb >= 16 and vcpus >= 1 needed", host=self.host)
        if self._access.exists(self._path(spec.name, "json")):
            if self._vm_alive(spec.name, self._pid(spec.name)):
                raise DriverError(f"domain {spec.name!r} already exists", host=self.host)
            self._cleanup(spec.name)
        for label, path in (("kernel", spec.kernel), ("initrd", spec.initrd)):
            if path and not self._access.exists(path):
                raise UsageError(f"{spec.name}: {label} {path} not found", host=self.host)
        if not spec.kernel and not spec.extra.get("qemu_args"):
            raise UsageError(f"{spec.name}: a kernel (or extra['qemu_args']) is needed", host=self.host)
        mac = spec.extra.get("mac") or "52:54:00:" + ":".join(
            hashlib.sha1(spec.name.encode()).hexdigest()[i:i + 2] for i in (0, 2, 4))
        meta = {"name": spec.name, "memory_mb": spec.memory_mb, "vcpus": spec.vcpus,
                "kernel": spec.kernel, "initrd": spec.initrd, "cmdline": spec.cmdline, "mac": mac,
                "tap": spec.extra.get("tap"), "net": spec.extra.get("net", "auto"),
                "qemu_args": list(spec.extra.get("qemu_args", [])), "created": time.time()}
        pid = self._start(meta)
        log.info("%s: created %s (pid %d)", self.host, spec.name, pid)
        return DomainInfo(spec.name, self._state(spec.name), spec.memory_mb, spec.vcpus, domid=pid)

    def _state(self, name: str) -> str:
        try:
            busy = self._busy.get(name)
            if busy is not None:
                status = busy.execute("query-status").get("status", "")
            else:
                with self._qmp(name, timeout=2, connect_timeout=1) as q:
                    status = q.execute("query-status").get("status", "")
        except DriverError:
            return "unknown"  # busy (another client holds QMP) or going away
        return _STATES.get(status, "unknown")

    def status(self, name: str) -> str:
        """QEMU's own run state (``running``, ``paused``, ``inmigrate``, ``postmigrate``...)."""
        self._meta(name)
        with self._qmp(name, timeout=5) as q:
            return str(q.execute("query-status").get("status", ""))

    def _live(self) -> Iterator[tuple[str, dict[str, Any], int]]:
        for name in self._names():
            try:
                meta = self._meta(name)
            except DriverError:
                continue
            pid = self._pid(name) or meta.get("pid")
            if not self._vm_alive(name, pid):
                log.info("%s: %s is gone (QEMU pid %s); cleaning up", self.host, name, pid)
                if pid:
                    self._access.reap(pid, 0.1)
                self._cleanup(name, meta)
                continue
            yield name, meta, int(pid or 0)

    def names(self) -> list[str]:
        """Names of the VMs alive on this host (cheap: no QMP, no CPU sampling)."""
        return [name for name, _, _ in self._live()]

    def list(self) -> list[DomainInfo]:
        live = list(self._live())
        now = time.monotonic()
        first: dict[int, Optional[tuple[float, float]]] = {}
        for _, _, pid in live:
            prev = self._cpu_samples.get(pid)
            if prev is None or not 0.05 <= now - prev[0] <= 300:
                st = self._access.proc_stat(pid)
                first[pid] = (time.monotonic(), st[1]) if st else None
        if first:
            time.sleep(self.cpu_interval)
        out = []
        for name, meta, pid in live:
            st = self._access.proc_stat(pid)
            t = time.monotonic()
            prev = first.get(pid) or self._cpu_samples.get(pid)
            cpu = None
            if st and prev and t > prev[0]:
                cpu = round(max(0.0, (st[1] - prev[1]) / (t - prev[0]) * 100.0), 1)
            if st:
                self._cpu_samples[pid] = (t, st[1])
            out.append(DomainInfo(name, self._state(name), int(meta["memory_mb"]), int(meta["vcpus"]),
                                  cpu_percent=cpu, cpu_seconds=st[1] if st else None, domid=pid))
        alive = {pid for _, _, pid in live}
        for pid in list(self._cpu_samples):
            if pid not in alive:
                del self._cpu_samples[pid]
        return out

    def _require(self, name: str) -> tuple[dict[str, Any], int]:
        meta = self._meta(name)
        pid = self._pid(name) or meta.get("pid")
        if not self._vm_alive(name, pid):
            self._cleanup(name, meta)
            raise DomainNotFound(f"no domain {name!r} (QEMU exited)", host=self.host)
        return meta, int(pid or 0)

    def shutdown(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        """ACPI power button, then ``quit`` if the guest has not powered off within ``timeout``."""
        meta, pid = self._require(name)
        with self._qmp(name) as q:
            q.execute("system_powerdown")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while self._vm_alive(name, pid) and time.monotonic() < deadline:
            self._access.reap(pid, 0.1)
        if self._vm_alive(name, pid):
            log.info("%s: %s ignored the power button for %gs; quitting QEMU", self.host, name, timeout)
        self._stop(name, pid)
        self._cleanup(name, meta)

    def destroy(self, name: str) -> None:
        meta = self._meta(name)
        pid = self._pid(name) or meta.get("pid")
        self._stop(name, pid, quit_timeout=1.0)
        self._cleanup(name, meta)
        log.info("%s: destroyed %s", self.host, name)

    def info(self) -> HostInfo:
        mem_total = mem_free = 0
        for line in (self._access.read("/proc/meminfo") or "").splitlines():
            key, _, rest = line.partition(":")
            if key == "MemTotal":
                mem_total = int(rest.split()[0]) // 1024
            elif key == "MemAvailable":
                mem_free = int(rest.split()[0]) // 1024
        # QEMU allocates guest RAM lazily: count every VM's full memory as taken
        used = sum(int(self._meta(n)["memory_mb"]) for n in self._names())
        return HostInfo(self.host, self._access.cpus(), mem_total, max(0, mem_free - used))

    def serial_output(self, name: str) -> str:
        """What the guest wrote on its serial console so far."""
        return self._access.read(self._path(name, "serial")) or ""

    def wait_console(self, name: str, text: str, timeout: float = 60.0) -> float:
        """Wait until ``text`` appears on the guest console (e.g. ``GUEST-UP``); return the wait."""
        start = time.monotonic()
        while text not in self.serial_output(name):
            _, pid = self._require(name)
            if time.monotonic() - start > timeout:
                raise DriverError(f"{name}: {text!r} not on the console after {timeout:g}s",
                                  host=self.host)
            time.sleep(0.05)
        return time.monotonic() - start

    def set_migration_parameters(self, name: str, *, max_bandwidth_mib: Optional[float] = None,
                                 downtime_limit_ms: Optional[int] = None) -> dict[str, Any]:
        """Set ``max-bandwidth`` / ``downtime-limit`` for migrations of ``name``; returns them all."""
        self._require(name)
        with self._qmp(name) as q:
            return self._set_params(q, max_bandwidth_mib, downtime_limit_ms)

    @staticmethod
    def _set_params(q: Any, bw: Optional[float], downtime: Optional[int]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if bw is not None:
            params["max-bandwidth"] = int(bw * 2 ** 20)
        if downtime is not None:
            params["downtime-limit"] = int(downtime)
        if params:
            q.execute("migrate-set-parameters", params)
        result: dict[str, Any] = q.execute("query-migrate-parameters")
        return result

    # --- live migration ---------------------------------------------------------------------
    def migrate(self, name: str, destination: "HypervisorDriver | str", *, live: bool = True,
                timeout: float = 600.0, max_bandwidth_mib: Optional[float] = None,
                downtime_limit_ms: Optional[int] = None) -> QemuMigrationReport:
        """Live-migrate ``name`` to ``destination`` (another :class:`QemuDriver`)."""
        t_call = time.monotonic()
        started_at = time.time()
        if not isinstance(destination, QemuDriver):
            raise UsageError("the qemu driver migrates to another QemuDriver object "
                             f"(got {destination!r})", host=self.host)
        if destination.run_dir == self.run_dir:
            raise UsageError(f"source and destination share the run directory {self.run_dir}",
                             host=self.host)
        meta, src_pid = self._require(name)
        if destination._access.exists(destination._path(name, "json")) and \
                destination._vm_alive(name, destination._pid(name)):
            raise MigrationError(f"{name} already exists on {destination.host}", host=self.host,
                                 report=self._report(name, destination, "failed", t_call, started_at,
                                                     message="exists on destination"))
        bw = max_bandwidth_mib if max_bandwidth_mib is not None else self.max_bandwidth_mib
        dl = downtime_limit_ms if downtime_limit_ms is not None else self.downtime_limit_ms
        dmeta = {k: v for k, v in meta.items() if k not in ("own_tap", "argv", "pid")}
        dmeta["migrated_from"] = self.host
        dst_pid: Optional[int] = None
        uri = ""
        src_q: Any = None
        last: dict[str, Any] = {}
        t_migrate: Optional[float] = None
        try:
            # 1. destination: same QEMU, waiting for the stream
            try:
                dst_pid = destination._start(dmeta, incoming=True)
                with destination._qmp(name, timeout=10) as dq:
                    dq.execute("migrate-incoming", {"uri": f"tcp:{destination.migration_address}:0"})
                    info = dq.execute("query-migrate")
                addrs = info.get("socket-address") or []
                port = next((a.get("port") for a in addrs if a.get("port")), None)
                if not port:
                    raise DriverError(f"destination did not report its port: {info!r}",
                                      host=destination.host)
                uri = f"tcp:{destination.migration_address}:{port}"
                destination._incoming_ready(name, dst_pid, uri)
            except Exception as exc:
                raise MigrationError(f"cannot prepare {destination.host} to receive {name}: {exc}",
                                     host=self.host) from exc
            # 2. source: parameters, then go
            src_q = self._qmp(name, timeout=10)
            self._busy[name] = src_q
            self._set_params(src_q, bw, dl)
            t_migrate = time.monotonic()
            log.info("%s: migrating %s to %s (%s)", self.host, name, destination.host, uri)
            src_q.execute("migrate", {"uri": uri})
            deadline = t_migrate + timeout
            while True:
                last = src_q.execute("query-migrate")
                status = last.get("status", "")
                if status in _FINAL:
                    break
                if time.monotonic() > deadline:
                    log.warning("%s: migration of %s timed out after %gs; cancelling", self.host, name,
                                timeout)
                    src_q.execute("migrate_cancel")
                    end = time.monotonic() + 10
                    while last.get("status") not in _FINAL and time.monotonic() < end:
                        time.sleep(0.02)
                        last = src_q.execute("query-migrate")
                    last = dict(last, status="failed",
                                **{"error-desc": f"timed out after {timeout:g}s (cancelled)"})
                    break
                time.sleep(0.02)
            if last.get("status") != "completed":
                raise MigrationError(
                    f"migration of {name} to {destination.host} {last.get('status')}: "
                    f"{last.get('error-desc', 'no reason given')}", host=self.host)
            # 3. the destination must be running the VM now
            end = time.monotonic() + 10
            dst_status = ""
            while time.monotonic() < end:
                if not destination._access.alive(dst_pid):
                    dst_status = "dead"
                    break
                try:
                    with destination._qmp(name, timeout=2, connect_timeout=1) as dq:
                        dst_status = dq.execute("query-status").get("status", "")
                except DriverError:
                    dst_status = "unreachable"
                if dst_status == "running":
                    break
                time.sleep(0.02)
            if dst_status != "running":
                raise MigrationError(f"{name} completed but is not running on {destination.host} "
                                     f"({dst_status})", host=self.host)
        except MigrationError as exc:
            report = self._report(name, destination, "failed", t_call, started_at, last, t_migrate,
                                  uri, message=exc.message)
            self._recover(name, src_q, destination, dst_pid)
            exc.report = report
            raise
        except DriverError as exc:  # QMP trouble on the source during the migration
            report = self._report(name, destination, "failed", t_call, started_at, last, t_migrate,
                                  uri, message=str(exc))
            self._recover(name, src_q, destination, dst_pid)
            raise MigrationError(f"migration of {name} to {destination.host} failed: {exc}",
                                 host=self.host, report=report) from exc
        except BaseException:
            self._recover(name, src_q, destination, dst_pid)
            raise
        finally:
            self._busy.pop(name, None)
            if src_q is not None:
                src_q.close()
        report = self._report(name, destination, "completed", t_call, started_at, last, t_migrate, uri)
        # 4. the source QEMU (paused in postmigrate) goes away
        self._stop(name, src_pid)
        self._cleanup(name, meta)
        self._cpu_samples.pop(src_pid, None)
        log.info("%s: %s migrated to %s in %.3fs (downtime %s ms)", self.host, name, destination.host,
                 report.total_time or 0.0, last.get("downtime"))
        return report

    def _incoming_ready(self, name: str, pid: int, uri: str) -> None:
        """Called on the destination once it listens on ``uri``: a hook for fault injection."""

    def _recover(self, name: str, src_q: Any, destination: "QemuDriver",
                 dst_pid: Optional[int]) -> None:
        """After a failed migration: kill the half-started destination, keep the source running."""
        if dst_pid:
            destination._access.kill(dst_pid)
        try:
            destination._cleanup(name, destination._meta(name) if destination._access.exists(
                destination._path(name, "json")) else {"own_tap": destination._tap_name(name)
                                                       if destination.bridge else None})
        except DriverError:
            pass
        try:
            q = src_q if src_q is not None else self._qmp(name, timeout=5)
            try:
                status = q.execute("query-migrate").get("status")
                if status not in _FINAL and status not in (None, "none"):
                    q.execute("migrate_cancel")
                    for _ in range(500):
                        if q.execute("query-migrate").get("status") in _FINAL:
                            break
                        time.sleep(0.02)
                run = q.execute("query-status").get("status")
                if run != "running":
                    log.warning("%s: %s left %s by the failed migration; resuming it", self.host, name, run)
                    q.execute("cont")
            finally:
                if src_q is None:
                    q.close()
        except DriverError as exc:
            log.error("%s: cannot check %s after the failed migration: %s", self.host, name, exc)

    def _report(self, name: str, destination: "QemuDriver", status: str, t_call: float,
                started_at: float, info: Optional[dict[str, Any]] = None,
                t_migrate: Optional[float] = None, uri: str = "", message: str = "") -> QemuMigrationReport:
        info = info or {}
        ram = info.get("ram") or {}

        def ms(key: str) -> Optional[float]:
            return info[key] / 1000.0 if isinstance(info.get(key), (int, float)) else None

        now = time.monotonic()
        return QemuMigrationReport(
            domain=name, source=self.host, destination=destination.host, status=status,
            total_time=ms("total-time"), downtime=ms("downtime"), setup_time=ms("setup-time"),
            ram_transferred_mb=ram["transferred"] / 2 ** 20 if "transferred" in ram else None,
            message=message or info.get("error-desc", ""), started_at=started_at,
            ended_at=started_at + (now - t_call),
            prepare_time=(t_migrate - t_call) if t_migrate is not None else None,
            wall_time=now - t_call, expected_downtime=ms("expected-downtime"),
            ram_total_mb=ram["total"] / 2 ** 20 if "total" in ram else None,
            dirty_sync_count=ram.get("dirty-sync-count"), mbps=ram.get("mbps"), uri=uri)

    def close(self) -> None:
        """Nothing to release: QMP connections are opened per operation."""
