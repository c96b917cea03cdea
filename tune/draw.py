"""Pictures of an application with Graphviz: the deployment graph, the reconfiguration diagrams
(UML activity style) and the live System Representation.

>>> from tune.adl.loader import load_application          # doctest: +SKIP
>>> files = draw_application(load_application("app.xml"), "out")  # doctest: +SKIP

Graphviz is optional: the ``graphviz`` Python package builds the DOT text and Graphviz's ``dot``
program lays it out.  Both are imported or looked up only when something is drawn; a missing
piece is a :class:`tune.errors.UsageError` that names it and how to install it.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from typing import Any, Iterable, Mapping, Optional, Sequence

from .adl.model import Application, Binding, ComponentType, Family
from .diagrams.model import Diagram, NodeKind
from .errors import TuneError, UsageError

FORMATS = ("svg", "png", "pdf", "dot")
DEFAULT_FORMATS = ("svg", "png")
FONT = "Helvetica"
MAX_LIST = 8  # nodes listed in a family box, attributes in a component box
MAX_LABEL = 200

#: fill colours of lifecycle states in the SR picture
STATE_COLOURS = {
    "started": "#8fd18f",
    "starting": "#fff2a8",
    "stopping": "#ffd08a",
    "stopped": "#d9d9d9",
    "failed": "#f28b82",
}
NODE_STATE_STYLE = {"up": ("solid", "#f7f7f7"), "down": ("dashed", "#fde8e8"), "off": ("dotted", "#ececec")}


# ---- the optional pieces ----------------------------------------------------------------------
def require_graphviz(render: bool = True) -> Any:
    """The ``graphviz`` module; with ``render``, also check that Graphviz's ``dot`` is installed."""
    try:
        import graphviz
    except ImportError:
        raise UsageError("drawing needs the 'graphviz' Python package: pip install graphviz "
                         "(or pip install 'tune-autonomic[draw]')") from None
    if render and shutil.which("dot") is None:
        raise UsageError("drawing needs Graphviz's 'dot' program, which is not on PATH: install Graphviz "
                         "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)")
    return graphviz


def _esc(text: Any, limit: int = MAX_LABEL) -> str:
    s = str(text)
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    return html.escape(s, quote=True)


def _html(body: str) -> str:
    return f"<{body}>"


class _Ids:
    """Graphviz node ids of our own (``n1``, ``n2``...): names never reach DOT as ids, so a
    ``:`` in a name is not read as a port and nothing needs quoting."""

    def __init__(self) -> None:
        self._ids: dict[Any, str] = {}

    def __call__(self, key: Any) -> str:
        if key not in self._ids:
            self._ids[key] = f"n{len(self._ids) + 1}"
        return self._ids[key]


def _new_graph(name: str, label: str, *, rankdir: str = "TB") -> Any:
    gv = require_graphviz(render=False)
    g = gv.Digraph(name=re.sub(r"[^A-Za-z0-9_]", "_", name) or "g")
    g.attr(rankdir=rankdir, fontname=FONT, fontsize="12", labelloc="t", label=_html(label), pad="0.3",
           nodesep="0.5", ranksep="0.55", bgcolor="white")
    g.attr("node", fontname=FONT, fontsize="11")
    g.attr("edge", fontname=FONT, fontsize="10")
    return g


def _title(kind: str, name: str, detail: str = "") -> str:
    text = f"<B>{_esc(kind)} {_esc(name)}</B>"
    if detail:
        text += f'<BR/><FONT POINT-SIZE="9" COLOR="#555555">{_esc(detail)}</FONT>'
    return text


# ---- the deployment graph ---------------------------------------------------------------------
def _beside(app: Application, comp: ComponentType) -> Optional[str]:
    """The component a family-less component is placed beside (bound with multiplicity 1)."""
    for b in app.bindings:
        if b.source == comp.name and b.to_multiplicity.upper == 1 and b.target != comp.name:
            return b.target
        if b.target == comp.name and b.from_multiplicity.upper == 1 and b.source != comp.name:
            return b.source
    return None


