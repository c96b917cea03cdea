"""The Consolidator component's wrapper class: a periodic ``consolidate`` event, and the round.

Its ``start`` sends ``consolidate`` every ``period`` seconds (of the manager's clock); the
``consolidate`` diagram then calls :meth:`Consolidator.consolidate`, which asks the placement
policy (the simulator's, by name) for a plan and carries it out on the dom0 family.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from tune.manager.consolidation import consolidate


class Consolidator:
    #: after a manager crash, ``tune deploy --resume`` calls ``start`` again (the timer lived in
    #: the dead manager's process)
    tune_recovery = "restart"

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.rounds: list[Any] = []

    def start(self, period: str = "120") -> None:
        seconds = float(period)
        self._stop.clear()

        def tick() -> None:
            while not self.ctx.clock.wait(self._stop, seconds):
                self.ctx.emit("consolidate")

        self._thread = threading.Thread(target=tick, name=f"tick-{self.ctx.srname}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def consolidate(self, family: str = "dom0", policy: str = "thr-mmt-0.8") -> None:
        self.rounds.append(consolidate(self.ctx.manager, family, policy))
