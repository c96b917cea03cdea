"""pytest fixtures for the namespace test bed (loaded by ``tests/conftest.py``).

- ``testbed`` (session): three hosts ``h1..h3`` on ``10.78.0.0/24`` with prefix ``tt`` (so a
  developer's own ``python -m tune.testbed up`` on ``10.77.0.0/24`` is left alone), built once
  per session and torn down at the end.  Skips with a clear reason when not root or when
  ``sshd`` / ``ip`` are missing.
- ``testbed_hosts`` (function): the same test bed, restored before and after the test (every
  sshd running, every link up), so fault-injection tests do not leak into the next one.
- ``xen_state`` (function): the stand-in ``xl``'s shared state emptied before and after.

Concurrent sessions (pytest-xdist workers, several developers) each claim a free slot
``ttN`` / ``10.78.N.0/24`` through a lock file, so they never tear down each other's hosts.
"""

from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest

from .netns import SKIP_REASON, TestBed, TestBedError, testbed_missing_reason
from .slots import claim_slot


def _claim_slot() -> tuple[int, int]:
    """A test-bed slot no other pytest session on this machine uses: (index, lock fd).

    Several sessions may run at once (xdist workers, two developers, CI): each builds ``ttN`` on
    ``10.78.N.0/24`` while it holds slot N.
    """
    return claim_slot("tune-testbed-tt", 50)


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestBed]:
    """Three namespace hosts with sshd and the stand-in ``xl`` (session-wide)."""
    reason = testbed_missing_reason()
    if reason:
        pytest.skip(reason)
    n, lock_fd = _claim_slot()
    bed = TestBed(3, base_dir=f"/tmp/tune-testbed-tt{n}", prefix=f"tt{n}" if n else "tt",
                  subnet=f"10.78.{n}")
    try:
        try:
            bed.up()
        except TestBedError as exc:
            # root without CAP_NET_ADMIN/CAP_SYS_ADMIN (an unprivileged container): skip;
            # any other failure of the test bed is a bug and errors out
            if "Operation not permitted" in str(exc) or "Permission denied" in str(exc):
                pytest.skip(f"{SKIP_REASON} (namespaces not permitted here: {exc})")
            raise
        yield bed
    finally:
        bed.down()
        os.close(lock_fd)


@pytest.fixture
def testbed_hosts(testbed: TestBed) -> Iterator[TestBed]:
    """The session test bed with every host restored (sshd up, link up) around the test."""
    testbed.restore()
    yield testbed
    testbed.restore()


@pytest.fixture
def xen_state(testbed_hosts: TestBed) -> Iterator[str]:
    """An empty shared state directory for the stand-in ``xl``; yields its path."""
    def clear() -> None:
        shutil.rmtree(os.path.join(testbed_hosts.xen_state_dir, "domains"), ignore_errors=True)
    clear()
    yield testbed_hosts.xen_state_dir
    clear()