def _component_label(app: Application, comp: ComponentType) -> str:
    rows = [f'<TR><TD BGCOLOR="#dbe8f7"><FONT POINT-SIZE="9">«component»</FONT><BR/><B>{_esc(comp.name)}</B>'
            f"</TD></TR>"]
    attrs = []
    for k, v in list(comp.attributes.items())[:MAX_LIST]:
        shown = "***" if k in comp.secret else v
        attrs.append(f"{_esc(k, 40)} = {_esc(shown, 40)}")
    if len(comp.attributes) > MAX_LIST:
        attrs.append(f"… {len(comp.attributes) - MAX_LIST} more")
    rows.append('<TR><TD ALIGN="LEFT" BALIGN="LEFT">' + ("<BR/>".join(attrs) or " ") + "</TD></TR>")
    info = [f"initial: {comp.initial}"]
    if comp.host_family:
        info.append(f"family: {_esc(comp.host_family)}")
    else:
        beside = _beside(app, comp)
        info.append(f"placed beside {_esc(beside)}" if beside else "no family")
    if comp.wrapper:
        info.append(f"wrapper: {_esc(os.path.basename(comp.wrapper), 60)}")
    if comp.legacy_file:
        info.append(f"legacy: {_esc(os.path.basename(comp.legacy_file), 60)}")
    rows.append('<TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT POINT-SIZE="9">' + "<BR/>".join(info) + "</FONT></TD></TR>")
    return _html('<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="5">' + "".join(rows) + "</TABLE>")


def _family_label(fam: Family) -> str:
    slots = sum(n.slots for n in fam.nodes)
    count = f"{len(fam.nodes)} node{'s' if len(fam.nodes) != 1 else ''}"
    if slots != len(fam.nodes):
        count += f", {slots} slots"
    names = [_esc(n.host, 60) + (f" ×{n.slots}" if n.slots > 1 else "") for n in fam.nodes[:MAX_LIST]]
    if len(fam.nodes) > MAX_LIST:
        names.append(f"… {len(fam.nodes) - MAX_LIST} more")
    info = [f"protocol: {_esc(fam.protocol)}"] + ([f"driver: {_esc(fam.driver)}"] if fam.driver else [])
    return _html(
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="5">'
        f'<TR><TD BGCOLOR="#e3f1dc"><FONT POINT-SIZE="9">«host family»</FONT><BR/><B>{_esc(fam.name)}</B>'
        f"<BR/>{count}</TD></TR>"
        f'<TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT POINT-SIZE="9">{"<BR/>".join(info)}</FONT></TD></TR>'
        + (f'<TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT POINT-SIZE="9">{"<BR/>".join(names)}</FONT></TD></TR>'
           if names else "")
        + "</TABLE>")


def deployment_graph_dot(app: Application) -> Any:
    """The deployment graph as a ``graphviz.Digraph``: component types (attributes, initial
    counts), bindings with a multiplicity at each end, host families (node counts), placements."""
    g = _new_graph(f"{app.name}_deployment", _title("application", app.name, "deployment"), rankdir="TB")
    ids = _Ids()
    for comp in app.components.values():
        g.node(ids(("c", comp.name)), label=_component_label(app, comp), shape="plain")
    with g.subgraph(name="families") as hosts:  # the host layer, at the bottom
        hosts.attr(rank="max")
        for fam in app.families.values():
            hosts.node(ids(("f", fam.name)), label=_family_label(fam), shape="box3d", margin="0.05",
                       style="filled", fillcolor="#f4faf1")
    for b in app.bindings:
        _binding_edge(g, ids, b)
    for comp in app.components.values():
        if comp.host_family:
            target = ids(("f", comp.host_family))
            if comp.host_family not in app.families:  # invalid, but draw what is written
                g.node(target, label=_esc(comp.host_family) + " (unknown family)", shape="box3d", color="red")
            g.edge(ids(("c", comp.name)), target, label=" «deploy»", style="dashed", arrowhead="vee",
                   color="#4a7a3a", fontcolor="#4a7a3a")
    return g


def _binding_edge(g: Any, ids: _Ids, b: Binding) -> None:
    g.edge(ids(("c", b.source)), ids(("c", b.target)), taillabel=_esc(str(b.from_multiplicity)),
           headlabel=_esc(str(b.to_multiplicity)), arrowhead="vee", arrowsize="0.8", labeldistance="1.8",
           labelangle="35", color="#1f4e8c", fontcolor="#1f4e8c", penwidth="1.3", minlen="2",
           tooltip=f"{b.source} → {b.target}: each {b.source} bound to {b.to_multiplicity} {b.target}, "
                   f"each {b.target} to {b.from_multiplicity} {b.source}")


# ---- reconfiguration diagrams (UML activity diagrams) -----------------------------------------
def _action_label(text: str) -> str:
    parts = [p.strip() for p in text.split(";") if p.strip()] or [text]
    return _html("<BR/>".join(_esc(p, 120) for p in parts))


