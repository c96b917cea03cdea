"""Load a whole application: the CDL (or UML) file, its nodefiles, wrappers and diagrams.

:func:`load_application` parses every file the application names and collects *all*
problems before raising one :class:`tune.errors.ValidationFailed`, so a user fixes a file once,
not once per error.
"""

from __future__ import annotations

import os
from typing import Optional

from ..errors import NodefileError, ParseError, Problem, TuneError, ValidationFailed
from .cdl import parse_cdl, parse_grid
from .model import Application, Family
from .nodefile import parse_nodefile


def _problem(exc: TuneError) -> Problem:
    return Problem(exc.message, exc.file, exc.line)


def read_description(path: str) -> Application:
    """Parse the main file only (``.uml`` → Papyrus XMI, anything else → native CDL)."""
    if not os.path.exists(path):
        raise ParseError("no such file", file=path)
    if path.endswith(".uml") or path.endswith(".xmi"):
        from .uml import parse_uml
        return parse_uml(path)
    return parse_cdl(path)


def load_family_nodes(app: Application, family: Family, base_dir: Optional[str] = None) -> None:
    """Fill ``family.nodes`` from its nodefile or inventory."""
    base = base_dir or app.base_dir
    inventory = family.attributes.get("inventory")
    if inventory:
        from .inventory import parse_inventory  # written with the inventories feature
        path = inventory if os.path.isabs(inventory) else os.path.join(base, inventory)
        family.nodes = parse_inventory(path, group=family.attributes.get("group"))
        return
    if family.nodefile:
        path = family.nodefile if os.path.isabs(family.nodefile) else os.path.join(base, family.nodefile)
        family.nodes = parse_nodefile(path)


def load_application(path: str, *, grid: Optional[str] = None, resolve_keys: bool = True) -> Application:
    """Parse ``path`` and everything it refers to; raise :class:`ValidationFailed` listing all problems.

    ``grid`` names a file of families that replace the application's families of the same name
    (to run the same application on the simulated grid or on real hosts).
    """
    from ..diagrams.rdl import parse_rdl
    from ..wdl.parser import parse_wdl

    app = read_description(path)
    problems: list[Problem] = []
    families_base = {name: app.base_dir for name in app.families}
    if grid:
        grid_families = parse_grid(grid)
        for name, fam in grid_families.items():
            app.families[name] = fam
            families_base[name] = os.path.dirname(os.path.abspath(grid))
    for fam in app.families.values():
        try:
            load_family_nodes(app, fam, families_base.get(fam.name))
        except (NodefileError, ParseError) as exc:
            problems.append(_problem(exc))
    for comp in app.components.values():
        if not comp.wrapper:
            continue
        wpath = app.resolve(comp.wrapper)
        try:
            app.wrappers[comp.name] = parse_wdl(wpath or "")
        except TuneError as exc:
            problems.append(_problem(exc))
    for event, ref in app.diagrams.items():
        if event in app.diagram_graphs:  # UML: already parsed from the model
            continue
        dpath = app.resolve(ref.file)
        try:
            app.diagram_graphs[event] = parse_rdl(dpath or "", name=event)
        except TuneError as exc:
            problems.append(_problem(exc))
    from ..validate import application_problems
    problems.extend(application_problems(app, resolve_keys=resolve_keys))
    if problems:
        raise ValidationFailed(problems)
    return app
