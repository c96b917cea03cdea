"""The qemu driver for real: VMs in namespace hosts, live migration h1 -> h2, the seed's
Scenario 1 (hot migration under a TCP stream) and migration failures.

Needs root, qemu-system-x86 and the test guest (built from Debian packages); skips otherwise.
One guest boots per test that needs a fresh one (2-3 s under TCG).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from test_qemu_fixtures import VMBed, guest, vmbed  # noqa: F401 - fixtures
from tune.errors import DomainNotFound, DriverError, MigrationError, UsageError
from tune.testbed.guest import StreamClient, console_errors, control, wait_ping, wait_port
from tune.virt import driver_for
from tune.virt.base import DomainSpec
from tune.virt.qemu import QemuDriver, QemuMigrationReport, qemu_missing_reason

pytestmark = [pytest.mark.qemu, pytest.mark.root,
              pytest.mark.skipif(qemu_missing_reason() is not None, reason=str(qemu_missing_reason())),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, taps)")]


def boot(vb: VMBed, name: str = "vm1", memory: int = 128, index: int = 1, **cmd: object) -> str:
    """Create ``name`` on h1, wait until it answers ping and its stream port; return its IP."""
    ip = vb.ip(index)
    vb.d1.create(DomainSpec(name, memory_mb=memory, kernel=vb.guest.kernel, initrd=vb.guest.initrd,
                            cmdline=vb.guest.cmdline(f"{ip}/24", **cmd)))  # type: ignore[arg-type]
    vb.d1.wait_console(name, "GUEST-UP", timeout=60)
    wait_ping(ip, timeout=20)
    wait_port(ip, 7000, timeout=20)
    return ip


def ping_ok(ip: str) -> bool:
    r = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-n", ip], capture_output=True, text=True)
    return r.returncode == 0


def _remove(vb: VMBed, name: str) -> None:
    for d in (vb.d1, vb.d2):
        if name in d.names():
            d.destroy(name)


@pytest.fixture
def fresh(vmbed: VMBed):  # noqa: F811
    """A freshly booted vm2 on h1, for tests that stop it."""
    ip = boot(vmbed, "vm2", index=3)
    yield ip
    _remove(vmbed, "vm2")


@pytest.fixture(scope="module")
def _shared_vm(vmbed: VMBed):  # noqa: F811
    ip = boot(vmbed, "vm1", index=1)
    yield ip
    _remove(vmbed, "vm1")


@pytest.fixture
def vm(vmbed: VMBed, _shared_vm: str):  # noqa: F811
    """vm1 running on h1, booted once for the module's migration tests (one boot less each)."""
    if "vm1" in vmbed.d2.names():
        vmbed.d2.migrate("vm1", vmbed.d1)
    if "vm1" not in vmbed.d1.names():  # a test lost it: boot it again
        boot(vmbed, "vm1", index=1)
    yield _shared_vm


def test_registry_builds_the_driver(tmp_path):
    d = driver_for("qemu", "hx", run_dir=str(tmp_path))
    assert isinstance(d, QemuDriver) and d.list() == []
    with pytest.raises(DomainNotFound):
        d.destroy("nope")
    with pytest.raises(UsageError):
        d.create(DomainSpec("bad name!"))
    with pytest.raises(UsageError, match="kernel"):
        d.create(DomainSpec("nokernel"))


def test_create_list_cpu_destroy(vmbed: VMBed, fresh: str):  # noqa: F811
    d1 = vmbed.d1
    [info] = [x for x in d1.list() if x.name == "vm2"]
    assert (info.name, info.state, info.memory_mb, info.vcpus) == ("vm2", "running", 128, 1)
    assert info.domid and os.path.exists(f"/proc/{info.domid}")
    # QEMU runs inside h1's network namespace
    assert os.readlink(f"/proc/{info.domid}/ns/net") == os.readlink(f"/proc/{vmbed.bed.hosts[0].pid}/ns/net")
    # a new driver object finds the VM from the run directory
    again = QemuDriver("h1", run_dir=d1.run_dir, exec_prefix=d1.exec_prefix, bridge="br0")
    assert "vm2" in again.names()
    with pytest.raises(DriverError, match="already exists"):
        again.create(DomainSpec("vm2", kernel=vmbed.guest.kernel))
    # CPU%: idle guest low, burning guest near one full CPU
    idle = d1.cpu_percent("vm2")
    assert control(fresh, "burn on") == "OK burning"
    d1.list()  # the sample the next list() measures from
    time.sleep(1.0)
    busy = [x for x in d1.list() if x.name == "vm2"][0].cpu_percent
    assert control(fresh, "burn off") == "OK idle"
    # a busy vCPU is one full CPU; other tests on this 2-core machine may take part of it
    assert idle is not None and idle < 30, idle
    # (alone it reads 95-100 %; with 3 other busy processes about 30 %)
    assert busy is not None and busy > idle + 15, (idle, busy)
    d1.destroy("vm2")
    assert "vm2" not in d1.names()
    assert not os.path.exists(f"/proc/{info.domid}")  # killed and reaped
    with pytest.raises(DomainNotFound):
        d1.destroy("vm2")
    assert not ping_ok(fresh)


