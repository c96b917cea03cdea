"""pytest fixtures for the namespace test bed (loaded by ``tests/conftest.py``).

- ``testbed`` (session): three hosts ``h1..h3`` on ``10.78.0.0/24`` with prefix ``tt`` (so a
  developer's own ``python -m tune.testbed up`` on ``10.77.0.0/24`` is left alone), built once
  per session and torn down at the end.  Skips with a clear reason when not root or when
  ``sshd`` / ``ip`` are missing.
- ``testbed_hosts`` (function): the same test bed, restored before and after the test (every
  sshd running, every link up), so fault-injection tests do not leak into the next one.
- ``xen_state`` (function): the stand-in ``xl``'s shared state emptied before and after.

Under pytest-xdist each worker gets its own prefix, subnet and directory.
"""

from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest

from .netns import TestBed, testbed_missing_reason


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = "".join(ch for ch in worker if ch.isdigit())
    return int(digits) if digits else 0


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestBed]:
    """Three namespace hosts with sshd and the stand-in ``xl`` (session-wide)."""
    reason = testbed_missing_reason()
    if reason:
        pytest.skip(reason)
    n = _worker_index()
    bed = TestBed(3, base_dir=f"/tmp/tune-testbed-tt{n}", prefix=f"tt{n}" if n else "tt",
                  subnet=f"10.78.{n}")
    bed.up()
    try:
        yield bed
    finally:
        bed.down()


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
