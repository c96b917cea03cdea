"""Real hosts on one machine: network namespaces, a bridge, and one ``sshd`` per namespace.

Why: the SSH executor, the host-key policies, the fault handling and the ``xen`` driver must be
tested against real ``sshd`` processes and real TCP, not mocks.  Each test host is

- a network namespace ``<prefix>-hN`` with a veth ``eth0`` at ``SUBNET.(N+1)/24``, whose peer is
  enslaved to a bridge ``br-<prefix>`` at ``SUBNET.1/24`` in the root namespace;
- a *holder* process (``sleep``) started in that namespace under ``unshare --uts --mount``: it
  owns the host's hostname (``hN``) and its private mounts (``/root``, ``/opt``,
  ``/etc/hosts`` and the ``private_dirs``, by default ``/var/lib/tune`` and ``/tmp/tune``, bound
  from ``base_dir/hN/``; the rest of the file system, ``/tmp`` included, is the machine's), so
  the host keeps its identity while its ``sshd`` is killed and restarted (crash tests), and
  :meth:`TestBed.exec_argv` always has a process to ``nsenter``;
- an ``sshd -D -e`` started with :class:`subprocess.Popen` inside the holder's namespaces, with
  its own host key, key-only root login and ``internal-sftp``.

Every process started is a child of the :class:`TestBed` object and is reaped by ``wait()``
(PID 1 on the CI machines does not reap orphans: anything not waited for stays a zombie).
``down()`` is idempotent and ``up()`` first removes leftovers of a crashed run with the same
prefix (namespaces, bridge, processes recorded in the state file).

Example (as root)::

    with TestBed(3, prefix="tt", subnet="10.78.0") as bed:
        print(bed.hosts[0].address, bed.key_path)
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..errors import TuneError

log = logging.getLogger(__name__)

__all__ = ["TestBed", "TestHost", "TestBedError", "testbed_missing_reason", "SKIP_REASON"]

SSHD = "/usr/sbin/sshd"
#: directories each host sees as its own (besides /root and /opt): ``dirlocal`` of the
#: deployed applications, so two hosts never share a pipe or a legacy tree
DEFAULT_PRIVATE_DIRS = ("/var/lib/tune", "/tmp/tune")
SKIP_REASON = "needs root and openssh-server/iproute2: run as root or via .ci/run"
#: where the stand-in ``xl``/``xentop`` live inside each host (its private ``/opt``)
XEN_BIN = "/opt/xen/bin"
HOST_PATH = f"{XEN_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


#: Runs as the parent of each sshd: adopts and reaps orphaned sessions, forwards SIGTERM.
_REAPER = r"""
# tune test bed: parent of one sshd; adopts and reaps its orphaned sessions
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child = os.fork()
if child == 0:
    os.execv(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *a: os.kill(child, signal.SIGTERM))
status = 0
while True:
    try:
        pid, st = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    except InterruptedError:
        continue
    if pid == child:
        status = os.waitstatus_to_exitcode(st)
