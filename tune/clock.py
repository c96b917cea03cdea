"""Time for the manager, the probes and the simulated grid: real, or simulated and faster.

Simulated time runs ``speed`` times faster than real time, so a five-minute scenario plays
in fifteen seconds at speed 20, while every component still sees consistent durations.
"""

from __future__ import annotations

import threading
import time
from typing import Optional


class Clock:
    """Real time."""

    speed: float = 1.0
    simulated: bool = False

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def restart(self) -> None:
        """Start counting from zero now (a run's time starts with its deployment, not its set-up)."""
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Seconds since the clock started."""
        return time.monotonic() - self._t0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: Optional[float]) -> bool:
        """Wait for ``event`` at most ``seconds`` of this clock's time."""
        return event.wait(None if seconds is None else max(0.0, seconds))

    def real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of this clock last."""
        return seconds

    def describe(self) -> str:
        return "real time"


class SimClock(Clock):
    """Simulated time, ``speed`` times faster than real time."""

    simulated = True

    def __init__(self, speed: float = 20.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        super().__init__()
        self.speed = float(speed)

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait(self, event: threading.Event, seconds: Optional[float]) -> bool:
        return event.wait(None if seconds is None else max(0.0, seconds / self.speed))

    def real(self, seconds: float) -> float:
        return seconds / self.speed

    def describe(self) -> str:
        return f"simulated time, {self.speed:g}x faster than real time"
