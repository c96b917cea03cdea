"""tune: a Python re-implementation of TUNe and of the Xen AttiTUNe application."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .errors import TuneError  # noqa: E402

__all__ = ["TuneError", "__version__"]
