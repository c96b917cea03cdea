"""The VM component's wrapper class: start, stop and live-migrate a domain.

It works with any hypervisor driver (``sim``, ``xen``, ``qemu``, ``libvirt``): the family's
``driver`` attribute chooses it, and the context hands over the driver of the VM's node.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

from tune.errors import ExecutorError, MigrationError, TuneError
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
        """Live-migrate to ``destination`` (a node), or where the placement policy says.

        When the policy chose and the migration fails, the policy is asked once more without
        the failed destination and the migration tried there.  After a failure the domain is
        looked for on both hosts, so the SR records it where it really runs (the source,
        unless it is found on the destination only).
        """
        source = self.ctx.instance.node
        dest = destination or self.ctx.choose_destination(name)
        if not dest:
            raise TuneError(f"{name}: no host has room for it (placement policy found none)")
        if dest == source:
            return
        try:
            self._migrate_to(name, source, dest)
        except (MigrationError, ExecutorError) as exc:
            if destination:
                raise
            retry = self._choose(name, exclude=[dest])
            if not retry or retry in (source, dest):
                raise
            self.ctx.notify("migration.retry", vm=name, failed=dest, destination=retry, error=str(exc)[:300])
            self._migrate_to(name, source, retry)

    def _migrate_to(self, name: str, source: Optional[str], dest: str) -> None:
        self.ctx.notify("migration.start", vm=name, source=source, destination=dest)
        timeout = float(self.ctx.instance.attributes.get("migration-timeout", 600) or 600)
        try:
            report = self.ctx.driver.migrate(name, self.ctx.driver_of(dest), timeout=timeout)
        except MigrationError as exc:
            if exc.report is not None:
                self.ctx.record_migration(exc.report)
            if self._only_on(name, dest, source):
                self.ctx.notify("migration.settled", vm=name, node=dest, error=str(exc)[:300])
                self.ctx.relocate(self.ctx.srname, dest)
                return
            raise
        self.ctx.relocate(self.ctx.srname, dest)
        self.ctx.record_migration(report)

    def _only_on(self, name: str, dest: str, source: Optional[str]) -> bool:
        """True when, after a failed migration, the domain runs on ``dest`` and not on the source."""
        try:
            if source is None or _has(self.ctx.driver, name):
                return False
            return _has(self.ctx.driver_of(dest), name)
        except TuneError:
            return False  # a host we cannot ask: the SR keeps saying source

    def _choose(self, name: str, exclude: list[str]) -> Optional[str]:
        """The policy's next choice without ``exclude``."""
        fn = self.ctx.choose_destination
        try:
            takes_exclude = "exclude" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes_exclude = False
        if takes_exclude:
            return fn(name, exclude=exclude)
        manager = getattr(self.ctx, "manager", None)
        if manager is not None:
            return manager.choose_destination(name, exclude=exclude)
        return fn(name)  # the manager itself avoids destinations that just failed


def _has(driver: Any, name: str) -> bool:
    exists = getattr(driver, "exists", None)
    if exists is not None:
        return bool(exists(name))
    return any(d.name == name for d in driver.list())
