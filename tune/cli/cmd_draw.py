"""``tune draw``: pictures of an application (deployment graph, diagrams) or of a live SR."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import ManagerError, UsageError
from .common import add_manager_options, examples, find_state_dir
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser("draw", parents=[common], help="draw the deployment graph, the diagrams or the live SR",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Draw an application with Graphviz: its deployment graph (component types "
                                   "with attributes and initial counts, bindings with UML multiplicities, host "
                                   "families, placements) as deployment.svg/png and every reconfiguration "
                                   "diagram as a UML activity diagram, diagram-EVENT.svg/png. With --sr, draw "
                                   "the System Representation of a running manager (or of a saved sr.json): "
                                   "instances per node, bindings, lifecycle states, as sr.svg/png.",
                       epilog=examples("tune draw examples/xen_attitune/app.xml -o pictures",
                                       "tune draw examples/xen_attitune/xen_attitune.uml -o pictures --format svg",
                                       "tune draw --sr -o pictures --app xen-attitune",
                                       "tune draw --sr --sr-file /var/lib/tune/xen-attitune/sr.json -o pictures"))
    p.add_argument("file", nargs="?", help="app.xml or model.uml (not with --sr)")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="folder for the pictures (created)")
    p.add_argument("--format", default="svg,png", metavar="LIST",
                   help="comma-separated picture formats: svg, png, pdf, dot (default: svg,png)")
    p.add_argument("--sr", action="store_true", help="draw the live System Representation instead")
    p.add_argument("--sr-file", metavar="FILE", help="with --sr: a saved snapshot (STATE_DIR/sr.json) "
                                                     "instead of asking the running manager")
    add_manager_options(p)
    p.set_defaults(func=run)
    return p


def _load_sr(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    if args.sr_file:
        try:
            with open(args.sr_file, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise UsageError(f"cannot read SR snapshot: {exc.strerror or exc}", file=args.sr_file) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"not a JSON SR snapshot: {exc}", file=args.sr_file) from None
        return data, args.sr_file
    from ..events.control import request

    state_dir = find_state_dir(args)
    reply = request(state_dir, {"op": "sr"})
    if not isinstance(reply, dict) or not isinstance(reply.get("sr"), dict):
        raise ManagerError(f"the manager in {state_dir} sent no SR")
    return reply["sr"], state_dir


def run(args: argparse.Namespace, out: Output) -> int:
    from ..draw import check_formats, draw_application, draw_sr

    formats = check_formats(args.format.split(","))
    if args.sr:
        if args.file:
            raise UsageError("give either an application file or --sr, not both")
        sr, origin = _load_sr(args)
        files = draw_sr(sr, args.output, formats)
        summary = {"sr": origin, "application": sr.get("application"), "files": files,
                   "instances": len(sr.get("instances", [])), "nodes": len(sr.get("nodes", []))}
    else:
        if args.sr_file:
            raise UsageError("--sr-file goes with --sr")
        if not args.file:
            raise UsageError("give an application file (app.xml or model.uml), or --sr")
        from ..adl.loader import load_application

        app = load_application(args.file)
        files = draw_application(app, args.output, formats)
        summary = {"application": app.name, "files": files, "diagrams": sorted(app.diagram_graphs)}
    out.data(summary)
    for f in files:
        out.line(f"wrote {os.path.relpath(f) if not os.path.isabs(args.output) else f}")
    return 0
