"""Live consolidation: the simulator's policies, applied to the running system.

One round reads every host of a family (its hypervisor's domains with their CPU and memory,
its slots), asks a :class:`tune.policies.consolidation.ConsolidationPolicy` for a plan, and
carries it out: hosts switched on first, then live migrations (the System Representation
follows each one that succeeds; instances placed beside a VM — its probe — follow it), then
emptied and idle hosts switched off.  The same policy code plans for the simulator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import DriverError, MigrationError, TuneError

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager

log = logging.getLogger(__name__)


def _sim_power(m: "Manager", family: str) -> Any:
    from ..virt.sim import SimPower
    return SimPower(m.world)


#: power driver name (a family's ``power`` attribute) → factory
POWER_DRIVERS: dict[str, Callable[["Manager", str], Any]] = {"sim": _sim_power}


@dataclass
class RoundReport:
    """What one consolidation round planned and did."""

    policy: str
    planned: int = 0
    migrated: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    powered_off: list[str] = field(default_factory=list)
    powered_on: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "planned": self.planned, "migrated": self.migrated,
                "failed": self.failed, "powered_off": self.powered_off, "powered_on": self.powered_on}


def power_driver(m: "Manager", family: str) -> Optional[Any]:
    fam = m.app.families[family]
    name = fam.attributes.get("power") or ("sim" if fam.driver == "sim" else "")
    if not name or name == "none":
        return None
    try:
        return POWER_DRIVERS[name](m, family)
    except KeyError:
        raise TuneError(f"family {family}: unknown power driver {name!r} "
                        f"(known: {', '.join(sorted(POWER_DRIVERS))}, none)") from None


def host_loads(m: "Manager", family: str, *, include_off: bool = False) -> list[Any]:
    """The family's hosts as the policies see them (switched-off ones inactive, if asked)."""
    from ..policies.base import HostLoad, VMLoad
    hosts = []
    for node in m.sr.nodes(family):
        if node.state == "down" or (node.state == "off" and not include_off):
            continue
        drv = m.driver(node.id)
        try:
            info = drv.info()
        except TuneError as exc:
            log.warning("consolidation: %s left out: %s", node.id, exc)
            continue
        if node.state == "off":
            hosts.append(HostLoad(node.id, 100.0 * info.cpus, info.memory_mb, [], active=False,
                                  pe_capacity=100.0, max_vms=node.slots))
            continue
        vms = [VMLoad(d.name, d.memory_mb, d.cpu_percent or 0.0) for d in drv.list()]
        slot_users = sum(1 for c in m.sr.instances_on(node.id) if c.uses_slot)
        hosts.append(HostLoad(node.id, 100.0 * info.cpus, info.memory_mb, vms, pe_capacity=100.0,
                              max_vms=node.slots - max(0, slot_users - len(vms))))
    return hosts


def consolidate(m: "Manager", family: str, policy_name: str = "thr-mmt-0.8") -> RoundReport:
    """One consolidation round on ``family``'s hosts."""
    from ..policies.consolidation import policy_from_name

    policy = policy_from_name(policy_name, cloudsim=False)
    report = RoundReport(policy.name)
    hosts = host_loads(m, family, include_off=power_driver(m, family) is not None)
    plan = policy.plan(hosts)
    report.planned = len(plan.migrations)
    power = power_driver(m, family)
    for host in plan.power_on:
        if power is not None:
            power.power_on(host)
            m.sr.set_node_state(host, "up")
            report.powered_on.append(host)
            m.notify("host.power", node=host, state="on")
    for mig in plan.migrations:
        if not m.sr.has_instance(mig.vm) or m.sr.instance(mig.vm).node != mig.source:
            continue  # moved meanwhile (a probe's diagram): the plan is stale for this VM
        try:
            m.notify("migration.start", vm=mig.vm, source=mig.source, destination=mig.destination,
                     reason="consolidation")
            rep = m.driver(mig.source).migrate(mig.vm, m.driver(mig.destination))
        except MigrationError as exc:
            report.failed.append((mig.vm, exc.message))
            if exc.report is not None:
                m.record_migration(exc.report)
            continue
        except TuneError as exc:
            report.failed.append((mig.vm, exc.message))
            continue
        m.relocate(mig.vm, mig.destination)
        for partner in m.sr.bound(mig.vm):
            if not partner.uses_slot and partner.node == mig.source:
                m.relocate(partner.srname, mig.destination)
        m.record_migration(rep)
        report.migrated.append((mig.vm, mig.source, mig.destination))
    if power is not None:
        destinations = {mig.destination for mig in plan.migrations}
        for node in m.sr.nodes(family):
            if node.state != "up" or node.id in destinations:
                continue
            if any(c.uses_slot for c in m.sr.instances_on(node.id)):
                continue  # something of ours still runs there
            try:
                if m.driver(node.id).list():
                    continue
                power.power_off(node.id)
            except DriverError as exc:
                log.warning("consolidation: %s stays on: %s", node.id, exc)
                continue
            m.sr.set_node_state(node.id, "off")
            report.powered_off.append(node.id)
            m.notify("host.power", node=node.id, state="off")
    m.notify("consolidation.round", **report.to_dict())
    return report
