"""A small Linux guest for real live migration tests, built from Debian packages.

:func:`build_guest` unpacks Debian's cloud kernel (the ``linux-image-*-cloud-amd64`` package that
``linux-image-cloud-amd64`` depends on) and writes a busybox initramfs (``busybox-static``) whose
init (``tune/testbed/guest/init.sh``) loads the virtio-net modules, takes its address from the
kernel command line and runs two services:

- a numbered stream on TCP :data:`STREAM_PORT`: one line ``SEQ <n>`` every 10 ms per client,
  like the seed's video server; :class:`StreamClient` reads it and checks the numbers;
- a control port :data:`CONTROL_PORT`: ``burn on`` / ``burn off`` (a busy loop), ``dirty N`` /
  ``nodirty`` (rewrite N MiB of RAM continuously), ``status``; see :func:`control`.

Everything is cached in ``out_dir``: the kernel is fetched once, the initramfs rebuilt only when
missing (its file name carries a hash of its contents).  The guest boots in 2-3 s under TCG and
needs at least :data:`MIN_MEMORY_MB` MiB.

>>> Guest("/k", "/i").cmdline("10.77.0.50/24", dirty_mb=8)
'console=ttyS0 quiet panic=-1 guestip=10.77.0.50/24 dirtymb=8'
"""

from __future__ import annotations

import fcntl
import glob
import gzip
import hashlib
import io
import logging
import lzma
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from ..errors import RuntimeFailure

log = logging.getLogger(__name__)

#: modules loaded by the guest's init, in this order (TESTBED.md)
VIRTIO_NET_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                      "virtio_pci", "failover", "net_failover", "virtio_net")
#: loaded after them so that the ACPI power button (QMP ``system_powerdown``) powers the guest off
POWER_BUTTON_MODULES = ("evdev", "button")
_MODULES = VIRTIO_NET_MODULES + POWER_BUTTON_MODULES
STREAM_PORT = 7000
CONTROL_PORT = 7001
MIN_MEMORY_MB = 96
#: where the guest is cached: not under /root, which test-bed hosts replace with their own
DEFAULT_DIR = os.environ.get("TUNE_GUEST_DIR") or (
    "/var/cache/tune/guest" if os.geteuid() == 0 else
    os.path.join(os.path.expanduser("~"), ".cache", "tune", "guest"))
_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")
_SCRIPTS = ("tune-stream", "tune-ctl", "tune-burn", "tune-dirty")


class GuestBuildError(RuntimeFailure):
    """The test guest cannot be built here (no apt, packages not available...)."""


@dataclass(frozen=True)
class Guest:
    """Paths of a built guest: boot it with ``-kernel`` / ``-initrd`` and :meth:`cmdline`."""

    kernel: str
    initrd: str
    kernel_version: str = ""

    def cmdline(self, ip: str, *, gateway: Optional[str] = None, dirty_mb: int = 0, burn: bool = False,
                stream_port: int = STREAM_PORT, control_port: int = CONTROL_PORT) -> str:
        """The kernel command line for a guest at ``ip`` (``A.B.C.D/NN``)."""
        parts = ["console=ttyS0", "quiet", "panic=-1", f"guestip={ip}"]
        if gateway:
            parts.append(f"gw={gateway}")
        if dirty_mb:
            parts.append(f"dirtymb={int(dirty_mb)}")
        if burn:
            parts.append("burn=1")
        if stream_port != STREAM_PORT:
            parts.append(f"streamport={int(stream_port)}")
        if control_port != CONTROL_PORT:
            parts.append(f"ctlport={int(control_port)}")
        return " ".join(parts)


