"""Native RDL files (``diagrams/*.xml``) → :class:`tune.diagrams.model.Diagram`; and back."""

from __future__ import annotations

import re
from typing import Optional

from lxml import etree

from ..adl.model import NAME_RE, Source
from ..errors import ExpressionError, ParseError
from ..xmlsafe import local_name, parse_xml, reject_namespaces
from .actions import parse_actions, unparse_action
from .guards import parse_guard
from .model import Diagram, DiagramNode, NodeKind, Transition

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
MAX_NODES = 10_000


def make_transition(source: str, target: str, guard_text: Optional[str], origin: Source) -> Transition:
    guard = None
    if guard_text is not None:
        guard_text = guard_text.strip()
        if guard_text and guard_text != "else":
            try:
                guard = parse_guard(guard_text)
            except ExpressionError as exc:
                raise ExpressionError(exc.message, file=origin.file, line=origin.line) from None
        if not guard_text:
            guard_text = None
    return Transition(source, target, guard_text, guard, origin)


def make_action_node(node_id: str, text: str, origin: Source) -> DiagramNode:
    try:
        actions = parse_actions(text)
    except ExpressionError as exc:
        raise ExpressionError(f"node {node_id}: {exc.message}", file=origin.file, line=origin.line) from None
    return DiagramNode(node_id, NodeKind.ACTION, text.strip(), actions, origin)


def parse_rdl(path: str, data: Optional[bytes] = None, *, name: Optional[str] = None) -> Diagram:
    tree = parse_xml(path, data=data)
    root = tree.getroot()
    if local_name(root) != "diagram":
        raise ParseError(f"expected <diagram>, found <{local_name(root) or root.tag}>", file=path,
                         line=root.sourceline)
    reject_namespaces(tree, path)
    for attr in ("name", "on-failure"):
        value = root.get(attr)
        if value is not None and not NAME_RE.match(value):
            raise ParseError(f"<diagram> {attr}={value[:80]!r} is not a valid name", file=path,
                             line=root.sourceline)
    diagram = Diagram(name=root.get("name") or name or "", on_failure=root.get("on-failure") or None,
                      file=path, source=Source(path, root.sourceline))
    kinds = {k.value for k in NodeKind}
    for el in root:
        if not isinstance(el.tag, str):
            continue
        tag = local_name(el)
        src = Source(path, el.sourceline)
        if tag == "transition":
            a, b = el.get("from"), el.get("to")
            if not a or not b:
                raise ParseError("<transition> needs 'from' and 'to'", file=path, line=el.sourceline)
            guard_text = el.get("guard")
            diagram.transitions.append(make_transition(a, b, guard_text, src))
            continue
        if tag not in kinds:
            raise ParseError(f"unexpected <{tag}> in <diagram> (expected {', '.join(sorted(kinds))}, "
                             "transition)", file=path, line=el.sourceline)
        node_id = el.get("id")
        if not node_id or not _ID_RE.match(node_id):
            raise ParseError(f"<{tag}> needs a valid 'id' (got {str(node_id)[:80]!r})", file=path,
                             line=el.sourceline)
        if node_id in diagram.nodes:
            raise ParseError(f"duplicate node id {node_id!r}", file=path, line=el.sourceline)
        if len(diagram.nodes) >= MAX_NODES:
            raise ParseError(f"more than {MAX_NODES} nodes", file=path, line=el.sourceline)
        kind = NodeKind(tag)
        if kind is NodeKind.ACTION:
            diagram.nodes[node_id] = make_action_node(node_id, el.text or "", src)
        else:
            diagram.nodes[node_id] = DiagramNode(node_id, kind, "", [], src)
    return diagram


def _action_text(node: DiagramNode) -> str:
    """The node's own text when it still says what its actions do, else their canonical form."""
    if node.text:
        try:
            if parse_actions(node.text) == node.actions:
                return node.text
        except ExpressionError:
            pass
    return "; ".join(unparse_action(a) for a in node.actions)


def to_xml(diagram: Diagram) -> str:
    attrs = {"name": diagram.name}
    if diagram.on_failure:
        attrs["on-failure"] = diagram.on_failure
    root = etree.Element("diagram", attrs)
    for n in diagram.nodes.values():
        el = etree.SubElement(root, n.kind.value, id=n.id)
        if n.kind is NodeKind.ACTION:
            el.text = _action_text(n)
    for t in diagram.transitions:
        el = etree.SubElement(root, "transition", {"from": t.source, "to": t.target})
        if t.guard_text is not None:
            el.set("guard", t.guard_text)
    return etree.tostring(root, pretty_print=True, encoding="unicode")
