"""CDL: application descriptions (native XML or Papyrus UML), nodefiles, the deployment graph."""

from .cdl import parse_cdl, parse_grid, to_xml
from .graph import deployment_graph, graph_signature, start_order
from .loader import load_application, read_description
from .model import Application, Binding, ComponentType, DiagramRef, Family, Multiplicity, NodeSpec, Source
from .nodefile import parse_nodefile, parse_nodefile_text

__all__ = ["Application", "Binding", "ComponentType", "DiagramRef", "Family", "Multiplicity", "NodeSpec",
           "Source", "deployment_graph", "graph_signature", "load_application", "parse_cdl", "parse_grid",
           "parse_nodefile", "parse_nodefile_text", "read_description", "start_order", "to_xml"]