sys.exit(status if status >= 0 else 128 - status)
"""


class TestBedError(TuneError):
    """The test bed could not be built or torn down."""

    __test__ = False  # not a pytest test class


def testbed_missing_reason() -> Optional[str]:
    """Why the namespace test bed cannot run here, or ``None`` when it can."""
    if os.geteuid() != 0:
        return SKIP_REASON + " (not root)"
    # /usr/bin/python3: the sshd reaper and the stand-in xl run inside the hosts, where
    # /root (and a pyenv under it) is hidden by the host's private /root
    for tool in (SSHD, "ip", "nsenter", "unshare", "ssh-keygen", "/usr/bin/python3"):
        if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool)):
            return SKIP_REASON + f" ({tool} missing)"
    return None


def _run(argv: Sequence[str], *, check: bool = True, quiet: bool = False,
         input: Optional[str] = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise TestBedError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    if proc.returncode != 0 and not quiet:
        log.debug("%s -> %d %s", " ".join(argv), proc.returncode, proc.stderr.strip())
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0): look at its state
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass(eq=False)
class TestHost:
    """One namespace host.

    ``pid`` is the holder process to ``nsenter`` into; ``sshd`` the ``Popen`` of the reaper
    whose child is the host's sshd (``sshd_pid``).
    """

    __test__ = False

    name: str  # "h1"
    index: int  # 1-based
    netns: str  # "<prefix>-h1"
    address: str  # "10.78.0.2"
    dir: str  # base_dir/h1: root/, opt/, sshd_config, host key, logs
    veth: str  # root-namespace side of the veth pair
    holder: Optional["subprocess.Popen[bytes]"] = field(default=None, repr=False)
    sshd: Optional["subprocess.Popen[bytes]"] = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """PID whose namespaces (net, mount, uts) are this host's."""
        if self.holder is None:
            raise TestBedError(f"host {self.name} is not up")
        return self.holder.pid

    @property
    def sshd_pid(self) -> Optional[int]:
        """PID of the sshd listener itself (``host.sshd`` is its reaping parent)."""
        if self.sshd is None or self.sshd.poll() is not None:
            return None
        try:
            with open(os.path.join(self.dir, "sshd.pid")) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            return None

    @property
    def host_key_path(self) -> str:
        return os.path.join(self.dir, "ssh_host_ed25519_key")

    @property
    def sshd_config(self) -> str:
        return os.path.join(self.dir, "sshd_config")

    def host_key_line(self) -> str:
        """``ssh-ed25519 AAAA...`` of the current host key."""
        with open(self.host_key_path + ".pub") as fh:
            kind, blob = fh.read().split()[:2]
        return f"{kind} {blob}"


