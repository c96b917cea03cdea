"""tune: a Python re-implementation of TUNe and of the Xen AttiTUNe application.

The curated facade, for experiments from Python::

    import tune
    app = tune.load("examples/xen_attitune/app.xml")      # parse + validate every file
    with tune.Manager(app, clock=tune.SimClock(50)) as m:  # the embedded simulated grid
        m.deploy()                                          # allocate, bind, deploy, run "start"
        m.subscribe(print)                                  # the timeline as it happens
        m.world.set_load("VM1", 95)                         # make VM1 busy...
        m.serve(60)                                         # ... and let the probes react

Heavy or optional parts (the trace simulator, libvirt, paramiko) are imported only when used.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .adl.loader import load_application  # noqa: E402
from .adl.model import Application  # noqa: E402
from .clock import Clock, SimClock  # noqa: E402
from .components import Component, Lifecycle, Node, SystemRepresentation  # noqa: E402
from .diagrams.engine import DiagramRun, Engine  # noqa: E402
from .errors import (ActionError, DriverError, ExecutorError, GroupError, MigrationError, ParseError,  # noqa: E402
                     TuneError, UsageError, ValidationError, ValidationFailed)
from .events.event import Event, make_event  # noqa: E402
from .manager import Manager, TimelineEvent  # noqa: E402
from .remote import executor_for  # noqa: E402
from .virt import driver_for  # noqa: E402


def load(path: str, *, grid: Optional[str] = None) -> Application:
    """Parse and validate an application (``app.xml`` or a Papyrus ``.uml`` model)."""
    return load_application(path, grid=grid)


def deploy(path: str, **manager_options: Any) -> Manager:
    """Load ``path``, deploy it and return the running :class:`Manager` (call ``shutdown()``)."""
    manager = Manager(load(path), **manager_options)
    manager.deploy()
    return manager


__all__ = ["ActionError", "Application", "Clock", "Component", "DiagramRun", "DriverError", "Engine", "Event",
           "ExecutorError", "GroupError", "Lifecycle", "Manager", "MigrationError", "Node", "ParseError",
           "SimClock", "SystemRepresentation", "TimelineEvent", "TuneError", "UsageError", "ValidationError",
           "ValidationFailed", "__version__", "deploy", "driver_for", "executor_for", "load", "load_application",
           "make_event"]
