"""The libvirt driver for real: one libvirtd per namespace host, a live migration h1 -> h2.

Each of h1 and h2 runs its own ``libvirtd`` (:mod:`tune.testbed.libvirtd`) inside the host's
namespaces; the drivers reach them over ``qemu+ssh://root@ADDR/system`` (the test bed's key and
known hosts), the test guest boots under libvirt with direct kernel boot and a NIC in the host's
bridge ``br0`` (:mod:`tune.testbed.vmnet`), and QEMU migrates to QEMU over
``tcp://<h2 address>``.  Skips with the reason when not root or when libvirtd, QEMU or
libvirt-python is missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Iterator

import pytest

from tune.testbed.libvirtd import libvirtd_missing_reason

REASON = libvirtd_missing_reason()
pytestmark = [pytest.mark.libvirt, pytest.mark.qemu, pytest.mark.root,
              pytest.mark.skipif(REASON is not None, reason=str(REASON))]

from test_qemu_fixtures import guest  # noqa: E402,F401 - fixture
from tune.errors import MigrationError  # noqa: E402
from tune.testbed.guest import STREAM_PORT, Guest, StreamClient, wait_ping, wait_port  # noqa: E402
from tune.testbed.libvirtd import LibvirtHosts  # noqa: E402
from tune.testbed.vmnet import VM_BRIDGE, add_vm_bridge, guest_address, remove_vm_bridge  # noqa: E402
from tune.virt.base import DomainSpec  # noqa: E402


@pytest.fixture(scope="module")
def lv(request: pytest.FixtureRequest, guest: Guest) -> Iterator[LibvirtHosts]:  # noqa: F811
    """libvirtd in h1 and h2 of the session test bed, VM bridges in both; all undone after."""
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are exceptions; no stderr noise
    bed = request.getfixturevalue("testbed")
    for h in ("h1", "h2"):
        add_vm_bridge(bed, h)
    hosts = LibvirtHosts(bed, ["h1", "h2"])
    try:
        hosts.start()
        yield hosts
    finally:
        hosts.stop()
        for h in ("h1", "h2"):
            remove_vm_bridge(bed, h)


def boot(lv: LibvirtHosts, drv, guest: Guest, name: str, index: int) -> str:  # noqa: F811
    """Create ``name`` under libvirt on ``drv``'s host; wait until it answers; return its IP."""
    ip = guest_address(lv.bed, index)
    drv.create(DomainSpec(name, memory_mb=128, kernel=guest.kernel, initrd=guest.initrd,
                          cmdline=guest.cmdline(f"{ip}/24"), extra={"bridge": VM_BRIDGE}))
    wait_ping(ip, timeout=60)
    wait_port(ip, STREAM_PORT, timeout=30)
    return ip


def names(drv) -> list[str]:
    return [d.name for d in drv.list()]


def ping_ok(ip: str) -> bool:
    return subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-n", ip],
                          capture_output=True).returncode == 0


class Pinger:
    """``ping -i 0.01`` in the background: how many echo requests went unanswered."""

    def __init__(self, ip: str) -> None:
        self.proc = subprocess.Popen(["ping", "-i", "0.01", "-W", "1", "-n", ip], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def stop(self) -> tuple[int, int]:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=10)
        for line in out.splitlines():
            if "packets transmitted" in line:
                sent, received = line.split(",")[:2]
                return int(sent.split()[0]), int(received.split()[0])
        return 0, 0


def test_live_migration_between_two_daemons(lv, guest, record_property):  # noqa: F811
    d1, d2 = lv.driver("h1"), lv.driver("h2")
    assert d1.uri.startswith("qemu+ssh://root@") and d2.migrate_uri == f"tcp://{lv.bed.host('h2').address}"
    try:
        t0 = time.monotonic()
        ip = boot(lv, d1, guest, "lvm1", index=11)
        boot_s = time.monotonic() - t0
        assert names(d1) == ["lvm1"] and names(d2) == []
        assert d1.list()[0].state == "running"
        stream = StreamClient(ip)
        stream.wait_for(50)
        pinger = Pinger(ip)
        time.sleep(0.3)
        report = d1.migrate("lvm1", d2)
        time.sleep(1.0)
        sent, received = pinger.stop()
        stream.wait_for(stream.count + 50)
        seen = stream.close()
        # where it runs, by each daemon's own word
        assert names(d1) == [] and names(d2) == ["lvm1"]
        assert d2.list()[0].state == "running"
        assert ping_ok(ip)
        assert report.status == "completed" and report.source == "h1" and report.destination == "h2"
        assert report.total_time is not None and 0 < report.total_time < 30
        assert report.downtime is not None and 0 <= report.downtime < 5
        assert report.ram_transferred_mb and report.ram_transferred_mb > 1
        assert seen.continuous, seen  # the TCP stream went on over the migration, no gap
        figures = {"boot_s": round(boot_s, 2), "total_s": report.total_time, "downtime_ms": report.downtime * 1000,
                   "ram_mb": report.ram_transferred_mb, "ping_sent": sent, "ping_lost": sent - received,
                   "stream_longest_silence_ms": round(seen.longest_silence * 1000)}
        record_property("libvirt_migration", json.dumps(figures))
        print("libvirt migration h1 -> h2:", figures)
    finally:
        for d in (d1, d2):
            if "lvm1" in names(d):
                d.destroy("lvm1")
            d.close()


def test_destination_daemon_stopped_fails_and_vm_stays(lv, guest):  # noqa: F811
    d1, d2 = lv.driver("h1"), lv.driver("h2")
    try:
        ip = boot(lv, d1, guest, "lvm2", index=12)
        assert names(d2) == []  # d2 connected while its daemon ran
        lv.stop_daemon("h2")
        assert not lv.running("h2")
        with pytest.raises(MigrationError) as err:
            d1.migrate("lvm2", d2)
        report = err.value.report
        assert report.status == "failed" and report.message and report.destination == "h2"
        # still on h1, running and answering
        [dom] = d1.list()
        assert (dom.name, dom.state) == ("lvm2", "running")
        assert ping_ok(ip)
        # the daemon comes back; the same driver object reconnects and sees no domain there
        lv.start_daemon("h2")
        assert names(d2) == []
    finally:
        if not lv.running("h2"):
            lv.start_daemon("h2")
        for d in (d1, d2):
            if "lvm2" in names(d):
                d.destroy("lvm2")
            d.close()


def test_daemons_are_reaped(lv):
    """Each daemon is a child of its reaper (ours); stop() leaves nothing behind (checked in a
    private LibvirtHosts over h3 so the module's daemons keep running)."""
    bed = lv.bed
    extra = LibvirtHosts(bed, ["h3"])
    extra.start()
    pid = extra.daemon_pid("h3")
    assert pid and open(f"/proc/{pid}/comm").read().strip() == "libvirtd"
    reaper = extra.procs["h3"]
    extra.stop()
    assert reaper.returncode is not None and not os.path.exists(f"/proc/{pid}")
    mounts = bed.run_in("h3", ["cat", "/proc/self/mounts"]).stdout
    assert " /run/libvirt " not in mounts and " /etc/libvirt " not in mounts
