"""Test helpers for ``tune`` users (and ``tune``'s own tests): a recording wrapper class and a
manager on the embedded simulated grid.

``RecordingService`` is a real wrapper class: point a WDL method's ``key`` at
``tune.testing.RecordingService`` and every call is recorded with its arguments and its start and
end times, so a test can check what ran, in which order, and what overlapped.  Its behaviour is
steered by the instance's attributes: ``sleep`` (seconds each call lasts, real time) and ``fail``
(a comma-separated list of method names that raise).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from .clock import SimClock


@dataclass
class Call:
    instance: str
    method: str
    args: tuple[Any, ...]
    started: float
    ended: float
    failed: bool = False

    def overlaps(self, other: "Call") -> bool:
        return self.started < other.ended and other.started < self.ended


class CallLog:
    """Every call of every RecordingService, process-wide (reset it between tests)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def of(self, method: Optional[str] = None, instance: Optional[str] = None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if (method is None or c.method == method)
                    and (instance is None or c.instance == instance)]


CALLS = CallLog()


class RecordingService:
    """A wrapper class whose every method call is recorded in :data:`CALLS`."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def _do(self, method: str, *args: Any) -> str:
        attrs = self.ctx.instance.attributes
        t0 = time.monotonic()
        failed = method in {m.strip() for m in attrs.get("fail", "").split(",") if m.strip()}
        try:
            delay = float(attrs.get("sleep", 0) or 0)
            if delay:
                time.sleep(delay)
            if failed:
                raise RuntimeError(f"{self.ctx.srname}.{method} failed on purpose")
            return f"{self.ctx.srname}.{method}"
        finally:
            CALLS.add(Call(self.ctx.srname, method, args, t0, time.monotonic(), failed))

    def start(self, *args: Any) -> str:
        return self._do("start", *args)

    def stop(self, *args: Any) -> str:
        return self._do("stop", *args)

    def configure(self, *args: Any) -> str:
        return self._do("configure", *args)

    def repair(self, *args: Any) -> str:
        return self._do("repair", *args)

    def log(self, *args: Any) -> str:
        return self._do("log", *args)


@contextlib.contextmanager
def sim_manager(path: str, *, speed: float = 100.0, state_dir: Optional[str] = None, deploy: bool = True,
                **options: Any) -> Iterator[Any]:
    """A deployed :class:`tune.Manager` on the simulated grid, shut down afterwards."""
    from .adl.loader import load_application
    from .manager import Manager

    with tempfile.TemporaryDirectory(prefix="tune-test-") as tmp:
        m = Manager(load_application(path), clock=SimClock(speed), state_dir=state_dir or f"{tmp}/state",
                    **options)
        try:
            if deploy:
                m.deploy()
            yield m
        finally:
            m.shutdown()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``predicate()`` until true (real seconds); returns whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
