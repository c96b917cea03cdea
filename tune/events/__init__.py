"""Events: from ``tune event``, from Python (``ctx.emit``) and from node pipes."""

from .bus import EventBus
from .control import ControlServer, request
from .event import Event, EventError, make_event, parse_pipe_line
from .pipe import PipeRelay, create_pipe_command

__all__ = ["ControlServer", "Event", "EventBus", "EventError", "PipeRelay", "create_pipe_command", "make_event",
           "parse_pipe_line", "request"]
