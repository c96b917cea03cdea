"""XenDriver over a scripted executor replaying the real Xen outputs (no root needed)."""

import os

import pytest

from tune.errors import (DomainNotFound, DriverError, HostUnreachable, InsufficientResources,
                         MigrationError)
from tune.remote.base import Executor, Result, quote_command
from tune.virt import driver_for
from tune.virt.base import DomainSpec
from tune.virt.xen import XenDriver, xl_config

DATA = os.path.join(os.path.dirname(__file__), "data", "xl")


def sample(name):
    path = os.path.join(DATA, name)
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def replay(name):
    """(exit code, stdout, stderr) of a captured command."""
    meta = sample(name + (".meta" if os.path.exists(os.path.join(DATA, name + ".meta"))
                          else ".stderr.meta"))
    rc = int(meta.split("exit_code=")[1].split()[0])
    out = sample(name + ".txt") if os.path.exists(os.path.join(DATA, name + ".txt")) else ""
    return rc, out, sample(name + ".stderr.txt")


class Scripted(Executor):
    """Answers commands from a table of command line -> captured sample."""

    protocol = "scripted"

    def __init__(self, table, host="xA"):
        super().__init__(host)
        self.table = table
        self.calls = []

    def run(self, command, *, timeout=None, check=True, input=None, env=None):
        line = quote_command(command)
        self.calls.append(line)
        if line not in self.table:
            raise AssertionError(f"unexpected command {line!r}")
        answer = self.table[line]
        if isinstance(answer, Exception):
            raise answer
        rc, out, err = replay(answer) if isinstance(answer, str) else answer
        return Result(line, rc, out, err, self.host)

    def put(self, local_path, remote_path, *, mode=None):
        with open(local_path) as fh:
            self.table[f"put {remote_path}"] = fh.read()

    def stream(self, command):  # pragma: no cover - unused
        raise NotImplementedError


def test_registry_builds_xen_with_an_executor():
    drv = driver_for("xen", "xA", executor=Scripted({}))
    assert isinstance(drv, XenDriver) and drv.host == "xA"


def test_list_excludes_dom0_and_adds_cpu_from_second_xentop_iteration():
    ex = Scripted({"xl list": "xl-list.running", "xentop -b -d 1 -i 2": "xentop-b-d1-i2.running"})
    (d1,) = XenDriver("xA", executor=ex).list()
    assert (d1.name, d1.domid, d1.memory_mb, d1.state, d1.cpu_percent) == ("d1", 1, 96, "blocked", 6.2)
    assert ex.calls == ["xl list", "xentop -b -d 1 -i 2"]


def test_list_dom0_only_skips_xentop():
    ex = Scripted({"xl list": "xl-list.dom0-only"})
    assert XenDriver("xA", executor=ex).list() == []
    assert ex.calls == ["xl list"]


def test_domain_not_found():
    ex = Scripted({"xl list nonexistent": "xl-list.nonexistent"})
    with pytest.raises(DomainNotFound) as info:
        XenDriver("xA", executor=ex).domain("nonexistent")
    assert info.value.host == "xA" and info.value.command == "xl list nonexistent"
    assert "invalid domain identifier" in str(info.value)


def test_create_from_config_and_missing_config():
    ex = Scripted({"xl create /etc/xen/d1.cfg": "xl-create.success",
                   "xl list d1": (0, sample("xl-list.running.txt").replace(
                       sample("xl-list.running.txt").splitlines()[1] + "\n", ""), ""),
                   "xl create /etc/xen/nonexistent.cfg": "xl-create.missing-config"})
    drv = XenDriver("xA", executor=ex)
    d1 = drv.create(DomainSpec("d1", config="/etc/xen/d1.cfg"))
    assert (d1.name, d1.memory_mb) == ("d1", 96)
    with pytest.raises(DriverError) as info:
        drv.create(DomainSpec("x", config="/etc/xen/nonexistent.cfg"))
    assert "Failed to read config file: /etc/xen/nonexistent.cfg" in str(info.value)
    assert info.value.host == "xA"


