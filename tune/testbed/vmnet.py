"""VM networking on top of the namespace test bed (:mod:`tune.testbed.netns`).

:func:`add_vm_bridge` turns a test host into a hypervisor host: a bridge ``br0`` inside the host
holds its ``eth0`` (the veth to the root bridge) and the host's address moves onto ``br0``, so a
guest's tap in ``br0`` sits on the same L2 segment as every host and the root namespace.  A guest
migrated from h1 to h2 keeps its address; QEMU's announce after migration updates the bridges.

:func:`qemu_driver` gives a :class:`~tune.virt.qemu.QemuDriver` for a host of the bed: it runs
QEMU inside the host's namespaces, puts VM taps in ``br0`` and receives migrations on the host's
address.
"""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Any, Sequence

from ..errors import RuntimeFailure

log = logging.getLogger(__name__)

__all__ = ["add_vm_bridge", "remove_vm_bridge", "add_tap", "qemu_driver", "guest_address", "QemuPair",
           "VM_BRIDGE"]

VM_BRIDGE = "br0"


def _ip(testbed: Any, host: Any, args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = testbed.exec_argv(host, ["ip", *args])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeFailure(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def add_vm_bridge(testbed: Any, host: Any, bridge: str = VM_BRIDGE) -> None:
    """Make ``bridge`` = {eth0, VM taps} in ``host`` and move the host's address onto it.

    Idempotent: a host that has the bridge already is left alone.
    """
    h = testbed.host(host)
    if _ip(testbed, h, ["link", "show", bridge], check=False).returncode == 0:
        return
    prefix = f"{h.address}/24"
    mac = _ip(testbed, h, ["-br", "link", "show", "eth0"]).stdout.split()[2]
    _ip(testbed, h, ["link", "add", bridge, "type", "bridge", "forward_delay", "0"])
    # a fixed MAC: by default a bridge takes the lowest MAC of its ports, so adding or removing
    # a VM's tap would change the host's MAC under its neighbours' ARP caches (30 s outages)
    _ip(testbed, h, ["link", "set", bridge, "address", mac])
    # no STP, no learning delay: a migrated guest must be reachable at once
    _ip(testbed, h, ["link", "set", bridge, "type", "bridge", "stp_state", "0"], check=False)
    _ip(testbed, h, ["link", "set", bridge, "up"])
    _ip(testbed, h, ["addr", "del", prefix, "dev", "eth0"], check=False)
    _ip(testbed, h, ["link", "set", "eth0", "master", bridge])
    _ip(testbed, h, ["addr", "add", prefix, "dev", bridge])
    _ip(testbed, h, ["route", "replace", "default", "via", f"{testbed.subnet}.1"], check=False)
    log.info("%s: VM bridge %s up", h.name, bridge)


def remove_vm_bridge(testbed: Any, host: Any, bridge: str = VM_BRIDGE) -> None:
    """Undo :func:`add_vm_bridge`: the address goes back to eth0."""
    h = testbed.host(host)
    if _ip(testbed, h, ["link", "show", bridge], check=False).returncode != 0:
        return
    _ip(testbed, h, ["link", "del", bridge], check=False)
    _ip(testbed, h, ["addr", "add", f"{h.address}/24", "dev", "eth0"], check=False)
    _ip(testbed, h, ["link", "set", "eth0", "up"], check=False)
    _ip(testbed, h, ["route", "replace", "default", "via", f"{testbed.subnet}.1"], check=False)


def add_tap(testbed: Any, host: Any, tap: str, bridge: str = VM_BRIDGE) -> str:
    """Create a persistent tap in ``host`` and put it in ``bridge`` (for ``extra={"tap": ...}``)."""
    add_vm_bridge(testbed, host, bridge)
    _ip(testbed, host, ["link", "del", tap], check=False)
    _ip(testbed, host, ["tuntap", "add", "dev", tap, "mode", "tap"])
    _ip(testbed, host, ["link", "set", tap, "master", bridge, "up"])
    return tap


def guest_address(testbed: Any, index: int = 1) -> str:
    """A free test-bed address for guest number ``index`` (``SUBNET.50``, ``.51``...)."""
    if not 1 <= index <= 150:
        raise ValueError("guest index within 1..150")
    return f"{testbed.subnet}.{49 + index}"


def qemu_driver(testbed: Any, host: Any, *, bridge: str = VM_BRIDGE, **options: Any) -> Any:
    """A :class:`~tune.virt.qemu.QemuDriver` for a test-bed host (bridge made if needed)."""
    from ..virt.qemu import QemuDriver
    h = testbed.host(host)
    add_vm_bridge(testbed, h, bridge)
    options.setdefault("run_dir", os.path.join(testbed.base_dir, h.name, "qemu"))
    return QemuDriver(h.name, exec_prefix=testbed.exec_argv(h, []), bridge=bridge,
                      migration_address=h.address, **options)


class QemuPair:
    """Two test-bed hosts h1, h2 with VM bridges, a qemu driver each, and the test guest.

    For the CLI (``tune measure-migration --testbed``) and the benchmarks; a context manager
    that builds its own :class:`~tune.testbed.netns.TestBed` unless given one::

        with QemuPair() as pair:
            ip = pair.boot("vm1", memory_mb=128)
            pair.d1.migrate("vm1", pair.d2)
    """

    def __init__(self, testbed: Any = None, *, base_dir: str = "/tmp/tune-migration-bed",
                 prefix: str = "tm", subnet: str = "10.76.0", guest_dir: "str | None" = None,
                 **driver_options: Any) -> None:
        self._own = testbed is None
        self.testbed = testbed
        self.base_dir, self.prefix, self.subnet = base_dir, prefix, subnet
        self.guest_dir = guest_dir
        self.driver_options = driver_options
        self.d1: Any = None
        self.d2: Any = None
        self.guest: Any = None

    def __enter__(self) -> "QemuPair":
        from .guest import DEFAULT_DIR, build_guest
        self.guest = build_guest(self.guest_dir or DEFAULT_DIR)
        if self._own:
            from .netns import TestBed
            self.testbed = TestBed(2, base_dir=self.base_dir, prefix=self.prefix, subnet=self.subnet,
                                   xen=False)
            self.testbed.up()
        try:
            self.d1 = qemu_driver(self.testbed, "h1", **self.driver_options)
            self.d2 = qemu_driver(self.testbed, "h2", **self.driver_options)
        except BaseException:
            self.__exit__()
            raise
        return self

    def boot(self, name: str = "vm1", *, memory_mb: int = 128, index: int = 1, dirty_mb: int = 0,
             timeout: float = 60.0) -> str:
        """Create ``name`` on h1 and wait until it answers on its stream port; return its IP."""
        from ..virt.base import DomainSpec
        from .guest import STREAM_PORT, wait_ping, wait_port
        ip = guest_address(self.testbed, index)
        self.d1.create(DomainSpec(name, memory_mb=memory_mb, kernel=self.guest.kernel,
                                  initrd=self.guest.initrd,
                                  cmdline=self.guest.cmdline(f"{ip}/24", dirty_mb=dirty_mb)))
        self.d1.wait_console(name, "GUEST-UP", timeout=timeout)
        wait_ping(ip, timeout=timeout)
        wait_port(ip, STREAM_PORT, timeout=timeout)
        return ip

    def cleanup_vms(self) -> None:
        for d in (self.d1, self.d2):
            if d is not None:
                for name in d.names():
                    d.destroy(name)

    def __exit__(self, *exc: object) -> None:
        try:
            self.cleanup_vms()
        finally:
            if self.testbed is not None:
                if self._own:
                    self.testbed.down()
                else:
                    for h in ("h1", "h2"):
                        remove_vm_bridge(self.testbed, h)
