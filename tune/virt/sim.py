"""The ``sim`` driver: an in-process simulated hypervisor for the embedded simulated grid.

A :class:`SimWorld` holds hosts (cores, memory, network bandwidth) and domains (memory, vCPUs,
CPU demand a scenario changes over time).  CPU is shared like a fair scheduler: a host whose
domains ask for more than its cores gives each a proportional share.  Live migration is
pre-copy: rounds copy the memory dirtied meanwhile (more with more CPU load) until what is left
fits in the downtime limit, then a short stop-and-copy; it takes simulated time from the
world's clock.  A destination without the memory refuses; a failure leaves the domain on the
source.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Optional

from ..clock import Clock
from ..errors import DomainNotFound, DriverError, InsufficientResources, MigrationError
from .base import DomainInfo, DomainSpec, HostInfo, HypervisorDriver, MigrationReport

log = logging.getLogger(__name__)


@dataclass
class SimHost:
    name: str
    cores: int = 4
    memory_mb: int = 4096
    bandwidth_mbps: float = 1000.0  # network, Mbit/s
    powered: bool = True


@dataclass
class SimDomain:
    name: str
    host: str
    memory_mb: int
    vcpus: int = 1
    load: float = 0.0  # CPU demand in percent of one vCPU x vcpus (0..100*vcpus)
    state: str = "running"
    migrating_to: Optional[str] = None
    created_at: float = 0.0


@dataclass
class SimWorld:
    """The shared state of every simulated host (like the shared disks of a real Xen pool)."""

    clock: Clock = field(default_factory=Clock)
    hosts: dict[str, SimHost] = field(default_factory=dict)
    domains: dict[str, SimDomain] = field(default_factory=dict)
    downtime_limit: float = 0.3  # seconds, QEMU's default
    dirty_mb_per_s_at_full_load: float = 40.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    migrations: list[MigrationReport] = field(default_factory=list)

    def add_host(self, name: str, cores: int = 4, memory_mb: int = 4096, bandwidth_mbps: float = 1000.0) -> SimHost:
        with self.lock:
            host = self.hosts.get(name)
            if host is None:
                host = self.hosts[name] = SimHost(name, cores, memory_mb, bandwidth_mbps)
            return host

    def host(self, name: str) -> SimHost:
        try:
            return self.hosts[name]
        except KeyError:
            raise DriverError(f"no simulated host {name!r}", host=name) from None

    def domain(self, name: str, host: Optional[str] = None) -> SimDomain:
        dom = self.domains.get(name)
        if dom is None or (host is not None and dom.host != host):
            raise DomainNotFound(f"{name} is an invalid domain identifier", host=host)
        return dom

    def used_memory(self, host: str) -> int:
        with self.lock:
            used = sum(d.memory_mb for d in self.domains.values() if d.host == host)
            used += sum(d.memory_mb for d in self.domains.values() if d.migrating_to == host)
            return used

    def set_load(self, name: str, load: float) -> None:
        """Set a domain's CPU demand (percent of its vCPUs: 0..100 x vcpus)."""
        with self.lock:
            dom = self.domain(name)
            dom.load = max(0.0, min(float(load), 100.0 * dom.vcpus))

    def cpu_shares(self, host: str) -> dict[str, float]:
        """CPU each domain gets on ``host`` (percent of one CPU), fair-shared under contention."""
        with self.lock:
            doms = [d for d in self.domains.values() if d.host == host and d.state == "running"]
            capacity = 100.0 * self.host(host).cores
            demand = sum(d.load for d in doms)
            scale = 1.0 if demand <= capacity or demand == 0 else capacity / demand
            return {d.name: d.load * scale for d in doms}

    def host_utilisation(self, host: str) -> float:
        h = self.host(host)
        return sum(self.cpu_shares(host).values()) / (100.0 * h.cores)


