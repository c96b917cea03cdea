"""What the user sees: plain or rich text on a terminal, JSON with ``--json``."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, Sequence, TextIO

from ..errors import GroupError, TuneError, ValidationFailed


class Output:
    """The CLI's one console.  Commands call it; library code never prints."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False,
                 stream: Optional[TextIO] = None, err: Optional[TextIO] = None) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.err = err or sys.stderr

    @property
    def is_terminal(self) -> bool:
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def line(self, text: str = "") -> None:
        """A human line (suppressed by ``--json`` and ``-q``)."""
        if self.json_mode or self.quiet:
            return
        print(text, file=self.stream, flush=True)

    def data(self, obj: Any) -> None:
        """The machine-readable result (printed only with ``--json``)."""
        if self.json_mode:
            print(json.dumps(obj, indent=2, sort_keys=True, default=str), file=self.stream, flush=True)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        if self.json_mode or self.quiet:
            return
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:  # pragma: no cover - rich is a dependency
            Console = None  # type: ignore[assignment,misc]
        if Console is not None and self.is_terminal:
            table = Table(title=title or None)
            for c in columns:
                table.add_column(str(c))
            for r in rows:
                table.add_row(*(str(x) for x in r))
            Console(file=self.stream).print(table)
            return
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c))
                  for i, c in enumerate(columns)]
        if title:
            print(title, file=self.stream)
        print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)).rstrip(), file=self.stream)
        for r in rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip(), file=self.stream)
        self.stream.flush()

    def error(self, text: str) -> None:
        print(f"tune: {text}", file=self.err, flush=True)

    def failure(self, exc: TuneError) -> None:
        if self.json_mode:
            payload: dict[str, Any] = {"error": type(exc).__name__, "message": exc.message,
                                       "exit_code": exc.exit_code}
            for key in ("file", "line", "host", "command"):
                if getattr(exc, key, None) is not None:
                    payload[key] = getattr(exc, key)
            if isinstance(exc, ValidationFailed):
                payload["problems"] = [p.__dict__ for p in exc.problems]
            if isinstance(exc, GroupError):
                payload["hosts"] = {h: (str(r) if isinstance(r, BaseException) else "ok")
                                    for h, r in exc.results.items()}
            print(json.dumps(payload, indent=2, default=str), file=self.stream, flush=True)
        if isinstance(exc, ValidationFailed):
            for p in exc.problems:
                print(str(p), file=self.err)
            print(f"tune: {len(exc.problems)} problem(s)", file=self.err, flush=True)
            return
        if isinstance(exc, GroupError):
            print(f"tune: {exc.message}", file=self.err)
            for host, res in sorted(exc.results.items()):
                status = f"FAILED: {res}" if isinstance(res, BaseException) else "ok"
                print(f"  {host}: {status}", file=self.err)
            self.err.flush()
            return
        print(f"tune: error: {exc}", file=self.err, flush=True)
