"""One ``libvirtd`` per namespace host of a :class:`~tune.testbed.netns.TestBed`.

Why: the ``libvirt`` driver's live migration can only be tested for real between two daemons,
each with its own idea of which domains it runs.  Each host of the bed gets (as
``/work/shared/testbed/lv_up.sh`` does):

- private ``/etc/libvirt``, ``/run/libvirt``, ``/var/lib/libvirt``, ``/var/log/libvirt`` and
  ``/var/cache/libvirt``, bind-mounted from ``BED/hN/lv/`` inside the host's mount namespace
  (the holder's: the host's sshd and its sessions see them too, so ``qemu+ssh://`` reaches this
  host's daemon);
- a ``libvirtd.conf`` with a distinct ``host_uuid`` (libvirt refuses to migrate between two
  daemons with the same one) and unauthenticated root access on the unix socket;
- a ``qemu.conf`` that runs QEMU as root without security driver, cgroups or namespaces (none of
  which work in a network-namespace host without systemd);
- a private ``/etc/passwd`` and ``/etc/group`` holding a ``libvirt-qemu`` user: Debian's
  libvirtd looks that user up before it reads ``qemu.conf``.

The daemon runs in the foreground (not ``--daemon``) as the child of the test bed's sshd reaper
(``PR_SET_CHILD_SUBREAPER``): libvirt double-forks QEMU, and on machines whose PID 1 does not
reap orphans every QEMU that exits would otherwise stay a zombie.  :meth:`LibvirtHosts.stop`
destroys the domains left, stops the daemon, reaps everything and removes the bind mounts.

Example (as root)::

    with TestBed(2, prefix="lv", subnet="10.71.0") as bed, LibvirtHosts(bed) as lv:
        d1, d2 = lv.driver("h1"), lv.driver("h2")   # qemu+ssh:// URIs, migrate_uri tcp://h2
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import time
from typing import Any, Optional, Sequence

from .netns import TestBed, TestBedError, TestHost, _comm, _pid_alive, _spawn, _terminate, _write

log = logging.getLogger(__name__)

__all__ = ["LibvirtHosts", "libvirtd_missing_reason", "LIBVIRTD"]

LIBVIRTD = "/usr/sbin/libvirtd"
#: host path -> subdirectory of BED/hN/lv bound over it
PRIVATE = (("/etc/libvirt", "etc"), ("/run/libvirt", "run"), ("/var/lib/libvirt", "lib"),
           ("/var/log/libvirt", "log"), ("/var/cache/libvirt", "cache"))
QEMU_UID = 64055  # Debian's libvirt-qemu

LIBVIRTD_CONF = """\
host_uuid = "{uuid}"
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""

QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
namespaces = [ ]
"""


def libvirtd_missing_reason() -> Optional[str]:
    """Why one libvirtd per namespace host cannot run here, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "needs root (libvirtd in network namespaces)"
    if not os.path.exists(LIBVIRTD):
        return ("libvirtd not installed (apt-get install --no-install-recommends libvirt-daemon "
                "libvirt-daemon-driver-qemu)")
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
    try:
        import libvirt  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "libvirt-python not installed (apt-get install libvirt-dev pkg-config && pip install libvirt-python)"
    return None


