"""The ``xen`` driver: Xen's ``xl`` toolstack, run on a dom0 through an executor (SSH usually).

Every operation is one ``xl`` command built as an argument list (quoted by the executor), whose
output is read by the pure parsers of :mod:`tune.virt.xlparse`:

========================  ==================================================================
``list()``                ``xl list`` (Domain-0 left out) + CPU% from ``xentop -b -d 1 -i 2``
``create(spec)``          ``xl create CFG`` (a config is written from the spec if none given)
``shutdown(name)``        ``xl shutdown -w NAME``
``destroy(name)``         ``xl destroy NAME``
``migrate(name, dest)``   ``xl migrate [-s SSHCMD] NAME DEST``
``info()``                ``xl info`` → total/free memory, CPUs
========================  ==================================================================

``xl migrate`` reaches the destination dom0 itself (``ssh DEST xl migrate-receive`` by default,
or the ``-s`` command given as ``ssh_command``), so the source dom0 must be able to ssh to the
destination.  xl does not report downtime: the report's ``total_time`` is measured around the
command and ``downtime`` stays ``None``.  A failed migration raises
:class:`~tune.errors.MigrationError` whose report says ``failed`` (the domain was resumed on
the source, as xl prints) or ``undefined`` (the final handshake broke: check both hosts).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any, Optional

from ..errors import (CommandFailed, CommandTimeout, DomainNotFound, DriverError, ExecutorError,
                      InsufficientResources, MigrationError)
from ..remote.base import Command, Executor, Result, quote_command
from .base import DomainInfo, DomainSpec, HostInfo, HypervisorDriver, MigrationReport
from .xlparse import (DOM0, XentopRow, host_info, invalid_domain, parse_create_error,
                      parse_migration, parse_xentop, parse_xl_info, parse_xl_list)

log = logging.getLogger(__name__)

__all__ = ["XenDriver", "xl_config"]


def xl_config(spec: DomainSpec) -> str:
    """An ``xl`` domain config for ``spec`` (PVH when a kernel is given).

    >>> print(xl_config(DomainSpec("d1", memory_mb=96, vcpus=1)), end="")
    name = "d1"
    memory = 96
    vcpus = 1
    """
    def q(value: Any) -> str:
        text = str(value)
        if any(ch in text for ch in "\"\n\\"):
            raise DriverError(f"value {text!r} cannot go into an xl config string")
        return f'"{text}"'

    lines = [f"name = {q(spec.name)}", f"memory = {int(spec.memory_mb)}", f"vcpus = {int(spec.vcpus)}"]
    if spec.kernel:
        lines.append('type = "pvh"')
        lines.append(f"kernel = {q(spec.kernel)}")
    if spec.initrd:
        lines.append(f"ramdisk = {q(spec.initrd)}")
    if spec.cmdline:
        lines.append(f"extra = {q(spec.cmdline)}")
    for key, value in spec.extra.items():
        if not key.replace("_", "").isalnum():
            raise DriverError(f"bad xl config key {key!r}")
        lines.append(f"{key} = {value if isinstance(value, (int, float)) else q(value)}")
    return "\n".join(lines) + "\n"


class XenDriver(HypervisorDriver):
    """Domains of one Xen dom0.

    Parameters
    ----------
    host:
        the dom0's name (also what other dom0s pass to ``xl migrate``, unless ``address``).
    executor:
        how to run ``xl`` there; by default an SSH executor built from ``executor_options``.
    ssh_command:
        ``xl migrate -s`` value (``None``: xl's default ``ssh``; ``""``: DEST is a command).
    address:
        the name or address other dom0s use to reach this one for migrations.
    config_dir:
        where configs generated from a :class:`DomainSpec` are written on the dom0.
    xentop_delay:
        seconds between the two ``xentop`` samples (the CPU% window).
    cpu_in_list:
        fill :attr:`DomainInfo.cpu_percent` in :meth:`list` (costs one ``xentop`` run).
    """

    name = "xen"

    def __init__(self, host: str, executor: Optional[Executor] = None, ssh_command: Optional[str] = None,
                 *, address: Optional[str] = None, config_dir: str = "/etc/xen/tune",
                 xentop_delay: float = 1.0, cpu_in_list: bool = True,
                 command_timeout: float = 60.0, executor_options: Optional[dict[str, Any]] = None,
                 **_ignored: Any) -> None:
        super().__init__(host)
        if executor is None:
            from ..remote import executor_for
            executor = executor_for("ssh", host, **(executor_options or {}))
        self.executor = executor
        self.ssh_command = ssh_command
        self.address = address or host
        self.config_dir = config_dir
        self.xentop_delay = xentop_delay
        self.cpu_in_list = cpu_in_list
        self.command_timeout = command_timeout

    # -- plumbing ---------------------------------------------------------------------------
    def _xl(self, argv: Command, *, timeout: Optional[float] = None) -> Result:
        """Run an ``xl``/``xentop`` command; executor failures become :class:`DriverError`."""
        try:
            return self.executor.run(argv, timeout=timeout or self.command_timeout, check=False)
        except CommandTimeout as exc:
            raise DriverError(f"timed out: {exc.message}", host=self.host,
                              command=exc.command) from exc
        except ExecutorError:
            raise  # unreachable host, host key: the caller's business, with host and command

    def _fail(self, result: Result, what: str) -> DriverError:
        name = invalid_domain(result.stderr)
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else \
            f"exit status {result.exit_status}"
        if name is not None:
            return DomainNotFound(f"no domain {name!r} ({message})", host=self.host,
                                  command=result.command)
        return DriverError(f"{what} failed: {message}", host=self.host, command=result.command)

    # -- queries ----------------------------------------------------------------------------
    def list(self) -> list[DomainInfo]:
        """Guest domains (not Domain-0), with CPU% when ``cpu_in_list``."""
        result = self._xl(["xl", "list"])
        if result.exit_status != 0:
            raise self._fail(result, "xl list")
        doms = [d for d in self._parse(parse_xl_list, result) if d.name != DOM0]
        if self.cpu_in_list and doms:
            rows = self.xentop()
            for d in doms:
                row = rows.get(d.name)
                d.cpu_percent = row.cpu_percent if row else None
        return doms

    def _parse(self, fn: Any, result: Result) -> Any:
        try:
            return fn(result.stdout)
        except DriverError as exc:
            raise DriverError(exc.message, host=self.host, command=result.command) from None

    def domain(self, name: str) -> DomainInfo:
        """One domain (``xl list NAME``); :class:`DomainNotFound` if this dom0 has none."""
        result = self._xl(["xl", "list", name])
        if result.exit_status != 0:
            raise self._fail(result, "xl list")
        doms = self._parse(parse_xl_list, result)
        for d in doms:
            if d.name == name:
                return d
        raise DomainNotFound(f"no domain {name!r}", host=self.host, command=result.command)

    def exists(self, name: str) -> bool:
        try:
            self.domain(name)
            return True
        except DomainNotFound:
            return False

    def xentop(self) -> dict[str, XentopRow]:
        """Per-domain rows of the second ``xentop`` iteration (the one with CPU%)."""
        delay = self.xentop_delay
        shown = f"{delay:g}"
        result = self._xl(["xentop", "-b", "-d", shown, "-i", "2"],
                          timeout=self.command_timeout + 2 * delay)
        if result.exit_status != 0:
            raise self._fail(result, "xentop")
        rows: dict[str, XentopRow] = self._parse(lambda text: parse_xentop(text, iteration=1),
                                                 result)
        return rows

    def cpu_percent(self, name: str) -> Optional[float]:
        """CPU use of ``name`` in percent of one CPU over ``xentop_delay`` seconds."""
        row = self.xentop().get(name)
        if row is None:
            raise DomainNotFound(f"no domain {name!r} in xentop", host=self.host,
                                 command="xentop -b")
        return row.cpu_percent

    def info(self) -> HostInfo:
        result = self._xl(["xl", "info"])
        if result.exit_status != 0:
            raise self._fail(result, "xl info")
        info = self._parse(parse_xl_info, result)
        try:
            return host_info(info, name=self.host)
        except DriverError as exc:
            raise DriverError(exc.message, host=self.host, command=result.command) from None

    # -- lifecycle --------------------------------------------------------------------------
    def create(self, spec: DomainSpec) -> DomainInfo:
        """``xl create``; without ``spec.config`` a config is written to ``config_dir`` first."""
        path = spec.config
        if not path:
            free = self.info().free_memory_mb
            if spec.memory_mb > free:
                raise InsufficientResources(
                    f"domain {spec.name} needs {spec.memory_mb} MiB, {free} MiB free",
                    host=self.host, command="xl info")
            path = f"{self.config_dir.rstrip('/')}/{spec.name}.cfg"
            self._upload(xl_config(spec), path)
        result = self._xl(["xl", "create", path])
        if result.exit_status != 0:
            reason = parse_create_error(result.stderr)
            cls = InsufficientResources if "free memory" in reason else DriverError
            raise cls(f"xl create failed: {reason}", host=self.host, command=result.command)
        log.info("%s: created domain %s from %s", self.host, spec.name, path)
        return self.domain(spec.name)

    def _upload(self, text: str, path: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix="tune-xl-", suffix=".cfg")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            self.executor.run(["mkdir", "-p", os.path.dirname(path)], timeout=self.command_timeout)
            self.executor.put(tmp, path, mode=0o644)
        except CommandFailed as exc:
            raise DriverError(f"cannot write {path}: {exc.stderr.strip()}", host=self.host,
                              command=exc.command) from exc
        finally:
            os.unlink(tmp)

    def shutdown(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        argv = ["xl", "shutdown", "-w", name] if wait else ["xl", "shutdown", name]
        result = self._xl(argv, timeout=timeout)
        if result.exit_status != 0:
            raise self._fail(result, "xl shutdown")

    def destroy(self, name: str) -> None:
        result = self._xl(["xl", "destroy", name])
        if result.exit_status != 0:
            raise self._fail(result, "xl destroy")

    # -- migration --------------------------------------------------------------------------
    def migrate(self, name: str, destination: "HypervisorDriver | str", *, live: bool = True,
                timeout: float = 600.0) -> MigrationReport:
        """``xl migrate`` (always live with xl; ``live=False`` is accepted and ignored)."""
        if isinstance(destination, HypervisorDriver):
            dest_label = destination.host
            dest = getattr(destination, "address", None) or destination.host
        else:
            dest_label = dest = destination
        argv = ["xl", "migrate"]
        if self.ssh_command is not None:
            argv += ["-s", self.ssh_command]
        argv += [name, dest]
        command = quote_command(argv)
        report = MigrationReport(domain=name, source=self.host, destination=dest_label,
                                 status="failed", started_at=time.time())
        t0 = time.monotonic()
        try:
            result = self.executor.run(argv, timeout=timeout, check=False)
        except CommandTimeout as exc:
            report.total_time = time.monotonic() - t0
            report.ended_at = time.time()
            report.status = "failed"
            report.message = (f"xl migrate killed after {timeout:g} s; the domain may be on "
                              "either host: check both")
            raise MigrationError(report.message, host=self.host, command=command,
                                 report=report) from exc
        report.total_time = time.monotonic() - t0
        report.ended_at = time.time()
        if result.exit_status != 0 and invalid_domain(result.stderr) == name:
            raise DomainNotFound(f"no domain {name!r} to migrate", host=self.host, command=command)
        outcome = parse_migration(result.stderr, result.exit_status)
        report.message = outcome.reason
        if not outcome.ok:
            report.status = "failed"
            if outcome.status == "undefined":
                report.message = outcome.reason
            log.warning("%s: migration of %s to %s failed: %s", self.host, name, dest_label,
                        outcome.reason)
            raise MigrationError(f"migration of {name} to {dest_label} failed: {outcome.reason}",
                                 host=self.host, command=command, report=report)
        report.status = "completed"
        log.info("%s: migrated %s to %s in %.2f s", self.host, name, dest_label, report.total_time)
        return report

    def close(self) -> None:
        self.executor.close()