def test_create_checks_free_memory_first():
    ex = Scripted({"xl info": "xl-info"})
    with pytest.raises(InsufficientResources) as info:
        XenDriver("xA", executor=ex).create(DomainSpec("big", memory_mb=4096))
    assert "498 MiB free" in str(info.value) and info.value.host == "xA"
    ex = Scripted({"xl create /c.cfg": (3, "", "Parsing config from /c.cfg\nlibxl: error: x.c:1:f: "
                                                  "Domain 5:failed to free memory for the domain\n")})
    with pytest.raises(InsufficientResources):
        XenDriver("xA", executor=ex).create(DomainSpec("big", config="/c.cfg"))


def test_create_writes_a_config_from_the_spec():
    ex = Scripted({"xl info": "xl-info", "mkdir -p /cfg": (0, "", ""), "xl create /cfg/d2.cfg": (0, "", "Parsing config from /cfg/d2.cfg\n"),
                   "xl list d2": (0, sample("xl-list.running.txt").replace("d1  ", "d2  "), "")})
    XenDriver("xA", executor=ex, config_dir="/cfg").create(DomainSpec("d2", memory_mb=96, vcpus=1))
    assert 'name = "d2"' in ex.table["put /cfg/d2.cfg"]


def test_xl_config_refuses_injection():
    with pytest.raises(DriverError):
        xl_config(DomainSpec('d"\nkernel = "/evil'))
    assert 'extra = "console=hvc0"' in xl_config(DomainSpec("d", kernel="/k", cmdline="console=hvc0"))


def test_shutdown_destroy_info():
    ex = Scripted({"xl shutdown -w d1": "xl-shutdown-w.d1", "xl destroy d1": "xl-destroy.d1",
                   "xl info": "xl-info", "xl destroy nonexistent": "xl-list.nonexistent"})
    drv = XenDriver("xA", executor=ex)
    drv.shutdown("d1")
    drv.destroy("d1")
    info = drv.info()
    assert (info.name, info.cpus, info.memory_mb, info.free_memory_mb) == ("xA", 1, 1023, 498)
    with pytest.raises(DomainNotFound):
        drv.destroy("nonexistent")


def test_migrate_success_report():
    ex = Scripted({"xl migrate -s '' d1 'nc 10.77.0.13 7001'": "xl-migrate.success"})
    rep = XenDriver("xA", executor=ex, ssh_command="").migrate("d1", "nc 10.77.0.13 7001")
    assert rep.ok and rep.status == "completed" and rep.downtime is None
    assert rep.total_time is not None and rep.total_time >= 0
    assert (rep.domain, rep.source) == ("d1", "xA")


def test_migrate_failure_raises_with_failed_report():
    ex = Scripted({"xl migrate d1 xB": "xl-migrate.fail-receiver-killed"})
    with pytest.raises(MigrationError) as info:
        XenDriver("xA", executor=ex).migrate("d1", XenDriver("xB", executor=Scripted({})))
    rep = info.value.report
    assert rep.status == "failed" and rep.destination == "xB"
    assert "Migration failed, resuming at sender." in rep.message
    assert info.value.host == "xA" and info.value.command == "xl migrate d1 xB"


def test_unreachable_dom0_is_not_hidden():
    ex = Scripted({"xl list": HostUnreachable("refused", host="xA", command="xl list")})
    with pytest.raises(HostUnreachable):
        XenDriver("xA", executor=ex).list()


def test_garbage_output_is_a_driver_error_naming_host_and_command():
    ex = Scripted({"xl list": (0, "Segmentation fault\n", "")})
    with pytest.raises(DriverError) as info:
        XenDriver("xA", executor=ex).list()
    assert info.value.host == "xA" and info.value.command == "xl list"
