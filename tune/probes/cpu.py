"""The CPU probe (Xen AttiTUNe's): watches one VM's CPU and raises ``overload VM``.

Every ``period`` seconds (of the manager's clock) it reads the VM's CPU from the hypervisor
driver of the node the VM runs on *now* (it follows migrations).  It fires after ``samples``
consecutive readings at or above ``threshold`` and is then disarmed until a reading falls
below ``threshold - hysteresis``: one load episode gives one event, not a storm.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from ..errors import DomainNotFound, TuneError

log = logging.getLogger(__name__)


class ProbeLogic:
    """The decision part, separate from threads and drivers so it is easy to test exactly.

    >>> p = ProbeLogic(threshold=80, hysteresis=10, samples=2)
    >>> [p.feed(x) for x in (85, 90, 95, 75, 65, 81, 82)]
    [False, True, False, False, False, False, True]
    """

    def __init__(self, threshold: float, hysteresis: float = 10.0, samples: int = 3) -> None:
        if samples < 1:
            raise ValueError("samples must be at least 1")
        self.threshold = float(threshold)
        self.hysteresis = float(hysteresis)
        self.samples = int(samples)
        self.above = 0
        self.armed = True

    def feed(self, value: float) -> bool:
        """One reading; True when the probe fires."""
        if not self.armed:
            if value < self.threshold - self.hysteresis:
                self.armed = True
                self.above = 0
            return False
        if value >= self.threshold:
            self.above += 1
            if self.above >= self.samples:
                self.armed = False
                self.above = 0
                return True
        else:
            self.above = 0
        return False


class CPUProbe:
    """Wrapper class of the Probe component (``tune.probes.cpu.CPUProbe``)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.vm: Optional[str] = None
        self.logic: Optional[ProbeLogic] = None
        self.period = 5.0
        self.event = "overload"
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.readings: list[tuple[float, float]] = []

    def start(self, vm: str, threshold: str = "90", hysteresis: str = "10", samples: str = "3",
              period: str = "5", event: str = "overload") -> None:
        if isinstance(vm, list):
            raise TuneError(f"{self.ctx.srname}: a probe watches one VM, it is bound to {len(vm)}")
        self.vm = str(vm)
        self.logic = ProbeLogic(float(threshold), float(hysteresis), int(samples))
        self.period = float(period)
        self.event = event
        if self.period <= 0:
            raise TuneError(f"{self.ctx.srname}: period must be positive")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"probe-{self.ctx.srname}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def follow(self, node: str) -> None:
        """After its VM migrated: move beside it (the probe stays disarmed until the load falls)."""
        if node and node != self.ctx.instance.node:
            self.ctx.relocate(self.ctx.srname, node)

    def read(self) -> Optional[float]:
        """The VM's CPU now, from the driver of the node it runs on (None: not running)."""
        assert self.vm is not None
        try:
            vm = self.ctx.sr.instance(self.vm)
            if vm.node is None:
                return None
            value = self.ctx.driver_of(vm.node).cpu_percent(self.vm)
        except DomainNotFound:
            return None
        return None if value is None else float(value)

    def _loop(self) -> None:
        clock = self.ctx.clock
        while not clock.wait(self._stop, self.period):
            try:
                value = self.read()
            except TuneError as exc:
                log.warning("%s: cannot read %s: %s", self.ctx.srname, self.vm, exc)
                continue
            if value is None or self.logic is None:
                continue
            self.readings.append((clock.now(), value))
            fired = self.logic.feed(value)
            self.ctx.notify("probe.reading", vm=self.vm, cpu=round(value, 1), fired=fired)
            if fired:
                self.ctx.emit(self.event, self.vm)