class TestBed:
    """N namespace hosts reachable over SSH from the root namespace.  Needs root."""

    __test__ = False

    def __init__(self, n_hosts: int, base_dir: str = "/tmp/tune-testbed", prefix: str = "tb",
                 subnet: str = "10.77.0", *, xen: bool = True,
                 max_startups: str = "100:30:200",
                 private_dirs: Sequence[str] = DEFAULT_PRIVATE_DIRS,
                 xen_memory_mb: int = 4096, xen_cpus: int = 4) -> None:
        if not 1 <= n_hosts <= 200:
            raise ValueError("n_hosts must be within 1..200")
        if len(prefix) > 6 or not prefix.isalnum():
            raise ValueError("prefix must be 1-6 alphanumeric characters (interface names are short)")
        self.n_hosts = n_hosts
        self.base_dir = os.path.abspath(base_dir)
        self.prefix = prefix
        self.subnet = subnet
        self.xen = xen
        self.max_startups = max_startups
        self.private_dirs = [os.path.normpath(d) for d in private_dirs]
        for d in self.private_dirs:
            if not d.startswith("/") or d in ("/", "/tmp", "/etc", "/usr", "/proc", "/sys", "/dev"):
                raise ValueError(f"cannot make {d!r} private to each host")
        self.xen_memory_mb = xen_memory_mb
        self.xen_cpus = xen_cpus
        self.bridge = f"br-{prefix}"
        self.key_path = os.path.join(self.base_dir, "id_ed25519")
        self.known_hosts_path = os.path.join(self.base_dir, "known_hosts")
        #: all hosts' current keys, used by the hosts' own ssh clients (xl migrate)
        self.global_known_hosts = os.path.join(self.base_dir, "ssh_known_hosts")
        self.xen_state_dir = os.path.join(self.base_dir, "xenstate")
        self.state_path = os.path.join(self.base_dir, "state.json")
        self.reaper_path = os.path.join(self.base_dir, "sshd_reaper.py")
        self.hosts: list[TestHost] = [
            TestHost(name=f"h{i}", index=i, netns=f"{prefix}-h{i}", address=f"{subnet}.{i + 1}",
                     dir=os.path.join(self.base_dir, f"h{i}"), veth=f"v{prefix}h{i}")
            for i in range(1, n_hosts + 1)]
        self._up = False

    # -- lookup -----------------------------------------------------------------------------
    def host(self, name_or_index: "str | int | TestHost") -> TestHost:
        """A host by name (``"h2"``), 1-based index, address, or the host itself."""
        if isinstance(name_or_index, TestHost):
            return name_or_index
        for h in self.hosts:
            if name_or_index in (h.name, h.index, h.address, h.netns):
                return h
        raise KeyError(name_or_index)

    @property
    def addresses(self) -> list[str]:
        return [h.address for h in self.hosts]

    def ssh_command(self, host: "str | int | TestHost") -> list[str]:
        """An OpenSSH command line reaching ``host`` from the root namespace."""
        h = self.host(host)
        return ["ssh", "-i", self.key_path, "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.global_known_hosts}",
                "-o", "StrictHostKeyChecking=yes", f"root@{h.address}"]

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "TestBed":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self, timeout: float = 20.0) -> "TestBed":
        """Build the network, start every sshd and wait until each accepts connections."""
        reason = testbed_missing_reason()
        if reason:
            raise TestBedError(reason)
        self.cleanup_leftovers()
        t0 = time.monotonic()
        try:
            self._prepare_files()
            self._network_up()
            for h in self.hosts:
                self._start_holder(h)
            self._write_hosts_known()
            for h in self.hosts:
                self.start_sshd(h, wait=False)
            self._up = True
            self.wait_ready(timeout=timeout)
            self._save_state()
        except BaseException:
            self.down()
            raise
        log.info("test bed %s up: %d hosts in %.2f s", self.prefix, self.n_hosts,
                 time.monotonic() - t0)
        return self

    def down(self) -> None:
        """Kill and reap every process started, remove namespaces and bridge.  Idempotent."""
        for h in self.hosts:
            if h.sshd is not None:
                self.kill_sshd(h)
            if h.holder is not None:
                _terminate(h.holder)
                h.holder = None
        self._clear_namespaces_and_state()
        self._up = False

    def cleanup_leftovers(self) -> None:
        """Remove what a crashed run with this prefix left: processes, namespaces, bridge."""
        try:
            with open(self.state_path) as fh:
                state = json.load(fh)
        except (OSError, ValueError):
            state = {}
        for pid in state.get("pids", []):
            if isinstance(pid, int) and pid > 1 and _pid_alive(pid) and _is_ours(pid, self.base_dir):
                _kill_and_reap([pid])
        self._clear_namespaces_and_state()

    def _clear_namespaces_and_state(self) -> None:
        # whatever still lives in our namespaces (holders, sshd sessions, a stray xl)
        for ns in self._existing_namespaces():
            _kill_and_reap(_netns_pids(ns))
        self._network_down()
        try:
            os.unlink(self.state_path)
        except FileNotFoundError:
            pass

    # -- pieces of up() ---------------------------------------------------------------------
    def _prepare_files(self) -> None:
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)  # StrictModes and a world-writable /tmp parent
        os.makedirs("/run/sshd", exist_ok=True)
        if not os.path.exists(self.key_path):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"tune-testbed-{self.prefix}",
                  "-f", self.key_path])
        if not os.path.exists(self.known_hosts_path):
            open(self.known_hosts_path, "w").close()
        os.chmod(self.known_hosts_path, 0o600)
        os.makedirs(self.xen_state_dir, exist_ok=True)
        _write(self.reaper_path, _REAPER.lstrip(), 0o644)
        with open(self.key_path + ".pub") as fh:
            pub = fh.read()
        hosts_lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        hosts_lines += [f"{h.address}\t{h.name}" for h in self.hosts]
        hosts_lines.append(f"{self.subnet}.1\tmanager")
        with open(os.path.join(self.base_dir, "hosts"), "w") as fh:
            fh.write("\n".join(hosts_lines) + "\n")
        for h in self.hosts:
            ssh_dir = os.path.join(h.dir, "root", ".ssh")
            os.makedirs(ssh_dir, exist_ok=True)
            os.makedirs(os.path.join(h.dir, "opt"), exist_ok=True)
            for d in self.private_dirs:
                os.makedirs(d, exist_ok=True)  # the mount point, in the machine's tree
                os.makedirs(self._private_source(h, d), exist_ok=True)
            os.chmod(h.dir, 0o755)
            os.chmod(os.path.join(h.dir, "root"), 0o700)
            os.chmod(ssh_dir, 0o700)
            _write(os.path.join(ssh_dir, "authorized_keys"), pub, 0o600)
            # the host's own ssh client (xl migrate uses "ssh HOST xl migrate-receive")
            shutil.copyfile(self.key_path, os.path.join(ssh_dir, "id_ed25519"))
            os.chmod(os.path.join(ssh_dir, "id_ed25519"), 0o600)
            _write(os.path.join(ssh_dir, "config"),
                   "Host *\n"
                   "  User root\n"
                   "  IdentityFile /root/.ssh/id_ed25519\n"
                   "  IdentitiesOnly yes\n"
                   "  BatchMode yes\n"
                   "  ConnectTimeout 5\n"
                   "  StrictHostKeyChecking yes\n"
                   f"  GlobalKnownHostsFile {self.global_known_hosts}\n"
                   "  UserKnownHostsFile /dev/null\n"
                   "  LogLevel ERROR\n", 0o600)
            if not os.path.exists(h.host_key_path):
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.name,
                      "-f", h.host_key_path])
            _write(h.sshd_config, self._sshd_config(h), 0o644)
            if self.xen:
                self.install_fake_xl(h)

    def _sshd_config(self, h: TestHost) -> str:
        return "\n".join([
            "Port 22",
            f"ListenAddress {h.address}",
            f"HostKey {h.host_key_path}",
            f"PidFile {os.path.join(h.dir, 'sshd.pid')}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            f"MaxStartups {self.max_startups}",
            "MaxSessions 100",
            "Subsystem sftp internal-sftp",
            f"SetEnv PATH={HOST_PATH} TUNE_TESTBED_HOST={h.name}",
            "LogLevel INFO",
            ""])

    @staticmethod
    def _private_source(h: TestHost, path: str) -> str:
        return os.path.join(h.dir, "private", path.strip("/").replace("/", "_"))

    def xen_grid(self, directory: str, hosts: Optional[Sequence["str | int | TestHost"]] = None) -> str:
        """Write a grid file (and its nodefile) making ``hosts`` the dom0 family over SSH.

        Two VM slots per host, the test bed's key, the ``xen`` driver (the stand-in ``xl``): what
        ``tune deploy app.xml --grid FILE`` needs to run an application on this test bed.
        """
        chosen = [self.host(h) for h in hosts] if hosts else list(self.hosts)
        nodes = os.path.join(directory, "nodes")
        _write(nodes, "".join(f"root@{h.address}\nroot@{h.address}\n" for h in chosen), 0o644)
        grid = os.path.join(directory, "grid.xml")
        _write(grid, f'<grid><family name="dom0" nodefile="{nodes}" protocol="ssh" driver="xen" '
                     f'key="{self.key_path}" dirlocal="/var/lib/tune" allocation="fill"/></grid>\n', 0o644)
        return grid

    def xl_domains(self, host: "str | int | TestHost") -> list[str]:
        """The guest domains the stand-in ``xl list`` shows on ``host`` (asked inside the host)."""
        out = self.run_in(host, ["/opt/xen/bin/xl", "list"]).stdout
        return sorted(line.split()[0] for line in out.splitlines()[1:]
                      if line.strip() and not line.startswith("Domain-0"))

    def install_fake_xl(self, host: "str | int | TestHost") -> None:
        """Put the stand-in ``xl`` and ``xentop`` into the host's ``/opt/xen/bin``.

        The script is configured by ``/opt/xen/etc/fake-xl.json`` (shared state directory and
        this host's name), so it works the same under ssh and under :meth:`exec_argv`.
        """
        h = self.host(host)
        from . import fake_xl
        bindir = os.path.join(h.dir, "opt", "xen", "bin")
        etcdir = os.path.join(h.dir, "opt", "xen", "etc")
        os.makedirs(bindir, exist_ok=True)
        os.makedirs(etcdir, exist_ok=True)
        target = os.path.join(bindir, "xl")
        shutil.copyfile(fake_xl.__file__, target)
        os.chmod(target, 0o755)
        link = os.path.join(bindir, "xentop")
        if not os.path.islink(link):
            if os.path.exists(link):
                os.unlink(link)
            os.symlink("xl", link)
        _write(os.path.join(etcdir, "fake-xl.json"),
               json.dumps({"state_dir": self.xen_state_dir, "host": h.name,
                           "address": h.address, "total_memory": self.xen_memory_mb,
                           "nr_cpus": self.xen_cpus}) + "\n", 0o644)

    def _existing_namespaces(self) -> list[str]:
        out = _run(["ip", "netns", "list"], check=False, quiet=True).stdout
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return [n for n in names if n.startswith(self.prefix + "-h")]

    def _network_up(self) -> None:
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for h in self.hosts:
            _run(["ip", "netns", "add", h.netns])
            _run(["ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0",
                  "netns", h.netns])
            _run(["ip", "link", "set", h.veth, "master", self.bridge, "up"])
            _run(["ip", "-n", h.netns, "addr", "add", f"{h.address}/24", "dev", "eth0"])
            _run(["ip", "-n", h.netns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
            _run(["ip", "-n", h.netns, "route", "add", "default", "via", f"{self.subnet}.1"])

    def _network_down(self) -> None:
        for ns in self._existing_namespaces():
            _run(["ip", "netns", "del", ns], check=False, quiet=True)
        for h in self.hosts:  # veths normally vanish with their namespace
            if os.path.exists(f"/sys/class/net/{h.veth}"):
                _run(["ip", "link", "del", h.veth], check=False, quiet=True)
        if os.path.exists(f"/sys/class/net/{self.bridge}"):
            _run(["ip", "link", "del", self.bridge], check=False, quiet=True)

    def _start_holder(self, h: TestHost) -> None:
        binds = [(f"{h.dir}/root", "/root"), (f"{h.dir}/opt", "/opt"),
                 (f"{self.base_dir}/hosts", "/etc/hosts")]
        binds += [(self._private_source(h, d), d) for d in self.private_dirs]
        script = " && ".join([f"hostname {h.name}"] + [
            f"mount --bind {shlex.quote(src)} {shlex.quote(dst)}" for src, dst in binds]
            + ["exec sleep infinity"])
        h.holder = _spawn(["ip", "netns", "exec", h.netns, "unshare", "--uts", "--mount",
                           "--propagation", "private", "sh", "-c", script],
                          os.path.join(h.dir, "holder.log"), append=False)
        # the holder is ready once it runs sleep in its own UTS namespace
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if h.holder.poll() is not None:
                raise TestBedError(f"host {h.name}: namespace holder exited "
                                   f"({h.holder.returncode}); see {h.dir}/holder.log")
            try:
                if os.readlink(f"/proc/{h.holder.pid}/exe").endswith("sleep"):
                    return
            except OSError:
                pass
            time.sleep(0.005)
        raise TestBedError(f"host {h.name}: namespace holder not ready")

    def _write_hosts_known(self) -> None:
        """The hosts' own clients trust every host's current key (by name and address)."""
        lines = [f"{h.name},{h.address} {h.host_key_line()}" for h in self.hosts]
        _write(self.global_known_hosts, "\n".join(lines) + "\n", 0o644)

    def _save_state(self) -> None:
        pids = []
        for h in self.hosts:
            for proc in (h.holder, h.sshd):
                if proc is not None:
                    pids.append(proc.pid)
        state = {"n_hosts": self.n_hosts, "prefix": self.prefix, "subnet": self.subnet,
                 "base_dir": self.base_dir, "bridge": self.bridge, "key_path": self.key_path,
                 "known_hosts_path": self.known_hosts_path, "pids": pids,
                 "supervisor": os.getpid(),
                 "hosts": [{"name": h.name, "netns": h.netns, "address": h.address,
                            "pid": h.holder.pid if h.holder else None,
                            "sshd_pid": h.sshd.pid if h.sshd else None} for h in self.hosts]}
        _write(self.state_path, json.dumps(state, indent=1) + "\n", 0o644)

    # -- per-host operations ----------------------------------------------------------------
    def exec_argv(self, host: "str | int | TestHost", argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run inside ``host``'s network, mount and UTS namespaces."""
        h = self.host(host)
        return ["nsenter", "-t", str(h.pid), "-n", "-m", "-u", "--", *argv]

    def run_in(self, host: "str | int | TestHost", argv: Sequence[str], *,
               check: bool = True, input: Optional[str] = None,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host`` (not over SSH) and return the completed process."""
        return _run(self.exec_argv(host, argv), check=check, input=input, timeout=timeout)

    def start_sshd(self, host: "str | int | TestHost", *, wait: bool = True) -> None:
        """(Re)start the host's sshd inside its namespaces; no-op when it is running.

        ``host.sshd`` is a tiny reaper (``PR_SET_CHILD_SUBREAPER``) whose child is
        ``sshd -D -e``: sessions orphaned when sshd is killed are re-parented to it and reaped,
        instead of becoming zombies of PID 1.  It exits once sshd and every orphan are gone.
        """
        h = self.host(host)
        if h.sshd is not None and h.sshd.poll() is None:
            return
        if h.sshd is not None:
            h.sshd.wait()
        python = "/usr/bin/python3"
        h.sshd = _spawn(
            self.exec_argv(h, [python, self.reaper_path, SSHD, "-D", "-e", "-f", h.sshd_config]),
            os.path.join(h.dir, "sshd.log"), append=True)
        if wait:
            self.wait_ready([h])
        if self._up:
            self._save_state()

    def kill_sshd(self, host: "str | int | TestHost") -> None:
        """Crash the host's sshd: the listener and every session (as a host crash would).

        sshd puts each session in a session of its own, so everything running in the host's
        network namespace except the namespace holder is killed; the reaper then exits.
        """
        h = self.host(host)
        if h.sshd is None:
            return
        others = [p for p in _netns_pids(h.netns) if p not in (h.pid, h.sshd.pid)]
        # sshd processes first, so clients see a lost connection (as in a crash), not the
        # exit of their command killed a moment earlier
        daemons = [p for p in others if _comm(p) == "sshd"]
        for group in (daemons, [p for p in others if p not in daemons]):
            for pid in group:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 1.0
            while group and time.monotonic() < deadline and any(_pid_alive(p) for p in group):
                time.sleep(0.005)
        try:
            h.sshd.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("sshd reaper of %s still waits for children; killing it", h.name)
            _terminate(h.sshd)
        h.sshd = None

    def link_down(self, host: "str | int | TestHost") -> None:
        """Partition the host: its ``eth0`` goes down (packets are dropped, not refused)."""
        h = self.host(host)
        _run(["ip", "-n", h.netns, "link", "set", "eth0", "down"])

    def link_up(self, host: "str | int | TestHost") -> None:
        h = self.host(host)
        _run(["ip", "-n", h.netns, "link", "set", "eth0", "up"])
        # the default route vanished with the link
        _run(["ip", "-n", h.netns, "route", "replace", "default", "via", f"{self.subnet}.1"],
             check=False)

    def link_is_up(self, host: "str | int | TestHost") -> bool:
        h = self.host(host)
        out = _run(["ip", "-n", h.netns, "-o", "link", "show", "eth0"], check=False).stdout
        if "<" not in out:
            return False
        return "UP" in out.split("<", 1)[1].split(">", 1)[0].split(",")

    def regenerate_host_key(self, host: "str | int | TestHost") -> str:
        """Give the host a new host key and restart its sshd; returns the new public key line."""
        h = self.host(host)
        for path in (h.host_key_path, h.host_key_path + ".pub"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.name, "-f", h.host_key_path])
        self.kill_sshd(h)
        self._write_hosts_known()
        self.start_sshd(h)
        return h.host_key_line()

    def install(self, host: "str | int | TestHost", local_path: str, remote_path: str,
                mode: int = 0o755) -> None:
        """Copy a local file into the host's file system view (``/opt``, ``/root`` are private)."""
        with open(local_path, "rb") as fh:
            data = fh.read()
        argv = self.exec_argv(host, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && '
                                                 'chmod "$2" "$1"', "sh", remote_path,
                                     format(mode, "o")])
        proc = subprocess.run(argv, input=data, capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise TestBedError(f"install {local_path} -> {self.host(host).name}:{remote_path}: "
                               f"{proc.stderr.decode(errors='replace').strip()}")

    def wait_ready(self, hosts: Optional[Sequence[TestHost]] = None, timeout: float = 20.0) -> None:
        """Wait until each host's sshd sends its banner on port 22."""
        pending = list(hosts if hosts is not None else self.hosts)
        deadline = time.monotonic() + timeout
        while pending:
            h = pending[0]
            if h.sshd is not None and h.sshd.poll() is not None:
                raise TestBedError(f"sshd on {h.name} exited ({h.sshd.returncode}); "
                                   f"see {h.dir}/sshd.log")
            try:
                with socket.create_connection((h.address, 22), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(4).startswith(b"SSH-"):
                        pending.pop(0)
                        continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TestBedError(f"sshd on {h.name} ({h.address}) not ready after {timeout} s")
            time.sleep(0.01)

    def restore(self) -> None:
        """Bring every host back to normal: link up, sshd running.  Used between tests."""
        for h in self.hosts:
            if not self.link_is_up(h):
                self.link_up(h)
        for h in self.hosts:
            if h.sshd is None or h.sshd.poll() is not None:
                self.start_sshd(h, wait=False)
        self.wait_ready()

    def status(self) -> list[dict[str, object]]:
        """One dict per host: name, address, namespace, sshd running, link up."""
        out = []
        for h in self.hosts:
            out.append({"name": h.name, "address": h.address, "netns": h.netns,
                        "sshd": bool(h.sshd is not None and h.sshd.poll() is None),
                        "link": self.link_is_up(h) if h.netns in self._existing_namespaces() else False})
        return out


def _write(path: str, text: str, mode: int) -> None:
    """Write atomically (temp file + rename) with ``mode``."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _terminate(proc: "subprocess.Popen[bytes]") -> None:
    """SIGTERM then SIGKILL the process group, and reap."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    else:
        proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _is_ours(pid: int, base_dir: str) -> bool:
    """Is ``pid`` a holder or sshd of a test bed in ``base_dir`` (not a recycled PID)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return base_dir in cmd


def _spawn(argv: Sequence[str], log_path: str, *, append: bool) -> "subprocess.Popen[bytes]":
    """Start a daemon in its own session, stderr to ``log_path`` (our copy of the fd closed)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(log_path, flags, 0o644)
    try:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=fd, start_new_session=True)
    finally:
        os.close(fd)


def _netns_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False, quiet=True).stdout.split()
    return [int(p) for p in out if p.isdigit()]


def _kill_and_reap(pids: Sequence[int]) -> None:
    """SIGKILL ``pids`` (leftovers of a crashed run) and reap those that are our children.

    A killed process whose parent is also being killed may be re-parented a moment later:
    keep looking at it while its parent is in the set.
    """
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 3.0
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                ppid = _ppid(pid)
                if ppid is None or ppid not in pending:  # gone, or someone else's child
                    pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.005)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _ppid(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
