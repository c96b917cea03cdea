"""The component model (Fractal-style) and the System Representation."""

from .component import TRANSITIONS, Component, Lifecycle, LifecycleError, Node
from .sr import SystemRepresentation, UnknownInstance

__all__ = ["Component", "Lifecycle", "LifecycleError", "Node", "SystemRepresentation", "TRANSITIONS",
           "UnknownInstance"]
