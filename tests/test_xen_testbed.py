"""The xen driver over real SSH against the stand-in xl on namespace hosts (needs root).

Also checks that the stand-in prints byte for byte what Xen 4.17.7 printed in the samples.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from tune.errors import DomainNotFound, DriverError, InsufficientResources, MigrationError
from tune.remote import ssh
from tune.remote.ssh import SSHExecutor
from tune.testbed import fake_xl, testbed_missing_reason
from tune.virt.base import DomainSpec
from tune.virt.xen import XenDriver

DATA = os.path.join(os.path.dirname(__file__), "data", "xl")
D1_CFG = 'name = "d1"\nmemory = 96\nvcpus = 1\nkernel = "/boot/vmlinuz"\n'


def sample(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as fh:
        return fh.read()


# -- the stand-in alone (no root: run it as a local program) -----------------------------
@pytest.fixture
def local_xl(tmp_path):
    cfg = tmp_path / "fake-xl.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "host": "xA",
                               "total_memory": 1023, "nr_cpus": 1}))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(fake_xl.__file__, bindir / "xl")
    os.symlink(fake_xl.__file__, bindir / "xentop")
    env = dict(os.environ, TUNE_FAKE_XL_CONFIG=str(cfg))
    (tmp_path / "d1.cfg").write_text(D1_CFG)

    def run(*argv):
        prog = str(bindir / argv[0])
        return subprocess.run([prog, *argv[1:]], capture_output=True, text=True, env=env,
                              timeout=20)
    run.cfg_path = str(tmp_path / "d1.cfg")
    return run


def _no_times(text):
    return re.sub(r" +[0-9]+\.[0-9]$", " T", text, flags=re.M)


def test_stand_in_prints_what_xl_prints(local_xl):
    r = local_xl("xl", "list")
    assert r.returncode == 0 and r.stderr == ""
    assert _no_times(r.stdout) == _no_times(sample("xl-list.dom0-only.txt"))
    r = local_xl("xl", "create", local_xl.cfg_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", f"Parsing config from {local_xl.cfg_path}\n")
    r = local_xl("xl", "create", "/etc/xen/nonexistent.cfg")
    assert (r.returncode, r.stdout, r.stderr) == (3, "", sample("xl-create.missing-config.stderr.txt"))
    r = local_xl("xl", "list")
    assert _no_times(r.stdout) == _no_times(sample("xl-list.running.txt"))
    r = local_xl("xl", "list", "nonexistent")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", sample("xl-list.nonexistent.stderr.txt"))
    assert local_xl("xl", "info").stdout == sample("xl-info.d1-running.txt")
    r = local_xl("xentop", "-b", "-d", "0.1", "-i", "2")
    want = sample("xentop-b-d1-i2.running.txt")
    got = r.stdout
    # same layout; CPU(sec) and CPU% values differ
    assert [len(x) for x in got.splitlines()] == [len(x) for x in want.splitlines()]
    assert re.sub(r" +\d+(\.\d)?", " N", got) == re.sub(r" +\d+(\.\d)?", " N", want)
    assert local_xl("xl", "pause", "d1").returncode == 0
    assert _no_times(local_xl("xl", "list").stdout) == _no_times(sample("xl-list.paused.txt"))
    local_xl("xl", "unpause", "d1")
    r = local_xl("xl", "shutdown", "-w", "d1")
    assert r.returncode == 0
    assert r.stderr == sample("xl-shutdown-w.d1.stderr.txt").replace("domain 3", "domain 1").replace(
        "Domain 3", "Domain 1")
    assert local_xl("xl", "destroy", "d1").stderr == sample("xl-list.nonexistent.stderr.txt").replace(
        "nonexistent", "d1")


def test_stand_in_migration_over_a_command_like_nc(local_xl, tmp_path):
    """``-s ""`` makes HOST the transport command, as with ``nc`` on the real lab."""
    local_xl("xl", "create", local_xl.cfg_path)
    bindir = tmp_path / "bin"
    recv_cfg = tmp_path / "recv.json"
    recv_cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "host": "xB"}))
    transport = f"env TUNE_FAKE_XL_CONFIG={recv_cfg} {bindir}/xl migrate-receive 2>/dev/null"
    r = local_xl("xl", "migrate", "-s", "", "d1", transport)
    assert r.returncode == 0, r.stderr
    assert r.stderr == sample("xl-migrate.success.stderr.txt")
    assert "d1" not in local_xl("xl", "list").stdout
    # the receiver killed mid-way: the real failure messages, domain resumed at the sender
    shutil.rmtree(tmp_path / "state")  # fresh hosts: d1 gets domid 1 again, as in the sample
    local_xl("xl", "create", local_xl.cfg_path)
    killer = f"sh -c 'env TUNE_FAKE_XL_CONFIG={recv_cfg} {bindir}/xl migrate-receive 2>/dev/null | head -c 54'"
    r = local_xl("xl", "migrate", "-s", "", "d1", killer)
    assert r.returncode == 1
    assert r.stderr == sample("xl-migrate.fail-receiver-killed.stderr.txt")
    assert "d1 " in local_xl("xl", "list", "d1").stdout


# -- over SSH on the namespace hosts -----------------------------------------------------------
needs_root = pytest.mark.skipif(testbed_missing_reason() is not None,
                                reason=testbed_missing_reason() or "")


@pytest.fixture
def xen(testbed_hosts, xen_state, tmp_path):
    """host name -> XenDriver over SSH to that namespace host."""
    ssh.close_all()
    drivers = {}
    for h in testbed_hosts.hosts:
        ex = SSHExecutor(h.address, key_filename=testbed_hosts.key_path,
                         known_hosts=str(tmp_path / "known_hosts"), connect_timeout=3, retries=1)
        # other dom0s reach this one by its name (the hosts' /etc/hosts knows h1..h3)
        drivers[h.name] = XenDriver(h.name, executor=ex, address=h.name, config_dir="/root/xen",
                                    cpu_in_list=False)
    yield drivers
    for d in drivers.values():
        d.close()
    ssh.close_all()


@needs_root
@pytest.mark.root
def test_create_list_migrate_over_ssh(xen, testbed_hosts):
    h1, h2 = xen["h1"], xen["h2"]
    d = h1.create(DomainSpec("vm1", memory_mb=128, vcpus=2, kernel="/boot/vmlinuz"))
    assert (d.name, d.memory_mb, d.vcpus, d.state) == ("vm1", 128, 2, "blocked")
    assert [x.name for x in h1.list()] == ["vm1"] and h2.list() == []
    assert testbed_hosts.run_in("h1", ["cat", "/root/xen/vm1.cfg"]).stdout.startswith('name = "vm1"')
    info = h1.info()
    assert info.name == "h1" and info.free_memory_mb == info.memory_mb - 512 - 13 - 130
    report = h1.migrate("vm1", h2)
    assert report.ok and report.destination == "h2" and report.total_time > 0
    assert [x.name for x in h2.list()] == ["vm1"]
    assert h1.list() == []
    with pytest.raises(DomainNotFound):
        h1.domain("vm1")
    h2.shutdown("vm1")
    assert h2.list() == []
    with pytest.raises(InsufficientResources):
        h2.create(DomainSpec("huge", memory_mb=64 * 1024))


@needs_root
@pytest.mark.root
def test_migration_to_a_dead_sshd_fails_and_keeps_the_domain(xen, testbed_hosts):
    h1 = xen["h1"]
    h1.create(DomainSpec("vm2", memory_mb=64))
    testbed_hosts.kill_sshd("h2")
    with pytest.raises(MigrationError) as info:
        h1.migrate("vm2", xen["h2"])
    rep = info.value.report
    assert rep.status == "failed" and "Connection refused" in rep.message
    assert info.value.host == "h1" and info.value.command == "xl migrate vm2 h2"
    assert [d.name for d in h1.list()] == ["vm2"]
    assert h1.domain("vm2").state == "blocked"
    h1.destroy("vm2")


@needs_root
@pytest.mark.root
def test_cpu_load_reaches_xentop(xen):
    h3 = xen["h3"]
    h3.create(DomainSpec("busy", memory_mb=64))
    h3.executor.run(["xl", "tune-set-load", "busy", "87.5"])
    t0 = time.monotonic()
    assert h3.cpu_percent("busy") == 87.5
    assert 1.0 <= time.monotonic() - t0 < 5  # xentop -d 1 -i 2: one second window
    assert h3.domain("busy").state == "running"
    h3.cpu_in_list = True
    (busy,) = h3.list()
    assert busy.cpu_percent == 87.5
    h3.destroy("busy")


@needs_root
@pytest.mark.root
def test_hostile_domain_names_through_the_driver(xen):
    for name in ['"; touch /tmp/tune-pwned; echo "', "$(touch /tmp/tune-pwned)", "`id`", "-rf"]:
        with pytest.raises((DomainNotFound, DriverError)):
            xen["h1"].domain(name)
        with pytest.raises(DriverError):  # refused before reaching xl
            xen["h1"].create(DomainSpec(name + '"\n'))
    assert not os.path.exists("/tmp/tune-pwned")