# --- building -----------------------------------------------------------------------------
def _run(argv: list[str], cwd: Optional[str] = None, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{argv[0]} not found: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise GuestBuildError(f"{' '.join(argv)} timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise GuestBuildError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout


def kernel_package() -> str:
    """Name of the versioned package ``linux-image-cloud-amd64`` depends on."""
    def depends() -> Optional[str]:
        try:
            out = _run(["apt-cache", "depends", "linux-image-cloud-amd64"])
        except GuestBuildError:
            return None
        m = re.search(r"Depends:\s*(linux-image-\S+-cloud-amd64)", out)
        return m.group(1) if m else None

    name = depends()
    if name is None and os.geteuid() == 0:
        log.info("apt-cache knows no linux-image-cloud-amd64; running apt-get update")
        try:
            _run(["apt-get", "update", "-qq"], timeout=600)
        except GuestBuildError as exc:
            raise GuestBuildError(f"apt-get update failed: {exc}") from exc
        name = depends()
    if name is None:
        raise GuestBuildError("cannot resolve linux-image-cloud-amd64 with apt-cache "
                              "(not Debian/amd64, or no package lists: run apt-get update)")
    return name


def _download(package: str, workdir: str) -> str:
    _run(["apt-get", "download", "-o", "APT::Sandbox::User=root", package], cwd=workdir)
    debs = glob.glob(os.path.join(workdir, f"{package}_*.deb"))
    if not debs:
        raise GuestBuildError(f"apt-get download {package} left no .deb in {workdir}")
    return debs[0]


def _static_busybox(workdir: str) -> str:
    """A statically linked busybox: the installed one if it is static, else busybox-static's."""
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(cand):
            try:
                out = subprocess.run(["file", "-L", cand], capture_output=True, text=True).stdout
            except FileNotFoundError:
                out = ""
            if "statically linked" in out or "static-pie" in out:
                return cand
            # without `file`: busybox-static's binary has no PT_INTERP segment
            with open(cand, "rb") as fh:
                if b"/lib64/ld-linux" not in fh.read(4096):
                    return cand
    deb = _download("busybox-static", workdir)
    root = os.path.join(workdir, "busybox")
    _run(["dpkg-deb", "-x", deb, root])
    path = os.path.join(root, "bin", "busybox")
    if not os.path.exists(path):
        raise GuestBuildError("busybox-static package has no bin/busybox")
    return path


def _newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio ``newc`` archive of ``(path, mode, data, rdev)`` entries (what the kernel reads)."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * ((4 - n % 4) % 4))

    ino = 1
    for path, mode, data, rdev in entries + [("TRAILER!!!", 0, b"", 0)]:
        name = path.encode() + b"\0"
        major, minor = (rdev >> 8) & 0xFFF, rdev & 0xFF
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name), 0]
        head = b"070701" + b"".join(b"%08X" % f for f in fields)
        out.write(head + name)
        pad(len(head) + len(name))
        out.write(data)
        pad(len(data))
        ino += 1
    return out.getvalue()


