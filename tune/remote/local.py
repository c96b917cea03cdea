"""Run commands on the manager's own machine with :mod:`subprocess`.

The local executor is the reference implementation of :class:`~tune.remote.base.Executor`: the
SSH executor must behave the same (same errors, same quoting), so tests can be parametrized over
both.  Each command gets its own process group (``start_new_session``) so that a timeout or a
closed stream kills the whole pipeline it started, not only the shell.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Iterator, Optional

from ..errors import CommandFailed, CommandTimeout, ExecutorError
from .base import Command, Executor, Result, Shell, Stream, quote_command

log = logging.getLogger(__name__)

__all__ = ["LocalExecutor", "MAX_LINE_BYTES", "bounded_lines"]

#: the longest line a stream yields whole; longer ones are cut (see :func:`bounded_lines`)
MAX_LINE_BYTES = 64 * 1024


def bounded_lines(readline: Callable[[int], bytes], limit: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Decoded lines from ``readline(size)``, never holding more than ``limit + 1`` bytes.

    A line longer than ``limit`` bytes is not buffered whole: its first ``limit + 1`` bytes are
    yielded (so the consumer sees it is too long) and the rest, up to its newline, is skipped.

    >>> import io
    >>> list(bounded_lines(io.BytesIO(b"ab\\n" + b"x" * 10 + b"\\ncd").readline, limit=4))
    ['ab', 'xxxxx', 'cd']
    """
    while True:
        raw = readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            while True:  # skip the rest of the oversize line
                rest = readline(limit + 1)
                if not rest or rest.endswith(b"\n"):
                    break
            yield raw.decode(errors="replace")
            continue
        text = raw.decode(errors="replace")
        if text.endswith("\n"):
            text = text[:-1]
        yield text[:-1] if text.endswith("\r") else text


def _argv(command: Command) -> list[str]:
    """argv lists run without a shell; :class:`Shell` lines run under ``/bin/sh -c``."""
    if isinstance(command, Shell):
        return ["/bin/sh", "-c", command.line]
    if isinstance(command, str):
        raise TypeError("pass commands as argument lists or Shell(...), not plain strings")
    return [str(part) for part in command]


def _kill_group(proc: "subprocess.Popen[Any]") -> None:
    """SIGKILL the process group of ``proc`` (it leads its own session) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not get ignored
        log.warning("process %d did not die after SIGKILL", proc.pid)


class LocalExecutor(Executor):
    """Executor for the local machine.

    ``host`` is only a label used in results and errors (``"localhost"`` by default); ``cwd``
    is the working directory of every command.
    """

    protocol = "local"

    def __init__(self, host: str = "localhost", *, cwd: Optional[str] = None,
                 command_timeout: Optional[float] = None, **_ignored: object) -> None:
        super().__init__(host)
        self.cwd = cwd
        self.command_timeout = command_timeout

    def _env(self, env: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
        if not env:
            return None
        merged = dict(os.environ)
        merged.update({str(k): str(v) for k, v in env.items()})
        return merged

    def run(self, command: Command, *, timeout: Optional[float] = None, check: bool = True,
            input: Optional[str] = None, env: Optional[dict[str, str]] = None) -> Result:
        argv = _argv(command)
        line = quote_command(command)
        timeout = timeout if timeout is not None else self.command_timeout
        log.debug("%s: run %s", self.host, line)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                cwd=self.cwd, env=self._env(env), start_new_session=True)
        except OSError as exc:
            # a missing program is what a shell reports as exit 127: keep the same contract
            if check:
                raise CommandFailed(f"cannot execute: {exc}", host=self.host, command=line,
                                    exit_status=127, stderr=str(exc)) from exc
            return Result(line, 127, "", str(exc), self.host, time.monotonic() - started)
        try:
            stdout, stderr = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            # drain what was produced so the pipes are closed
            try:
                proc.communicate(timeout=1)
            except (subprocess.TimeoutExpired, ValueError):
                pass
            raise CommandTimeout(f"timed out after {timeout:g} s (process group killed)",
                                 host=self.host, command=line) from None
        except BaseException:
            _kill_group(proc)
            raise
        result = Result(line, proc.returncode, stdout, stderr, self.host,
                        time.monotonic() - started)
        if check and result.exit_status != 0:
            raise CommandFailed(
                f"exit status {result.exit_status}: {stderr.strip()[-500:]}".rstrip(": "),
                host=self.host, command=line, exit_status=result.exit_status,
                stdout=stdout, stderr=stderr)
        return result

    def put(self, local_path: str, remote_path: str, *, mode: Optional[int] = None) -> None:
        try:
            shutil.copyfile(local_path, remote_path)
            if mode is not None:
                os.chmod(remote_path, mode)
        except OSError as exc:
            raise ExecutorError(f"cannot copy {local_path} to {remote_path}: {exc}",
                                host=self.host, command=f"put {remote_path}") from exc

    def stream(self, command: Command) -> Stream:
        """Start ``command``; stdout and stderr arrive merged, one line at a time.

        Lines longer than :data:`MAX_LINE_BYTES` are cut, never buffered whole.
        """
        argv = _argv(command)
        line = quote_command(command)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True)
        except OSError as exc:
            raise CommandFailed(f"cannot execute: {exc}", host=self.host, command=line,
                                exit_status=127) from exc
        lock = threading.Lock()

        def lines() -> Iterator[str]:
            assert proc.stdout is not None
            yield from bounded_lines(proc.stdout.readline)
            proc.wait()

        def close() -> None:
            with lock:
                if proc.poll() is None:
                    _kill_group(proc)
                else:
                    proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()

        return Stream(line, self.host, lines, close)

    def alive(self, timeout: float = 5.0) -> bool:
        """The local machine is always there."""
        return True
