"""A simulated world that outlives the manager: saved as JSON on every change.

The simulated hypervisor lives in the manager's process, so a manager killed with SIGKILL
would take "reality" with it.  :func:`persist` makes a :class:`tune.virt.sim.SimWorld`
behave like real hosts do: its hosts and domains are written to a JSON file (atomically,
``os.replace``) whenever the world's lock is released after a change, and read back from that
file when a manager with the same state directory starts again.

Every change the ``sim`` driver makes is made under ``world.lock``; :class:`SavingLock`
replaces that lock and saves when its outermost holder releases it (only when the state
differs from what was last saved).  A migration in flight when the manager died is found
rolled back: the domain stays on its source, as ``xl`` resumes a domain whose migration broke.
The in-memory world stays the default; the manager persists it only when it journals.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict
from typing import Any, Optional

from .sim import SimDomain, SimHost, SimWorld

STATE_NAME = "simworld.json"


class SavingLock:
    """A re-entrant lock that saves the world when its outermost holder releases it."""

    def __init__(self, world: SimWorld, path: str) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()
        self.world = world
        self.path = path
        self.saved: Optional[str] = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            self._local.depth = getattr(self._local, "depth", 0) + 1
        return ok

    def release(self) -> None:
        depth = getattr(self._local, "depth", 1) - 1
        self._local.depth = depth
        try:
            if depth == 0:
                self.save()
        finally:
            self._lock.release()

    def __enter__(self) -> "SavingLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def save(self) -> None:
        text = dump(self.world)
        if text == self.saved:
            return
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".simworld-")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, self.path)
        self.saved = text
        from ..manager.journal import crash_point
        crash_point("sim.save")


def dump(world: SimWorld) -> str:
    return json.dumps({"hosts": {n: asdict(h) for n, h in sorted(world.hosts.items())},
                       "domains": {n: asdict(d) for n, d in sorted(world.domains.items())}}, sort_keys=True)


def load(world: SimWorld, data: dict[str, Any]) -> list[str]:
    """Put ``data``'s hosts and domains into ``world``; returns the migrations found rolled back."""
    rolled = []
    for name, h in data.get("hosts", {}).items():
        world.hosts[name] = SimHost(**h)
    for name, d in data.get("domains", {}).items():
        dom = SimDomain(**d)
        if dom.migrating_to is not None:
            rolled.append(f"{name}: migration {dom.host} -> {dom.migrating_to} broken by the crash; "
                          f"the domain stays on {dom.host}")
            dom.migrating_to = None
        world.domains[name] = dom
    return rolled


def persist(world: SimWorld, state_dir: str, *, fresh: bool = False) -> list[str]:
    """Make ``world`` persistent in ``state_dir`` (loading what a previous manager saved, unless
    ``fresh``: then the saved world is replaced by this one).

    Returns the in-flight migrations that were rolled back.  Idempotent.
    """
    if isinstance(world.lock, SavingLock):
        return []
    path = os.path.join(state_dir, STATE_NAME)
    rolled: list[str] = []
    lock = SavingLock(world, path)
    with world.lock:
        if os.path.exists(path) and not fresh:
            with open(path) as fh:
                rolled = load(world, json.load(fh))
        world.lock = lock  # type: ignore[assignment]
    with lock:  # the first save (also records the rolled-back migrations)
        pass
    return rolled


__all__ = ["STATE_NAME", "SavingLock", "dump", "load", "persist"]
