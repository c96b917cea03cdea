"""The VM component's wrapper class: start, stop and live-migrate a domain.

It works with any hypervisor driver (``sim``, ``xen``, ``qemu``, ``libvirt``): the family's
``driver`` attribute chooses it, and the context hands over the driver of the VM's node.
"""

from __future__ import annotations

from typing import Any, Optional

from tune.errors import MigrationError, TuneError
from tune.virt.base import DomainSpec


class XenVM:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def start(self, name: str, memory: str = "256", vcpus: str = "1", load: str = "0") -> None:
        inst = self.ctx.instance
        spec = DomainSpec(name=name, memory_mb=int(memory), vcpus=int(vcpus),
                          config=inst.attributes.get("config"), kernel=inst.attributes.get("kernel"),
                          initrd=inst.attributes.get("initrd"), cmdline=inst.attributes.get("cmdline", ""),
                          load=float(load or 0))
        self.ctx.driver.create(spec)

    def stop(self, name: str) -> None:
        self.ctx.driver.shutdown(name, wait=True)

    def migrate(self, name: str, destination: Optional[str] = None) -> None:
        """Live-migrate to ``destination`` (a node), or where the placement policy says."""
        source = self.ctx.instance.node
        dest = destination or self.ctx.choose_destination(name)
        if not dest:
            raise TuneError(f"{name}: no host has room for it (placement policy found none)")
        if dest == source:
            return
        self.ctx.notify("migration.start", vm=name, source=source, destination=dest)
        try:
            report = self.ctx.driver.migrate(name, self.ctx.driver_of(dest))
        except MigrationError as exc:
            if exc.report is not None:
                self.ctx.record_migration(exc.report)
            raise
        self.ctx.relocate(self.ctx.srname, dest)
        self.ctx.record_migration(report)