def test_shutdown_is_graceful(vmbed: VMBed, fresh: str):  # noqa: F811
    """The guest powers off on the ACPI button (system_powerdown); QEMU exits by itself."""
    t = time.monotonic()
    vmbed.d1.shutdown("vm2", timeout=20.0)
    assert time.monotonic() - t < 10
    assert "GUEST-POWEROFF" in vmbed.d1.serial_output("vm2")
    assert "vm2" not in vmbed.d1.names()


def test_shutdown_falls_back_to_quit(tmp_path):
    """A machine that ignores the power button (no OS: paused firmware) is quit after the timeout."""
    d = QemuDriver("hq", run_dir=str(tmp_path))
    d.create(DomainSpec("deaf", memory_mb=32, extra={"net": "none", "qemu_args": ["-S"]}))
    assert [x.state for x in d.list()] == ["paused"]
    t = time.monotonic()
    d.shutdown("deaf", timeout=0.5)
    assert 0.5 <= time.monotonic() - t < 8
    assert d.names() == []


def test_live_migration_h1_to_h2_scenario1_same_tcp_connection(vmbed: VMBed, vm: str):  # noqa: F811
    """Scenario 1 (hot migration): a client reading the guest's numbered stream keeps the same
    TCP connection across the migration, with no gap and no repeat in the numbers."""
    d1, d2 = vmbed.d1, vmbed.d2
    with StreamClient(vm) as stream:
        stream.wait_for(50)
        before = stream.count
        report = d1.migrate("vm1", d2)
        after_migration = stream.count
        stream.wait_for(after_migration + 100, timeout=20)
        result = stream.report()
    assert isinstance(report, QemuMigrationReport) and report.ok, report
    assert report.total_time and 0 < report.total_time < 30
    assert report.downtime is not None and report.downtime < 5
    assert report.ram_transferred_mb and report.ram_transferred_mb > 1
    assert report.prepare_time is not None and report.prepare_time < 10
    assert (report.source, report.destination) == ("h1", "h2")
    assert "vm1" not in d1.names() and "vm1" in d2.names()
    assert ("vm1", "running") in [(x.name, x.state) for x in d2.list()]
    assert result.error is None, result
    assert result.gaps == [] and result.repeats == 0, result
    assert result.first == 0 and result.last == result.received - 1
    assert result.received > before + 100
    assert console_errors(d2.serial_output("vm1")) == []
    assert ping_ok(vm)
    # and back, still the same guest (uptime keeps growing, services answer)
    back = d2.migrate("vm1", d1)
    assert back.ok and "vm1" in d1.names() and "vm1" not in d2.names()
    assert control(vm, "status").startswith("burn=idle")


class _RefusingDestination(QemuDriver):
    """A destination whose QEMU dies as soon as it listens: the source's connect is refused."""

    def _incoming_ready(self, name: str, pid: int, uri: str) -> None:
        os.kill(pid, 9)
        time.sleep(0.2)


def _assert_still_on_source(vmbed: VMBed, ip: str) -> None:  # noqa: F811
    assert "vm1" in vmbed.d1.names()
    assert "vm1" not in vmbed.d2.names()
    assert vmbed.d1.status("vm1") == "running"
    assert ping_ok(ip)
    assert control(ip, "status").startswith("burn=")
    left = [p for p in os.listdir(vmbed.d2.run_dir) if p.startswith("vm1.") and p.endswith((".json", ".pid"))]
    assert not left


def test_destination_dead_before_migration(vmbed: VMBed, vm: str):  # noqa: F811
    d2 = vmbed.d2
    dead = _RefusingDestination("h2", run_dir=d2.run_dir, exec_prefix=d2.exec_prefix, bridge=d2.bridge,
                                migration_address=d2.migration_address)
    with StreamClient(vm) as stream:
        stream.wait_for(20)
        with pytest.raises(MigrationError) as info:
            vmbed.d1.migrate("vm1", dead, timeout=30)
        stream.wait_for(stream.count + 30)
        result = stream.report()
    assert info.value.report is not None and info.value.report.status == "failed"
    assert result.continuous, result
    _assert_still_on_source(vmbed, vm)


def test_destination_that_cannot_start(vmbed: VMBed, vm: str):  # noqa: F811
    """A destination whose QEMU cannot even start (its bridge does not exist)."""
    d2 = vmbed.d2
    broken = QemuDriver("h2", run_dir=d2.run_dir, exec_prefix=d2.exec_prefix, bridge="nosuchbr0",
                        migration_address=d2.migration_address)
    with pytest.raises(MigrationError, match="cannot prepare") as info:
        vmbed.d1.migrate("vm1", broken)
    assert info.value.report.status == "failed" and info.value.report.prepare_time is None
    _assert_still_on_source(vmbed, vm)


