"""The simulated executor: a node of the embedded simulated grid is a folder on this machine.

Commands really run (``tar``, ``mkfifo``, wrappers' programs), confined by convention to the
node's folder: the manager turns node paths into local ones with :meth:`SimExecutor.path`.
This keeps the deployment code path identical for simulated, local and SSH nodes.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional

from .local import LocalExecutor

DEFAULT_ROOT = os.path.join(tempfile.gettempdir(), "tune-simgrid")


class SimExecutor(LocalExecutor):
    """A simulated node: ``host`` names it, ``root`` holds its file system."""

    protocol = "sim"

    def __init__(self, host: str, *, root: Optional[str] = None, **_: object) -> None:
        super().__init__(host)
        self.root = os.path.join(root or DEFAULT_ROOT, host)
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def path(self, node_path: str) -> str:
        rel = os.path.normpath("/" + node_path).lstrip("/")
        return os.path.join(self.root, rel)