class LibvirtHosts:
    """libvirtd daemons in (some of) the hosts of a running test bed.  Needs root."""

    def __init__(self, testbed: TestBed, hosts: Optional[Sequence["str | int | TestHost"]] = None,
                 *, start_timeout: float = 30.0) -> None:
        self.bed = testbed
        self.hosts = [testbed.host(h) for h in (hosts if hosts is not None else testbed.hosts)]
        self.start_timeout = start_timeout
        #: per host, the reaper whose child is the daemon (it also adopts the daemon's QEMUs)
        self.procs: dict[str, "subprocess.Popen[bytes]"] = {}
        #: reapers of stopped daemons that still hold running QEMUs (reaped by stop())
        self._orphans: list["subprocess.Popen[bytes]"] = []
        self._mounted: set[str] = set()
        self.ssh_wrapper = os.path.join(testbed.base_dir, "libvirt-ssh")

    # -- paths and URIs ---------------------------------------------------------------------
    def dir(self, host: "str | int | TestHost") -> str:
        return os.path.join(self.bed.host(host).dir, "lv")

    def socket_path(self, host: "str | int | TestHost") -> str:
        """The host daemon's read-write socket, as the root namespace reaches it (the bind source)."""
        return os.path.join(self.dir(host), "run", "libvirt-sock")

    def log_path(self, host: "str | int | TestHost") -> str:
        return os.path.join(self.dir(host), "log", "libvirtd.log")

    def uri(self, host: "str | int | TestHost", transport: str = "ssh") -> str:
        """``qemu+ssh://root@ADDR/system?...`` (the test bed's key and known hosts) or the
        ``qemu+unix`` URI of the host's socket (``transport="unix"``)."""
        h = self.bed.host(host)
        if transport == "unix":
            return f"qemu+unix:///system?socket={self.socket_path(h)}"
        if transport != "ssh":
            raise ValueError(f"transport must be 'ssh' or 'unix', not {transport!r}")
        # libvirt runs `COMMAND -l root -i KEY -T -e none -- ADDR sh -c '... virt-ssh-helper ...'`;
        # the wrapper adds the bed's known-hosts file so the root's own ~/.ssh is left alone
        return (f"qemu+ssh://root@{h.address}/system?keyfile={self.bed.key_path}"
                f"&command={self.ssh_wrapper}&no_tty=1")

    def driver(self, host: "str | int | TestHost", transport: str = "ssh", **options: Any) -> Any:
        """A :class:`~tune.virt.libvirt.LibvirtDriver` for ``host``; migrations to it go over
        ``tcp://ADDR`` (QEMU to QEMU, between the hosts' network namespaces)."""
        from ..virt.libvirt import LibvirtDriver
        h = self.bed.host(host)
        options.setdefault("migrate_uri", f"tcp://{h.address}")
        return LibvirtDriver(h.name, uri=self.uri(h, transport), **options)

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "LibvirtHosts":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "LibvirtHosts":
        """Start a daemon in every host (all at once) and wait until each answers."""
        reason = libvirtd_missing_reason()
        if reason:
            raise TestBedError(reason)
        _write(self.ssh_wrapper,
               "#!/bin/sh\n# libvirt's ssh transport for the tune test bed\n"
               f"exec ssh -o UserKnownHostsFile={shlex.quote(self.bed.global_known_hosts)} "
               "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes "
               "-o ConnectTimeout=5 \"$@\"\n", 0o755)
        try:
            for h in self.hosts:
                self.start_daemon(h, wait=False)
            for h in self.hosts:
                self.wait_ready(h)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self, h: TestHost) -> None:
        d = self.dir(h)
        for sub in ("run", "lib", "log"):  # state of an earlier run; the capability cache is kept
            shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
        for _, sub in PRIVATE:
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for name in os.listdir("/etc/libvirt") if os.path.isdir("/etc/libvirt") else []:
            src = os.path.join("/etc/libvirt", name)
            if os.path.isfile(src) and name not in ("libvirtd.conf", "qemu.conf"):
                shutil.copy2(src, os.path.join(d, "etc", name))
        uuid = f"00000000-0000-4000-8000-{h.index:012x}"
        _write(os.path.join(d, "etc", "libvirtd.conf"), LIBVIRTD_CONF.format(uuid=uuid), 0o644)
        _write(os.path.join(d, "etc", "qemu.conf"), QEMU_CONF, 0o644)
        with open("/etc/passwd") as fh:
            passwd = [line for line in fh.read().splitlines() if not line.startswith("libvirt-qemu:")]
        with open("/etc/group") as fh:
            group = [line for line in fh.read().splitlines()
                     if not line.startswith(("libvirt-qemu:", "kvm:"))]
        passwd.append(f"libvirt-qemu:x:{QEMU_UID}:{QEMU_UID}:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin")
        group += [f"libvirt-qemu:x:{QEMU_UID}:", f"kvm:x:{QEMU_UID + 1}:"]
        _write(os.path.join(d, "passwd"), "\n".join(passwd) + "\n", 0o644)
        _write(os.path.join(d, "group"), "\n".join(group) + "\n", 0o644)

    def _mount(self, h: TestHost) -> None:
        if h.name in self._mounted:
            return
        d = self.dir(h)
        for target, _ in PRIVATE:
            os.makedirs(target, exist_ok=True)  # empty mount points in the machine's tree
        binds = [(os.path.join(d, "passwd"), "/etc/passwd"), (os.path.join(d, "group"), "/etc/group")]
        binds += [(os.path.join(d, sub), target) for target, sub in PRIVATE]
        script = " && ".join(f"mount --bind {shlex.quote(src)} {shlex.quote(dst)}" for src, dst in binds)
        self.bed.run_in(h, ["sh", "-c", script])
        self._mounted.add(h.name)

    def _unmount(self, h: TestHost) -> None:
        if h.name not in self._mounted:
            return
        self._mounted.discard(h.name)
        if h.holder is None or h.holder.poll() is not None:
            return  # the host (and its mount namespace) is gone
        targets = ["/etc/passwd", "/etc/group"] + [t for t, _ in PRIVATE]
        script = "; ".join(f"umount -l {shlex.quote(t)}" for t in reversed(targets))
        self.bed.run_in(h, ["sh", "-c", script], check=False)

    def start_daemon(self, host: "str | int | TestHost", *, wait: bool = True) -> None:
        """(Re)start the daemon of ``host``; no-op when it runs."""
        h = self.bed.host(host)
        if self.running(h):
            return
        if h.name not in self._mounted:
            self._prepare(h)
            self._mount(h)
        try:
            os.unlink(self.socket_path(h))
        except FileNotFoundError:
            pass
        argv = self.bed.exec_argv(h, ["/usr/bin/python3", self.bed.reaper_path, LIBVIRTD,
                                     # the default /run/libvirtd.pid is shared by every host
                                     "--pid-file", "/run/libvirt/libvirtd.pid"])
        self.procs[h.name] = _spawn(argv, os.path.join(self.dir(h), "libvirtd.stderr"), append=True)
        if wait:
            self.wait_ready(h)

    def wait_ready(self, host: "str | int | TestHost") -> float:
        """Wait until the daemon of ``host`` answers on its socket; return how long it took."""
        import libvirt
        h = self.bed.host(host)
        proc = self.procs[h.name]
        start = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise TestBedError(f"libvirtd on {h.name} exited ({proc.returncode}): {self._tail(h)}")
            if os.path.exists(self.socket_path(h)):
                try:
                    conn = libvirt.open(self.uri(h, "unix"))
                except libvirt.libvirtError:
                    pass
                else:
                    conn.close()
                    return time.monotonic() - start
            if time.monotonic() - start > self.start_timeout:
                raise TestBedError(f"libvirtd on {h.name} not ready after {self.start_timeout:g} s: "
                                   f"{self._tail(h)}")
            time.sleep(0.05)

    def daemon_pid(self, host: "str | int | TestHost") -> Optional[int]:
        """PID of the host's libvirtd (the reaper's child), or ``None``."""
        proc = self.procs.get(self.bed.host(host).name)
        if proc is None or proc.poll() is not None:
            return None
        pids = [p for p in _children_of(proc.pid) if _comm(p) == "libvirtd" and _pid_alive(p)]
        return pids[0] if pids else None

    def running(self, host: "str | int | TestHost") -> bool:
        return self.daemon_pid(host) is not None

    def stop_daemon(self, host: "str | int | TestHost", *, destroy_domains: bool = False) -> None:
        """Stop the daemon of ``host`` (SIGTERM, as an administrator would) and reap it.

        Its QEMU processes keep running, as they do when libvirtd stops, unless
        ``destroy_domains``: then the domains are destroyed first.  A daemon started again
        finds the domains that still run.
        """
        h = self.bed.host(host)
        proc = self.procs.get(h.name)
        if proc is None:
            return
        if destroy_domains and proc.poll() is None:
            self._destroy_all(h)
        pid = self.daemon_pid(h)
        if pid is not None:
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _pid_alive(pid):
                log.warning("libvirtd on %s ignored SIGTERM; killing it", h.name)
                _signal(pid, signal.SIGKILL)
        del self.procs[h.name]
        if destroy_domains:
            # what is left under the reaper (QEMU of domains libvirt could not destroy): killed
            for child in _children_of(proc.pid):
                _signal(child, signal.SIGKILL)
        try:
            proc.wait(timeout=0.5 if not destroy_domains else 10)
        except subprocess.TimeoutExpired:
            if destroy_domains:
                _terminate(proc)
            else:
                self._orphans.append(proc)  # its QEMUs run on; reaped by stop()

    def _destroy_all(self, h: TestHost) -> None:
        import libvirt
        try:
            conn = libvirt.open(self.uri(h, "unix"))
        except libvirt.libvirtError as exc:
            log.warning("cannot reach libvirtd on %s to destroy its domains: %s", h.name, exc)
            return
        try:
            for dom in conn.listAllDomains():
                try:
                    persistent = dom.isPersistent()
                    if dom.isActive():
                        dom.destroy()  # a transient domain is gone after this
                    if persistent:
                        dom.undefine()
                except libvirt.libvirtError as exc:
                    log.warning("%s: cannot remove domain %s: %s", h.name, dom.name(), exc)
        finally:
            conn.close()

    def stop(self) -> None:
        """Destroy every domain, stop every daemon, reap, unmount.  Idempotent."""
        for h in self.hosts:
            try:
                self.stop_daemon(h, destroy_domains=True)
            except Exception as exc:  # keep cleaning up the other hosts
                log.error("stopping libvirtd on %s: %s", h.name, exc)
                proc = self.procs.pop(h.name, None)
                if proc is not None:
                    _terminate(proc)
        for proc in self._orphans:
            for child in _children_of(proc.pid):
                _signal(child, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _terminate(proc)
        self._orphans.clear()
        for h in self.hosts:
            self._unmount(h)

    def _tail(self, h: TestHost) -> str:
        out = []
        for path in (os.path.join(self.dir(h), "libvirtd.stderr"), self.log_path(h)):
            try:
                with open(path, errors="replace") as fh:
                    out.append(fh.read()[-600:].strip())
            except OSError:
                pass
        return " | ".join(x for x in out if x) or "(no log)"


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except (OSError, ValueError):
        return []


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