def diagram_dot(diagram: Diagram, event: Optional[str] = None) -> Any:
    """One reconfiguration diagram in UML activity style."""
    name = diagram.name or event or "diagram"
    detail = f"on event {event}" if event else ""
    if diagram.on_failure:
        detail += ("; " if detail else "") + f"on failure: {diagram.on_failure}"
    g = _new_graph(f"diagram_{name}", _title("diagram", name, detail), rankdir="TB")
    ids = _Ids()
    for n in diagram.nodes.values():
        nid = ids(n.id)
        k = n.kind
        if k is NodeKind.INITIAL:
            g.node(nid, label="", shape="circle", style="filled", fillcolor="black", width="0.25", height="0.25",
                   fixedsize="true", tooltip=f"initial {n.id}")
        elif k is NodeKind.FINAL:
            g.node(nid, label="", shape="doublecircle", style="filled", fillcolor="black", color="black",
                   width="0.2", height="0.2", fixedsize="true", tooltip=f"final {n.id}")
        elif k in (NodeKind.FORK, NodeKind.JOIN):
            g.node(nid, label="", shape="box", style="filled", fillcolor="black", width="1.6", height="0.07",
                   fixedsize="true", tooltip=f"{k.value} {n.id}")
        elif k is NodeKind.CHOICE:
            g.node(nid, label="", shape="diamond", style="filled", fillcolor="white", width="0.35",
                   height="0.35", fixedsize="true", tooltip=f"choice {n.id}", xlabel=_esc(n.id, 40))
        else:
            g.node(nid, label=_action_label(n.text or n.id), shape="box", style="rounded,filled",
                   fillcolor="#fff7d6", color="#8a6d00", margin="0.18,0.08", tooltip=f"action {n.id}")
    for t in diagram.transitions:
        if t.source not in diagram.nodes or t.target not in diagram.nodes:
            continue
        attrs: dict[str, str] = {"arrowhead": "vee", "arrowsize": "0.8"}
        if t.guard_text is not None:
            attrs["label"] = _esc(f"[{t.guard_text}]", 120)
            attrs["fontcolor"] = "#7a2e8c"
        g.edge(ids(t.source), ids(t.target), **attrs)
    return g


# ---- the live System Representation -----------------------------------------------------------
def sr_dot(sr: Mapping[str, Any]) -> Any:
    """The System Representation (``SystemRepresentation.to_dict()`` or a saved ``sr.json``):
    instances grouped per node, bindings between them, lifecycle state by colour."""
    if not isinstance(sr, Mapping) or not isinstance(sr.get("instances", []), list):
        raise UsageError("not a System Representation snapshot (expected an object with 'instances')")
    app = str(sr.get("application") or "")
    g = _new_graph(f"{app}_sr", _title("system representation", app, f"version {sr.get('version', '?')}"),
                   rankdir="TB")
    g.attr(compound="true", nodesep="0.3", ranksep="0.6", newrank="true")
    ids = _Ids()
    by_node: dict[Optional[str], list[Mapping[str, Any]]] = {}
    for inst in sr.get("instances", []):
        if isinstance(inst, Mapping) and inst.get("srname"):
            by_node.setdefault(inst.get("node"), []).append(inst)
    nodes = [n for n in sr.get("nodes", []) if isinstance(n, Mapping) and n.get("id")]
    known = {str(n["id"]) for n in nodes}
    for n in nodes:
        _node_cluster(g, ids, n, by_node.get(str(n["id"]), []))
    for node_id, insts in by_node.items():  # instances on nodes the snapshot does not list
        if node_id is None or str(node_id) not in known:
            with g.subgraph(name=f"cluster_{ids(('nc', node_id))}") as c:
                c.attr(label=_html(f"<B>{_esc(node_id) if node_id else 'not placed'}</B>"), style="dashed",
                       color="#999999")
                for inst in insts:
                    _instance_node(c, ids, inst)
    for pair in sr.get("bindings", []):
        if isinstance(pair, Sequence) and len(pair) == 2:
            a, b = (str(x) for x in pair)
            g.edge(ids(("i", a)), ids(("i", b)), arrowhead="vee", arrowsize="0.7", color="#1f4e8c")
    _legend(g, {str(i.get("state", "stopped")) for insts in by_node.values() for i in insts})
    return g


