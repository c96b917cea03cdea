"""Hypervisor drivers behind one interface: ``sim``, ``xen`` (xl over SSH), ``qemu`` (QMP), ``libvirt``."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import DomainInfo, DomainSpec, HostInfo, HypervisorDriver, MigrationReport

drivers: Registry[HypervisorDriver] = Registry("hypervisor driver")
drivers.register("sim", "tune.virt.sim:SimDriver")
drivers.register("xen", "tune.virt.xen:XenDriver")
drivers.register("qemu", "tune.virt.qemu:QemuDriver")
drivers.register("libvirt", "tune.virt.libvirt:LibvirtDriver", extra="libvirt")


def driver_for(name: str, host: str, **options: Any) -> HypervisorDriver:
    """Create the driver registered as ``name`` for ``host``."""
    return drivers.create(name, host, **options)


__all__ = ["DomainInfo", "DomainSpec", "HostInfo", "HypervisorDriver", "MigrationReport", "drivers",
           "driver_for"]
