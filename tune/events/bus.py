"""The manager's event queue: bounded, counted, never blocking the producers.

Every event that arrives is counted exactly once as handled, coalesced, queued then handled,
dropped (queue full or bad), or unknown (no diagram).  A flood never blocks the manager: past
``maxsize`` events are dropped with a count.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from typing import Callable, Optional

from .event import Event

log = logging.getLogger(__name__)


class EventBus:
    """A bounded queue and one dispatcher thread calling ``handler(event)`` in order."""

    def __init__(self, handler: Callable[[Event], None], *, maxsize: int = 10_000, name: str = "tune-events") -> None:
        self.handler = handler
        self.queue: "queue.Queue[Optional[Event]]" = queue.Queue(maxsize=maxsize)
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closed = False  # stopped for good: a late emit() must not bring the dispatcher back
        self._name = name
        self.idle = threading.Event()
        self.idle.set()

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counters[what] += n

    def start(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def post(self, event: Event) -> bool:
        """Queue ``event``; False (and counted as dropped) when the queue is full or closed."""
        self.count("received")
        if self._closed:
            self.count("dropped_closed")
            log.info("event %s after the manager stopped (dropped)", event)
            return False
        try:
            self.idle.clear()
            self.queue.put_nowait(event)
            return True
        except queue.Full:
            self.count("dropped_overflow")
            n = self.counters["dropped_overflow"]
            if n <= 10 or n % 1000 == 0:  # a flood does not flood the log
                log.warning("event queue full: dropped %s (%d dropped so far)", event, n)
            return False

    def _loop(self) -> None:
        while True:
            event = self.queue.get()
            if event is None:
                self.queue.task_done()
                break
            try:
                self.handler(event)
            except Exception:  # noqa: BLE001 - the dispatcher must survive any handler bug
                self.count("handler_errors")
                log.exception("event handler failed on %s", event)
            finally:
                self.queue.task_done()
                if self.queue.unfinished_tasks == 0:
                    self.idle.set()

    def drain(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued event was handed to the handler."""
        return self.idle.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._closed = True
        if self._thread is not None:
            try:
                self.queue.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
            self._thread = None