def _node_cluster(g: Any, ids: _Ids, n: Mapping[str, Any], insts: list[Mapping[str, Any]]) -> None:
    state = str(n.get("state", "up"))
    style, fill = NODE_STATE_STYLE.get(state, ("solid", "#f7f7f7"))
    where = str(n.get("address") or n.get("host") or "")
    detail = [f"family {n.get('family', '?')}", f"{state}"]
    if where and where != n.get("id"):
        detail.insert(0, where)
    used = sum(1 for i in insts if i.get("uses_slot", True))
    detail.append(f"{used}/{n.get('slots', 1)} slots")
    with g.subgraph(name=f"cluster_{ids(('n', n['id']))}") as c:
        c.attr(label=_html(f"<B>{_esc(n['id'])}</B><BR/><FONT POINT-SIZE=\"9\">{_esc(' · '.join(detail))}</FONT>"),
               style=f"{style},filled,rounded", fillcolor=fill, color="#666666")
        if not insts:  # an empty node still shows
            c.node(ids(("empty", n["id"])), label="(empty)", shape="plaintext", fontcolor="#888888")
        for inst in insts:
            _instance_node(c, ids, inst)


def _instance_node(g: Any, ids: _Ids, inst: Mapping[str, Any]) -> None:
    state = str(inst.get("state", "stopped"))
    label = f"<B>{_esc(inst['srname'])}</B><BR/><FONT POINT-SIZE=\"9\">{_esc(state)}</FONT>"
    if inst.get("error"):
        label += f"<BR/><FONT POINT-SIZE=\"8\" COLOR=\"#a00000\">{_esc(inst['error'], 60)}</FONT>"
    g.node(ids(("i", str(inst["srname"]))), label=_html(label), shape="box", style="rounded,filled",
           fillcolor=STATE_COLOURS.get(state, "white"), color="#444444",
           tooltip=f"{inst.get('type', '')} {inst['srname']}")


def _legend(g: Any, states: Iterable[str]) -> None:
    present = set(states)
    shown = list(STATE_COLOURS) + sorted(s for s in present if s not in STATE_COLOURS)
    cells = "".join(f'<TD BGCOLOR="{STATE_COLOURS.get(s, "white")}">{_esc(s)}</TD>' for s in shown)
    g.node("legend", label=_html(f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="4">'
                                 f'<TR><TD BORDER="0"><FONT POINT-SIZE="9">state</FONT></TD>{cells}</TR></TABLE>'),
           shape="plain")


# ---- rendering --------------------------------------------------------------------------------
def safe_stem(name: str) -> str:
    """A file name part from an event name: letters, digits, ``-``, ``_``, ``.`` only."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "unnamed"
    return stem[:100]


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise UsageError(f"unknown picture format {', '.join(bad) or '(none)'} (choose from {', '.join(FORMATS)})")
    return out


def render(graph: Any, out_dir: str, stem: str, formats: Sequence[str] = DEFAULT_FORMATS,
           timeout: float = 120.0) -> list[str]:
    """Lay ``graph`` out with ``dot`` and write ``out_dir/stem.FORMAT`` for each format."""
    formats = check_formats(formats)
    require_graphviz(render=any(f != "dot" for f in formats))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for fmt in formats:
        path = os.path.join(out_dir, f"{stem}.{fmt}")
        if fmt == "dot":
            data = graph.source.encode("utf-8")
        else:
            data = _dot(graph.source, fmt, f"{stem}.{fmt}", timeout)
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        written.append(path)
    return written


def _dot(source: str, fmt: str, what: str, timeout: float) -> bytes:
    """Run ``dot -TFMT`` on ``source`` (no shell; bounded in time)."""
    dot = shutil.which("dot")
    if dot is None:
        require_graphviz(render=True)  # raises the clear error
        raise UsageError("Graphviz's 'dot' program is not on PATH")  # pragma: no cover
    try:
        proc = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TuneError(f"dot took more than {timeout:g} s to draw {what}") from None
    except OSError as exc:
        raise TuneError(f"cannot run dot to draw {what}: {exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TuneError(f"dot could not draw {what}: {why[-1] if why else f'exit status {proc.returncode}'}")
    return proc.stdout


def draw_application(app: Application, out_dir: str, formats: Sequence[str] = DEFAULT_FORMATS) -> list[str]:
    """Write ``deployment.*`` and one ``diagram-<event>.*`` per reconfiguration diagram."""
    written = render(deployment_graph_dot(app), out_dir, "deployment", formats)
    for event in sorted(app.diagram_graphs):
        written += render(diagram_dot(app.diagram_graphs[event], event), out_dir, f"diagram-{safe_stem(event)}",
                          formats)
    return written


def draw_sr(sr: Mapping[str, Any], out_dir: str, formats: Sequence[str] = DEFAULT_FORMATS,
            stem: str = "sr") -> list[str]:
    """Write ``sr.*``: the live System Representation."""
    return render(sr_dot(sr), out_dir, stem, formats)
