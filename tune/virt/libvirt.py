"""The ``libvirt`` driver: libvirt-python against one connection URI per host.

``qemu+ssh://root@dom0/system``, ``xen+ssh://root@dom0``, ``qemu:///system``, and
``test:///default`` (libvirt's in-process test hypervisor: no migration, no CPU time) for tests.
libvirt-python is optional (``pip install 'tune-autonomic[libvirt]'``, it builds from source
against libvirt-dev): it is imported when a driver is created, with a clear error otherwise.

Live migration uses ``VIR_MIGRATE_LIVE`` (optionally peer-to-peer, where the source daemon
talks to the destination itself) and reports libvirt's completed-job statistics (elapsed
time, downtime, memory transferred), read on the destination where libvirt keeps them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from ..errors import DomainNotFound, DriverError, InsufficientResources, MigrationError, UsageError
from .base import DomainInfo, DomainSpec, HostInfo, HypervisorDriver, MigrationReport

log = logging.getLogger(__name__)

#: virDomainState → our state names
STATES = {0: "unknown", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed",
          7: "suspended"}


def _libvirt() -> Any:
    try:
        import libvirt  # type: ignore[import-not-found]
    except ImportError as exc:
        raise UsageError("the libvirt driver needs libvirt-python: apt-get install libvirt-dev pkg-config && "
                         "pip install 'tune-autonomic[libvirt]'") from exc
    return libvirt


def domain_xml(spec: DomainSpec, *, domain_type: str = "qemu") -> str:
    """A minimal libvirt domain for ``spec`` (direct kernel boot when a kernel is given)."""
    from xml.sax.saxutils import escape, quoteattr
    if spec.config:
        return spec.config if spec.config.lstrip().startswith("<") else open(spec.config).read()
    os_parts = ["<type arch='x86_64'>hvm</type>"]
    if spec.kernel:
        os_parts.append(f"<kernel>{escape(spec.kernel)}</kernel>")
    if spec.initrd:
        os_parts.append(f"<initrd>{escape(spec.initrd)}</initrd>")
    if spec.cmdline:
        os_parts.append(f"<cmdline>{escape(spec.cmdline)}</cmdline>")
    devices = ["<serial type='pty'/>", "<console type='pty'/>"]
    bridge = spec.extra.get("bridge")
    if bridge:
        mac = spec.extra.get("mac")
        devices.append(f"<interface type='bridge'><source bridge={quoteattr(str(bridge))}/>"
                       + (f"<mac address={quoteattr(str(mac))}/>" if mac else "")
                       + "<model type='virtio'/></interface>")
    return (f"<domain type={quoteattr(domain_type)}><name>{escape(spec.name)}</name>"
            f"<memory unit='MiB'>{int(spec.memory_mb)}</memory><vcpu>{int(spec.vcpus)}</vcpu>"
            f"<os>{''.join(os_parts)}</os><features><acpi/></features>"
            f"<devices>{''.join(devices)}</devices></domain>")


class LibvirtDriver(HypervisorDriver):
    """Domains of one host, through its libvirt daemon."""

    name = "libvirt"

    def __init__(self, host: str, *, uri: Optional[str] = None, peer_to_peer: bool = False,
                 migrate_uri: Optional[str] = None, domain_type: str = "qemu",
                 cpu_interval: float = 0.5, **_ignored: Any) -> None:
        super().__init__(host)
        self.libvirt = _libvirt()
        self.uri = uri or f"qemu+ssh://root@{host}/system"
        self.peer_to_peer = peer_to_peer
        self.migrate_uri = migrate_uri  # e.g. tcp://10.77.0.3 (where QEMU listens on the destination)
        self.domain_type = domain_type
        self.cpu_interval = cpu_interval
        self._conn: Any = None
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def conn(self) -> Any:
        with self._lock:
            if self._conn is not None and not self._alive(self._conn):
                log.info("%s: connection to %s lost; reconnecting", self.host, self.uri)
                self._conn = None
            if self._conn is None:
                try:
                    self._conn = self.libvirt.open(self.uri)
                except self.libvirt.libvirtError as exc:
                    raise DriverError(f"cannot connect to {self.uri}: {exc.get_error_message()}",
                                      host=self.host, command=f"virConnectOpen {self.uri}") from None
            return self._conn

    def _alive(self, conn: Any) -> bool:
        try:
            return bool(conn.isAlive())
        except self.libvirt.libvirtError:
            return False

    def _domain(self, name: str) -> Any:
        try:
            return self.conn.lookupByName(name)
        except self.libvirt.libvirtError:
            raise DomainNotFound(f"no domain {name!r}", host=self.host, command="lookupByName") from None

    def _err(self, exc: Any, what: str) -> DriverError:
        return DriverError(f"{what}: {exc.get_error_message()}", host=self.host, command=what)

    # -- queries --------------------------------------------------------------------------------
    def _info(self, dom: Any, cpu: Optional[float] = None) -> DomainInfo:
        state, _max_kib, mem_kib, vcpus, cpu_ns = dom.info()
        return DomainInfo(dom.name(), STATES.get(state, "unknown"), int(mem_kib) // 1024, int(vcpus), cpu,
                          cpu_ns / 1e9 if cpu_ns else None, dom.ID() if dom.ID() >= 0 else None)

    def list(self) -> list[DomainInfo]:
        try:
            doms = self.conn.listAllDomains(self.libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            return sorted((self._info(d) for d in doms), key=lambda d: d.name)
        except self.libvirt.libvirtError as exc:
            raise self._err(exc, "listAllDomains") from None

    def cpu_percent(self, name: str) -> Optional[float]:
        """CPU use over ``cpu_interval`` from the domain's CPU time (percent of one CPU)."""
        dom = self._domain(name)
        try:
            t0, c0 = time.monotonic(), dom.info()[4]
            time.sleep(self.cpu_interval)
            t1, c1 = time.monotonic(), dom.info()[4]
        except self.libvirt.libvirtError as exc:
            raise self._err(exc, "virDomainGetInfo") from None
        if not c0 and not c1:
            return None  # the test driver has no CPU time
        return round(100.0 * (c1 - c0) / 1e9 / (t1 - t0), 1)

    def info(self) -> HostInfo:
        try:
            _model, mem_mb, cpus, *_ = self.conn.getInfo()
            free = self.conn.getFreeMemory() // (1024 * 1024)
        except self.libvirt.libvirtError as exc:
            raise self._err(exc, "virNodeGetInfo") from None
        return HostInfo(self.host, int(cpus), int(mem_mb), int(free))

    # -- lifecycle ------------------------------------------------------------------------------
    def create(self, spec: DomainSpec) -> DomainInfo:
        xml = domain_xml(spec, domain_type=self.domain_type)
        try:
            free = self.info().free_memory_mb
            if spec.memory_mb > free:
                raise InsufficientResources(f"cannot create {spec.name}: needs {spec.memory_mb} MB, {free} MB free",
                                            host=self.host, command="virDomainCreateXML")
        except DriverError:
            pass  # some hypervisors cannot tell; libvirt refuses itself then
        try:
            dom = self.conn.createXML(xml, 0)
        except self.libvirt.libvirtError as exc:
            raise self._err(exc, "virDomainCreateXML") from None
        return self._info(dom)

    def shutdown(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        dom = self._domain(name)
        try:
            dom.shutdown()
        except self.libvirt.libvirtError as exc:
            raise self._err(exc, "virDomainShutdown") from None
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not dom.isActive():
                    return
            except self.libvirt.libvirtError:
                return  # transient domain gone
            time.sleep(0.1)
        log.warning("%s: %s did not shut down in %.0f s; destroying it", self.host, name, timeout)
        self.destroy(name)

    def destroy(self, name: str) -> None:
        dom = self._domain(name)
        try:
            dom.destroy()
        except self.libvirt.libvirtError as exc:
            raise self._err(exc, "virDomainDestroy") from None

    # -- migration ------------------------------------------------------------------------------
    def migrate(self, name: str, destination: "HypervisorDriver | str", *, live: bool = True,
                timeout: float = 600.0) -> MigrationReport:
        lv = self.libvirt
        dest_uri = destination.uri if isinstance(destination, LibvirtDriver) else str(destination)
        dest_label = destination.host if isinstance(destination, HypervisorDriver) else str(destination)
        migrate_uri = (destination.migrate_uri if isinstance(destination, LibvirtDriver) else None) or self.migrate_uri
        report = MigrationReport(name, self.host, dest_label, "failed", started_at=time.time())
        dom = self._domain(name)
        flags = (lv.VIR_MIGRATE_LIVE if live else 0)
        t0 = time.monotonic()
        try:
            if self.peer_to_peer:
                params = {lv.VIR_MIGRATE_PARAM_URI: migrate_uri} if migrate_uri else {}
                dom.migrateToURI3(dest_uri, params, flags | lv.VIR_MIGRATE_PEER2PEER)
                new = None
            else:
                dconn = destination.conn if isinstance(destination, LibvirtDriver) else lv.open(dest_uri)
                new = dom.migrate(dconn, flags, None, migrate_uri, 0)
        except (lv.libvirtError, DriverError) as exc:  # DriverError: the destination is unreachable
            report.total_time = time.monotonic() - t0
            report.ended_at = time.time()
            report.message = exc.get_error_message() if isinstance(exc, lv.libvirtError) else exc.message
            still = self._still_here(name)
            log.warning("%s: migration of %s to %s failed (%s); domain %s on the source", self.host, name,
                        dest_label, report.message, "still" if still else "NOT")
            raise MigrationError(f"migration of {name} to {dest_label} failed: {report.message}", host=self.host,
                                 command="virDomainMigrate", report=report) from None
        report.total_time = time.monotonic() - t0
        report.ended_at = time.time()
        report.status = "completed"
        stats = self._completed_stats(new, destination, name)
        if stats:
            if "time_elapsed" in stats:
                report.total_time = stats["time_elapsed"] / 1000.0
            if "downtime" in stats:
                report.downtime = stats["downtime"] / 1000.0
            if "setup_time" in stats:
                report.setup_time = stats["setup_time"] / 1000.0
            processed = stats.get("memory_processed") or stats.get("data_processed")
            if processed:
                report.ram_transferred_mb = round(processed / 2**20, 1)
        return report

    def _still_here(self, name: str) -> bool:
        try:
            return bool(self._domain(name).isActive())
        except DriverError:
            return False

    def _completed_stats(self, new: Any, destination: Any, name: str) -> dict[str, Any]:
        lv = self.libvirt
        candidates = [new]
        if isinstance(destination, LibvirtDriver):
            try:
                candidates.append(destination.conn.lookupByName(name))
            except lv.libvirtError:
                pass
        for dom in candidates:
            if dom is None:
                continue
            try:
                stats: dict[str, Any] = dom.jobStats(lv.VIR_DOMAIN_JOB_STATS_COMPLETED)
                if stats:
                    return stats
            except (lv.libvirtError, AttributeError):
                continue
        return {}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except self.libvirt.libvirtError:
                    pass
                self._conn = None
