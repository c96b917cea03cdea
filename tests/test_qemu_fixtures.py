"""Fixtures shared by the QEMU, guest and measurement tests (imported by those modules).

- ``guest`` (session): the test guest built once (cached on disk, see ``tune.testbed.guest``).
- ``vmbed`` (module): the session test bed with a VM bridge in h1 and h2, and a qemu driver
  for each; every VM left at the end of the module is destroyed and the bridges removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from tune.testbed.guest import Guest, GuestBuildError, build_guest
from tune.virt.qemu import QemuDriver, qemu_missing_reason

QEMU_REASON = qemu_missing_reason()


@pytest.fixture(scope="session")
def guest() -> Guest:
    if QEMU_REASON:
        pytest.skip(QEMU_REASON)
    try:
        return build_guest()
    except GuestBuildError as exc:
        pytest.skip(f"test guest cannot be built: {exc}")


@dataclass
class VMBed:
    bed: Any
    d1: QemuDriver
    d2: QemuDriver
    guest: Guest

    def ip(self, index: int = 1) -> str:
        from tune.testbed.vmnet import guest_address
        return guest_address(self.bed, index)


@pytest.fixture(scope="module")
def vmbed(request: pytest.FixtureRequest, guest: Guest) -> Iterator[VMBed]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, taps)")
    from tune.testbed.vmnet import qemu_driver, remove_vm_bridge
    bed = request.getfixturevalue("testbed")
    d1, d2 = qemu_driver(bed, "h1"), qemu_driver(bed, "h2")
    try:
        yield VMBed(bed, d1, d2, guest)
    finally:
        for d in (d1, d2):
            for name in d.names():
                d.destroy(name)
        for h in ("h1", "h2"):
            remove_vm_bridge(bed, h)


def test_fixture_module_has_no_tests_of_its_own() -> None:
    """(pytest collects this file by its name; the fixtures live here.)"""
