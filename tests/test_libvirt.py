"""The libvirt driver against libvirt's in-process test hypervisor (``test:///default``).

What that hypervisor supports is tested here for real: listing with state, memory and vCPUs,
creating from XML, shutting down, destroying, host capacity, and the refusal of migration.
A real live migration between two libvirtd daemons is tested in ``test_libvirt_migration.py``.
"""

import pytest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (pip install libvirt-python)")

from tune.errors import DomainNotFound, MigrationError  # noqa: E402
from tune.virt import driver_for  # noqa: E402
from tune.virt.base import DomainSpec  # noqa: E402
from tune.virt.libvirt import domain_xml  # noqa: E402


@pytest.fixture
def drv():
    d = driver_for("libvirt", "testhost", uri="test:///default")
    yield d
    d.close()


def test_list_shows_the_default_domain(drv):
    [dom] = [d for d in drv.list() if d.name == "test"]
    # libvirt's test hypervisor defines "test": running, 2 GiB in use (8 GiB max), 2 vCPUs
    assert (dom.state, dom.memory_mb, dom.vcpus) == ("running", 2048, 2)


def test_create_shutdown_destroy(drv):
    info = drv.create(DomainSpec("vm-a", memory_mb=128, vcpus=1))
    assert (info.name, info.state, info.memory_mb, info.vcpus) == ("vm-a", "running", 128, 1)
    assert "vm-a" in [d.name for d in drv.list()]
    drv.shutdown("vm-a", wait=True, timeout=5)
    assert "vm-a" not in [d.name for d in drv.list()]
    drv.create(DomainSpec("vm-b", memory_mb=64))
    drv.destroy("vm-b")
    assert "vm-b" not in [d.name for d in drv.list()]
    with pytest.raises(DomainNotFound):
        drv.destroy("vm-b")


def test_host_info(drv):
    info = drv.info()
    assert info.cpus >= 1 and info.memory_mb > 0 and 0 <= info.free_memory_mb <= info.memory_mb


def test_test_driver_has_no_cpu_time(drv):
    drv.cpu_interval = 0.01
    value = drv.cpu_percent("test")
    assert value is None or value >= 0


def test_migration_refused_leaves_the_domain(drv):
    other = driver_for("libvirt", "other", uri="test:///default")
    with pytest.raises(MigrationError) as err:
        drv.migrate("test", other)
    assert err.value.report.status == "failed" and err.value.report.message
    assert "test" in [d.name for d in drv.list()]


def test_domain_xml_quotes_everything():
    xml = domain_xml(DomainSpec("a<b", memory_mb=96, kernel="/k&", cmdline="x='1'", extra={"bridge": "br'0"}))
    from lxml import etree
    root = etree.fromstring(xml)
    assert root.findtext("name") == "a<b" and root.findtext("os/kernel") == "/k&"
    assert root.find("devices/interface/source").get("bridge") == "br'0"
