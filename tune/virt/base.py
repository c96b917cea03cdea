"""The hypervisor driver interface shared by ``sim``, ``xen``, ``qemu`` and ``libvirt``.

A driver manages the domains (VMs) of one host.  Drivers are chosen by name through
:func:`tune.virt.driver_for`; the manager and the probes only ever see this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass
class DomainInfo:
    """One domain as its hypervisor reports it."""

    name: str
    state: str  # running | blocked | paused | shutdown | crashed | dying | unknown
    memory_mb: int
    vcpus: int = 1
    cpu_percent: Optional[float] = None  # share of one CPU, 0-100 per vCPU (xentop style)
    cpu_seconds: Optional[float] = None
    domid: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DomainSpec:
    """What to create.  Drivers use the fields they understand and ignore the rest."""

    name: str
    memory_mb: int = 128
    vcpus: int = 1
    config: Optional[str] = None  # xl config path / libvirt XML
    kernel: Optional[str] = None
    initrd: Optional[str] = None
    cmdline: str = ""
    #: CPU demand in percent of its vCPUs, for simulated hypervisors; real ones ignore it
    load: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MigrationReport:
    """What a live migration did.  Times in seconds; ``None`` when the driver cannot know."""

    domain: str
    source: str
    destination: str
    status: str  # completed | failed | cancelled
    total_time: Optional[float] = None
    downtime: Optional[float] = None
    setup_time: Optional[float] = None
    ram_transferred_mb: Optional[float] = None
    message: str = ""
    started_at: Optional[float] = None
    ended_at: Optional[float] = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HostInfo:
    """Capacity of a host as the hypervisor sees it."""

    name: str
    cpus: int
    memory_mb: int
    free_memory_mb: int


class HypervisorDriver(ABC):
    """Domains on one host.

    ``migrate`` must leave the domain running on the source when it fails and raise
    :class:`tune.errors.MigrationError` carrying a :class:`MigrationReport` with
    ``status="failed"``.
    """

    #: the registry name (``driver="..."``)
    name: str = ""

    def __init__(self, host: str) -> None:
        self.host = host

    @abstractmethod
    def list(self) -> list[DomainInfo]:
        """Guest domains on this host (the control domain, e.g. Domain-0, excluded)."""

    @abstractmethod
    def create(self, spec: DomainSpec) -> DomainInfo:
        ...

    @abstractmethod
    def shutdown(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        ...

    @abstractmethod
    def destroy(self, name: str) -> None:
        ...

    @abstractmethod
    def migrate(self, name: str, destination: "HypervisorDriver | str", *, live: bool = True,
                timeout: float = 600.0) -> MigrationReport:
        """Live-migrate ``name`` to ``destination`` (a driver of the same kind or a host name)."""

    def info(self) -> HostInfo:
        """Host capacity; drivers override when they can ask the hypervisor."""
        raise NotImplementedError

    def cpu_percent(self, name: str) -> Optional[float]:
        """CPU use of one domain in percent of one CPU; default: from :meth:`list`."""
        for dom in self.list():
            if dom.name == name:
                return dom.cpu_percent
        from ..errors import DomainNotFound
        raise DomainNotFound(f"no domain {name!r}", host=self.host)

    def close(self) -> None:
        """Release connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}>"