def _initrd_entries(busybox: str, modules: dict[str, bytes]) -> list[tuple[str, int, bytes, int]]:
    d, f, x = 0o040755, 0o100644, 0o100755
    entries: list[tuple[str, int, bytes, int]] = [(p, d, b"", 0) for p in (
        "bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "root")]
    entries.append(("dev/console", 0o020600, b"", (5 << 8) | 1))
    with open(busybox, "rb") as fh:
        entries.append(("bin/busybox", x, fh.read(), 0))
    entries.append(("bin/sh", 0o120777, b"busybox", 0))
    with open(os.path.join(_DATA, "init.sh"), "rb") as fh:
        entries.append(("init", x, fh.read(), 0))
    for script in _SCRIPTS:
        with open(os.path.join(_DATA, script), "rb") as fh:
            entries.append((f"bin/{script}", x, fh.read(), 0))
    for name in _MODULES:
        entries.append((f"lib/modules/{name}.ko", f, modules[name], 0))
    return entries


def _data_hash() -> str:
    h = hashlib.sha256()
    for name in ("init.sh",) + _SCRIPTS:
        with open(os.path.join(_DATA, name), "rb") as fh:
            h.update(name.encode() + b"\0" + fh.read())
    return h.hexdigest()[:12]


def _find_module(tree: str, name: str) -> bytes:
    for ext in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        pattern = os.path.join(tree, "lib", "modules", "*", "kernel", "**", name + ext)
        hits = glob.glob(pattern, recursive=True)
        if not hits:
            continue
        with open(hits[0], "rb") as fh:
            raw = fh.read()
        if ext == ".ko.xz":
            return lzma.decompress(raw)
        if ext == ".ko.gz":
            return gzip.decompress(raw)
        if ext == ".ko.zst":
            raise GuestBuildError(f"{name}.ko.zst: zstd modules not supported")
        return raw
    raise GuestBuildError(f"kernel package has no module {name}")


def build_guest(out_dir: str = DEFAULT_DIR) -> Guest:
    """Build (or find in ``out_dir``) the test guest's kernel and initramfs.

    Raises :class:`GuestBuildError` with a clear reason when the Debian packages cannot be had.
    """
    os.makedirs(out_dir, exist_ok=True)
    initrd = os.path.join(out_dir, f"initrd-{_data_hash()}.gz")
    with open(os.path.join(out_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kernels = sorted(glob.glob(os.path.join(out_dir, "vmlinuz-*")))
        modules_dir = os.path.join(out_dir, "modules")
        have_modules = all(os.path.exists(os.path.join(modules_dir, m + ".ko")) for m in _MODULES)
        if kernels and have_modules and os.path.exists(initrd):
            kernel = kernels[-1]
            return Guest(kernel, initrd, os.path.basename(kernel)[len("vmlinuz-"):])
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="tune-guest-", dir=out_dir) as work:
            if not (kernels and have_modules):
                pkg = kernel_package()
                log.info("fetching %s", pkg)
                deb = _download(pkg, work)
                tree = os.path.join(work, "kernel")
                _run(["dpkg-deb", "-x", deb, tree])
                found = glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
                if not found:
                    raise GuestBuildError(f"{pkg} has no /boot/vmlinuz-*")
                os.makedirs(modules_dir, exist_ok=True)
                for m in _MODULES:
                    with open(os.path.join(modules_dir, m + ".ko"), "wb") as fh:
                        fh.write(_find_module(tree, m))
                for old in kernels:
                    os.unlink(old)
                kernel_tmp = os.path.join(out_dir, ".vmlinuz.tmp")
                shutil.copyfile(found[0], kernel_tmp)
                os.replace(kernel_tmp, os.path.join(out_dir, os.path.basename(found[0])))
                kernels = sorted(glob.glob(os.path.join(out_dir, "vmlinuz-*")))
            modules = {}
            for m in _MODULES:
                with open(os.path.join(modules_dir, m + ".ko"), "rb") as fh:
                    modules[m] = fh.read()
            busybox = _static_busybox(work)
            data = gzip.compress(_newc(_initrd_entries(busybox, modules)), compresslevel=6)
            tmp = initrd + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, initrd)
            # older initrd-*.gz stay: running VMs name them, and a migration destination loads
            # the same files again
        kernel = kernels[-1]
        log.info("guest built in %.1fs: %s %s", time.monotonic() - start, kernel, initrd)
        return Guest(kernel, initrd, os.path.basename(kernel)[len("vmlinuz-"):])


# --- talking to a running guest -----------------------------------------------------------
_CONSOLE_ERRORS = re.compile(r"^.*(?:BUG|Oops|panic|corruption|general protection|is not a head|"
                             r"Bad page|segfault|WARNING: CPU).*$", re.MULTILINE)


def console_errors(console: str) -> list[str]:
    """Kernel error lines in a guest's console output (a guest that went wrong after a migration).

    >>> console_errors("GUEST-UP ip=1\\n[ 4.1] list_del corruption, x->next is NULL\\n")
    ['[ 4.1] list_del corruption, x->next is NULL']
    """
    return [m.strip() for m in _CONSOLE_ERRORS.findall(console)]


def control(address: str, command: str, *, port: int = CONTROL_PORT, timeout: float = 10.0) -> str:
    """Send one command to the guest's control port and return its one-line answer.

    ``control(ip, "burn on")`` starts a busy loop in the guest, ``"burn off"`` stops it.
    """
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\nquit\n")
        f = sock.makefile("rb")
        return f.readline().decode().strip()


def wait_ping(address: str, timeout: float = 60.0) -> float:
    """Wait until ``address`` answers ping; return how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        r = subprocess.run(["ping", "-c1", "-W1", "-n", address], capture_output=True)
        if r.returncode == 0:
            return time.monotonic() - start
        time.sleep(0.1)
    raise RuntimeFailure(f"{address} does not answer ping after {timeout:g}s")


def wait_port(address: str, port: int, timeout: float = 60.0) -> float:
    """Wait until a TCP port of the guest accepts connections."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.1)
    raise RuntimeFailure(f"{address}:{port} does not accept connections after {timeout:g}s")


@dataclass
class StreamReport:
    """What a :class:`StreamClient` saw."""

    received: int
    first: Optional[int]
    last: Optional[int]
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (expected, got)
    repeats: int = 0
    error: Optional[str] = None  # reset, EOF...
    longest_silence: float = 0.0  # seconds between two consecutive lines

    @property
    def continuous(self) -> bool:
        return not self.gaps and not self.repeats and self.error is None and self.received > 0


class StreamClient:
    """Reads the guest's numbered stream on one TCP connection, in a thread.

    >>> c = StreamClient.__new__(StreamClient); c._lines = [(0.0, 5), (0.01, 6), (0.5, 8)]
    >>> r = c.report(); (r.gaps, r.repeats, round(r.longest_silence, 2))
    ([(7, 8)], 0, 0.49)
    """

    def __init__(self, address: str, port: int = STREAM_PORT, *, timeout: float = 10.0) -> None:
        self.address = address
        self.port = port
        self._lines: list[tuple[float, int]] = []
        self._error: Optional[str] = None
        self._stop = threading.Event()
        self._sock = socket.create_connection((address, port), timeout=timeout)
        self._sock.settimeout(timeout)
        self.local_port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._read, name=f"stream-{address}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                chunk = self._sock.recv(4096)
                if not chunk:
                    if not self._stop.is_set():
                        self._error = "EOF: the guest closed the connection"
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                now = time.monotonic()
                for line in lines:
                    if line.startswith(b"SEQ "):
                        self._lines.append((now, int(line[4:])))
        except OSError as exc:
            if not self._stop.is_set():
                self._error = f"{type(exc).__name__}: {exc}"

    @property
    def count(self) -> int:
        return len(self._lines)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        """Wait until ``n`` lines have arrived in total."""
        deadline = time.monotonic() + timeout
        while len(self._lines) < n:
            if self._error or time.monotonic() > deadline:
                raise RuntimeFailure(f"stream from {self.address}: {len(self._lines)} lines of {n} "
                                     f"({self._error or 'timeout'})")
            time.sleep(0.01)

    def report(self) -> StreamReport:
        lines = list(self._lines)
        gaps, repeats, silence = [], 0, 0.0
        for (t0, a), (t1, b) in zip(lines, lines[1:]):  # noqa: B905
            if b <= a:
                repeats += 1
            elif b != a + 1:
                gaps.append((a + 1, b))
            silence = max(silence, t1 - t0)
        return StreamReport(len(lines), lines[0][1] if lines else None, lines[-1][1] if lines else None,
                            gaps, repeats, getattr(self, "_error", None), silence)

    def close(self) -> StreamReport:
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
        return self.report()

    def __enter__(self) -> "StreamClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m tune.testbed.guest [OUT_DIR]``: build (or find) the guest, print its paths."""
    import sys
    args = sys.argv[1:] if argv is None else argv
    try:
        g = build_guest(args[0] if args else DEFAULT_DIR)
    except GuestBuildError as exc:
        print(f"guest: {exc}", file=sys.stderr)
        return 1
    print(f"kernel {g.kernel}\ninitrd {g.initrd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
