"""Slots on this machine for test beds that must not collide (pytest sessions, benchmarks).

Whoever builds a test bed first takes a slot: it holds an ``flock`` on ``/tmp/NAME<i>.lock`` for
its lifetime and builds its hosts with a prefix and subnet derived from ``i``.  A second session
or benchmark then takes the next free slot, so one run's clean-up of leftovers (``TestBed.up``
first removes what a crashed run of the same prefix left) never removes another run's hosts.
"""

from __future__ import annotations

import fcntl
import os


def claim_slot(name: str, limit: int) -> tuple[int, int]:
    """The first free slot ``i`` of ``/tmp/{name}{i}.lock``: ``(i, fd)``; keep ``fd`` open."""
    for index in range(limit):
        fd = os.open(f"/tmp/{name}{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return index, fd
    raise RuntimeError(f"no free test-bed slot /tmp/{name}N.lock ({limit} runs at once?)")