class SimDriver(HypervisorDriver):
    """Domains of one simulated host, in a :class:`SimWorld` shared by all the grid's drivers."""

    name = "sim"

    def __init__(self, host: str, *, world: Optional[SimWorld] = None, cores: int = 4, memory_mb: int = 4096,
                 bandwidth_mbps: float = 1000.0, **_: object) -> None:
        super().__init__(host)
        self.world = world if world is not None else SimWorld()
        self.world.add_host(host, cores, memory_mb, bandwidth_mbps)

    def list(self) -> list[DomainInfo]:
        w = self.world
        with w.lock:
            shares = w.cpu_shares(self.host)
            return [DomainInfo(d.name, d.state if d.migrating_to is None else "running", d.memory_mb, d.vcpus,
                               round(shares.get(d.name, 0.0), 1))
                    for d in sorted(w.domains.values(), key=lambda d: d.name) if d.host == self.host]

    def info(self) -> HostInfo:
        h = self.world.host(self.host)
        return HostInfo(self.host, h.cores, h.memory_mb, h.memory_mb - self.world.used_memory(self.host))

    def create(self, spec: DomainSpec) -> DomainInfo:
        w = self.world
        with w.lock:
            if spec.name in w.domains:
                raise DriverError(f"domain {spec.name} already exists on {w.domains[spec.name].host}",
                                  host=self.host, command="create")
            h = w.host(self.host)
            free = h.memory_mb - w.used_memory(self.host)
            if spec.memory_mb > free:
                raise InsufficientResources(f"cannot create {spec.name}: needs {spec.memory_mb} MB, "
                                            f"{free} MB free", host=self.host, command="create")
            load = float(spec.load or 0.0)
            w.domains[spec.name] = SimDomain(spec.name, self.host, spec.memory_mb, spec.vcpus,
                                             min(load, 100.0 * spec.vcpus), created_at=w.clock.now())
        return next(d for d in self.list() if d.name == spec.name)

    def shutdown(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        self.destroy(name)

    def destroy(self, name: str) -> None:
        w = self.world
        with w.lock:
            dom = w.domain(name, self.host)
            if dom.migrating_to is not None:
                raise DriverError(f"{name} is migrating", host=self.host, command="destroy")
            del w.domains[name]

    def migrate(self, name: str, destination: "HypervisorDriver | str", *, live: bool = True,
                timeout: float = 600.0) -> MigrationReport:
        w = self.world
        dest = destination.host if isinstance(destination, HypervisorDriver) else str(destination)
        started = w.clock.now()
        with w.lock:
            dom = w.domain(name, self.host)
            if dest == self.host:
                raise MigrationError(f"{name} is already on {dest}", host=self.host, command="migrate",
                                     report=MigrationReport(name, self.host, dest, "failed", message="same host"))
            if dest not in w.hosts or not w.hosts[dest].powered:
                report = MigrationReport(name, self.host, dest, "failed", message=f"destination {dest} unreachable")
                raise MigrationError(report.message, host=self.host, command="migrate", report=report)
            if dom.migrating_to is not None:
                report = MigrationReport(name, self.host, dest, "failed", message="already migrating")
                raise MigrationError(report.message, host=self.host, command="migrate", report=report)
            h = w.hosts[dest]
            free = h.memory_mb - w.used_memory(dest)
            if dom.memory_mb > free:
                report = MigrationReport(name, self.host, dest, "failed", started_at=started, ended_at=started,
                                         message=f"destination {dest} refused: needs {dom.memory_mb} MB, {free} MB free")
                raise MigrationError(report.message, host=self.host, command="migrate", report=report)
            dom.migrating_to = dest  # memory reserved on the destination from now on
            bandwidth = min(w.hosts[self.host].bandwidth_mbps, h.bandwidth_mbps) / 8.0  # MB/s
            dirty_rate = w.dirty_mb_per_s_at_full_load * dom.load / (100.0 * dom.vcpus)
        # pre-copy rounds: copy everything, then what was dirtied meanwhile
        remaining, total, transferred, rounds = float(dom.memory_mb), 0.0, 0.0, 0
        while rounds < 30:
            rounds += 1
            t = remaining / bandwidth
            total += t
            transferred += remaining
            remaining = min(float(dom.memory_mb), dirty_rate * t)
            if remaining / bandwidth <= w.downtime_limit or dirty_rate >= bandwidth:
                break
        downtime = remaining / bandwidth + 0.02  # stop-and-copy plus resume
        total += downtime
        transferred += remaining
        w.clock.sleep(total)
        with w.lock:
            dom.migrating_to = None
            if name not in w.domains:
                report = MigrationReport(name, self.host, dest, "failed", message="domain vanished during migration")
                raise MigrationError(report.message, host=self.host, command="migrate", report=report)
            if not w.hosts[dest].powered:
                report = MigrationReport(name, self.host, dest, "failed", total_time=total,
                                         message=f"destination {dest} lost during migration")
                raise MigrationError(report.message, host=self.host, command="migrate", report=report)
            dom.host = dest
            report = MigrationReport(name, self.host, dest, "completed", total_time=round(total, 3),
                                     downtime=round(downtime, 3), setup_time=0.0,
                                     ram_transferred_mb=round(transferred, 1), started_at=started,
                                     ended_at=w.clock.now(), message=f"{rounds} pre-copy round(s)")
            w.migrations.append(report)
        log.info("sim: migrated %s %s -> %s in %.2fs (downtime %.0f ms)", name, self.host, dest, total,
                 downtime * 1000)
        return report


class SimPower:
    """Switch simulated hosts off and on (the ``sim`` power driver of the live consolidation).

    Same interface as :class:`tune.power.drivers.PowerDriver`; a host with domains is never
    switched off.
    """

    name = "sim"

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def power_off(self, host: str) -> None:
        with self.world.lock:
            busy = [d.name for d in self.world.domains.values() if d.host == host or d.migrating_to == host]
            if busy:
                raise DriverError(f"{host} still runs {', '.join(sorted(busy))}; not switched off", host=host,
                                  command="power off")
            self.world.host(host).powered = False

    def power_on(self, host: str) -> None:
        with self.world.lock:
            self.world.host(host).powered = True

    def state(self, host: str) -> str:
        return "on" if self.world.host(host).powered else "off"
