"""``tune validate FILE``: every static check of an application, all problems at once."""

from __future__ import annotations

import argparse
from typing import Any

from ..adl.graph import deployment_graph
from ..validate import validate_file
from .common import examples
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", parents=[common], help="check an application and all its files",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Parse the application (app.xml or a Papyrus .uml model), its nodefiles, "
                                   "wrappers and diagrams, and run every static check. Exit 0 when valid, "
                                   "2 with every problem listed as file:line: message.",
                       epilog=examples("tune validate examples/xen_attitune/app.xml",
                                       "tune validate examples/xen_attitune/xen_attitune.uml",
                                       "tune validate app.xml --grid grid-ssh.xml --json"))
    p.add_argument("file", help="app.xml or model.uml")
    p.add_argument("--grid", help="a file of host families replacing the application's own")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    app = validate_file(args.file, grid=args.grid)
    g = deployment_graph(app)
    summary: dict[str, Any] = {"valid": True, "application": app.name,
               "components": {c.name: c.initial for c in app.components.values()},
               "families": {f.name: sum(n.slots for n in f.nodes) for f in app.families.values()},
               "bindings": [f"{b.source}->{b.target} {b.from_multiplicity}/{b.to_multiplicity}" for b in app.bindings],
               "diagrams": sorted(app.diagram_graphs), "graph": {"nodes": g.number_of_nodes(),
                                                                  "edges": g.number_of_edges()}}
    out.data(summary)
    out.line(f"{args.file}: valid application {app.name!r}: "
             + ", ".join(f"{n} x{k}" for n, k in summary["components"].items())
             + f"; families {', '.join(f'{k} ({v} slots)' for k, v in summary['families'].items())}"
             + f"; diagrams {', '.join(summary['diagrams'])}")
    return 0
