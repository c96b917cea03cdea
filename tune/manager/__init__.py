"""The manager: deployment, events, reconfiguration."""

from .manager import COALESCE, QUEUE, Manager, TimelineEvent, default_state_dir

__all__ = ["COALESCE", "Manager", "QUEUE", "TimelineEvent", "default_state_dir"]