def test_destination_killed_during_migration(vmbed: VMBed, vm: str):  # noqa: F811
    d1, d2 = vmbed.d1, vmbed.d2
    control(vm, "dirty 16")   # 16 MiB rewritten continuously at 4 MiB/s: several seconds
    killed: list[int] = []
    listed: list[tuple[list[tuple[str, str]], float]] = []

    def killer() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = d2._pid("vm1")
            if pid and os.path.exists(d1._path("vm1", "qmp")):
                time.sleep(0.3)  # let the stream start
                t = time.monotonic()  # list() meanwhile answers through the migration's QMP
                listed.append(([(x.name, x.state) for x in d1.list()], time.monotonic() - t))
                os.kill(pid, 9)
                killed.append(pid)
                return
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    try:
        with pytest.raises(MigrationError) as info:
            d1.migrate("vm1", d2, max_bandwidth_mib=4, timeout=60)
    finally:
        t.join()
        control(vm, "nodirty")
    assert killed
    [(doms, took)] = listed
    assert ("vm1", "running") in doms and took < 2.5, listed
    rep = info.value.report
    assert rep.status == "failed" and rep.prepare_time is not None
    _assert_still_on_source(vmbed, vm)


def test_migration_timeout_cancels_and_keeps_the_vm(vmbed: VMBed, vm: str):  # noqa: F811
    control(vm, "dirty 16")
    try:
        t = time.monotonic()
        with pytest.raises(MigrationError, match="timed out"):
            vmbed.d1.migrate("vm1", vmbed.d2, max_bandwidth_mib=2, timeout=1.0)
        assert time.monotonic() - t < 15
    finally:
        control(vm, "nodirty")
    _assert_still_on_source(vmbed, vm)
    # parameters set on the source stay; a later migration at full speed works
    report = vmbed.d1.migrate("vm1", vmbed.d2, max_bandwidth_mib=1024, downtime_limit_ms=300)
    assert report.ok and "vm1" in vmbed.d2.names()
    assert ping_ok(vm)


def test_migrate_to_a_host_name_is_a_usage_error(vmbed: VMBed, vm: str):  # noqa: F811
    with pytest.raises(UsageError):
        vmbed.d1.migrate("vm1", "h2")
    with pytest.raises(DomainNotFound):
        vmbed.d1.migrate("nope", vmbed.d2)


def test_over_ssh_create_migrate_destroy(vmbed: VMBed, tmp_path):  # noqa: F811
    """The same driver through SSH executors to h1 and h2: QEMU started with -daemonize over
    SSH, QMP through a helper run on the host; a live migration h1 -> h2 keeps the stream."""
    pytest.importorskip("paramiko")
    from tune.remote import ssh
    from tune.remote.ssh import SSHExecutor

    bed = vmbed.bed
    drivers = []
    for h in ("h1", "h2"):
        host = bed.host(h)
        ex = SSHExecutor(host.address, key_filename=bed.key_path, known_hosts=str(tmp_path / "known_hosts"),
                         connect_timeout=3, retries=1)
        # as the manager builds it: executor and run_dir; migrations arrive on the SSH address
        drivers.append(QemuDriver(h, executor=ex, run_dir=f"/tmp/tune-qemu-ssh/{h}", bridge="br0"))
        assert drivers[-1].migration_address == host.address
    s1, s2 = drivers
    ip = vmbed.ip(4)
    try:
        s1.create(DomainSpec("svm", memory_mb=128, kernel=vmbed.guest.kernel, initrd=vmbed.guest.initrd,
                             cmdline=vmbed.guest.cmdline(f"{ip}/24")))
        s1.wait_console("svm", "GUEST-UP", timeout=60)
        wait_port(ip, 7000, timeout=20)
        [info] = s1.list()
        assert (info.name, info.state) == ("svm", "running") and info.cpu_percent is not None
        # the VM runs in h1, not as a child of this process
        assert os.readlink(f"/proc/{info.domid}/ns/net") == os.readlink(f"/proc/{bed.hosts[0].pid}/ns/net")
        with StreamClient(ip) as stream:
            stream.wait_for(30)
            report = s1.migrate("svm", s2)
            stream.wait_for(stream.count + 50, timeout=20)
            result = stream.report()
        assert report.ok and report.downtime is not None, report
        assert result.continuous, result
        assert s1.names() == [] and s2.names() == ["svm"]
        assert ping_ok(ip)
        s2.destroy("svm")
        assert s2.names() == []
    finally:
        for d in drivers:
            for name in d.names():
                d.destroy(name)
            d.executor.close()
        ssh.close_all()
