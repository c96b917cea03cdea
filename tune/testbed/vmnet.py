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

__all__ = ["add_vm_bridge", "remove_vm_bridge", "add_tap", "qemu_driver", "guest_address", "VM_BRIDGE"]

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
