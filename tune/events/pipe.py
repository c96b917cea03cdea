"""Node pipe relay: lines ``NAME;ARG`` written into ``tune.pipe`` on a node become events.

The relay reads the FIFO through the node's executor with ``cat`` on the FIFO opened
read-write (so it never sees end-of-file when a writer closes), over the connection the
manager already holds: no port is opened on the node.  Malformed lines are counted and
dropped, never fatal.  Lines are read bounded (the executors' streams cut a line past 64 KiB
instead of buffering it whole): a line longer than :data:`MAX_LINE` is dropped and counted in
``oversize_lines``, so a writer that never sends a newline cannot exhaust the manager's memory.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from ..remote.base import Executor, Shell, Stream, quote_command
from .event import MAX_LINE, Event, EventError, parse_pipe_line

log = logging.getLogger(__name__)

PIPE_NAME = "tune.pipe"


def create_pipe_command(pipe_path: str) -> Shell:
    """Create the FIFO (0620: the node's programs of the same group may write) if missing."""
    q = quote_command([pipe_path])
    return Shell(f"[ -p {q} ] || {{ rm -f {q} && mkfifo -m 0620 {q}; }}")


class PipeRelay:
    """Reads one node's pipe in a thread and posts each good line to ``post``."""

    def __init__(self, executor: Executor, pipe_path: str, post: Callable[[Event], object],
                 on_bad_line: Optional[Callable[[str, Exception], None]] = None) -> None:
        self.executor = executor
        self.pipe_path = pipe_path
        self.post = post
        self.on_bad_line = on_bad_line
        self._stream: Optional[Stream] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self.lines = 0
        self.bad_lines = 0
        self.oversize_lines = 0

    def start(self) -> None:
        q = quote_command([self.pipe_path])
        self._stream = self.executor.stream(Shell(f"exec cat 0<> {q}"))
        self._thread = threading.Thread(target=self._run, name=f"tune-pipe-{self.executor.host}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._stream is not None
        source = f"pipe:{self.executor.host}"
        try:
            for line in self._stream.lines():
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                self.lines += 1
                try:
                    self.post(parse_pipe_line(line, source))
                except EventError as exc:
                    self.bad_lines += 1
                    if len(line) > MAX_LINE:
                        self.oversize_lines += 1
                    if self.bad_lines <= 10 or self.bad_lines % 1000 == 0:  # a flood does not flood the log
                        log.warning("%s: dropped bad event line (%d so far): %s", source, self.bad_lines, exc)
                    if self.on_bad_line:
                        self.on_bad_line(line[:MAX_LINE], exc)
        except Exception as exc:  # noqa: BLE001 - a lost node ends its relay, not the manager
            if not self._stop.is_set():
                log.warning("%s: relay stopped: %s", source, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()
        if self._thread is not None:
            self._thread.join(5)
