"""RDL: reconfiguration diagrams (workflows with fork/join/choice) and the engine that runs them."""

from .actions import Action, Assign, Call, Create, Remove, Target, parse_action, parse_actions
from .guards import Guard, evaluate_guard, parse_guard
from .model import Diagram, DiagramNode, NodeKind, Transition
from .rdl import parse_rdl, to_xml
from .validate import diagram_problems

__all__ = ["Action", "Assign", "Call", "Create", "Diagram", "DiagramNode", "Guard", "NodeKind", "Remove",
           "Target", "Transition", "diagram_problems", "evaluate_guard", "parse_action", "parse_actions",
           "parse_guard", "parse_rdl", "to_xml"]
