"""The ``tune`` command line.

Each sub-command lives in its own module ``tune/cli/cmd_NAME.py`` exposing
``register(subparsers) -> argparse.ArgumentParser`` and setting ``func(args, out) -> int`` as the
parser default.  The CLI owns the console: library code only logs.

Exit codes: 0 success, 1 runtime failure, 2 usage or validation error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Optional, Sequence

from ..errors import TuneError
from .output import Output

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its message on one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tune", description=(
        "tune: autonomic management of distributed applications (TUNe) and Xen AttiTUNe."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'tune COMMAND --help' for examples.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"tune {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    common.add_argument("-q", "--quiet", action="store_true", help="only errors")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("cmd_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub, common)
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not when configured)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logger = logging.getLogger("tune")
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    handler.setLevel(level)
    if logger.level == logging.NOTSET or level < logger.level:
        logger.setLevel(level)  # the handler filters; the logger only ever lets more through


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    out = Output(json_mode=getattr(args, "json", False), quiet=getattr(args, "quiet", False))
    try:
        return int(args.func(args, out) or 0)
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except TuneError as exc:
        out.failure(exc)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_RUNTIME


def run() -> None:
    sys.exit(main())
