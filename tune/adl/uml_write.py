"""Application → Papyrus-style Eclipse UML2 XMI (UML 5.0.0, XMI 20131001): the inverse of
:func:`tune.adl.uml.parse_uml`.

* host families: classes in a package ``grid``; their fields and attributes are ``ownedAttribute``
  with a ``defaultValue`` (``LiteralInteger`` for ``port``, ``LiteralString`` otherwise);
* component types: classes; ``wrapper``, ``legacyFile``, ``host-family``, ``initial`` and the free
  attributes are ``ownedAttribute``\\ s (free attributes are always ``LiteralString`` so their text
  survives exactly; secret ones carry an ``eAnnotations source="tune"`` detail ``secret=true``);
* a binding ``from → to``: a directed association; ``from`` owns the navigable end (typed ``to``,
  with ``to_multiplicity``), the association owns the other end (typed ``from``, with
  ``from_multiplicity``), and ``memberEnd`` lists that ``from``-typed end first, so both reading
  conventions of :mod:`tune.adl.uml` (navigability, and member-end order) agree;
* a diagram: a ``uml:StateMachine`` named after its event, one region, one vertex per node (named
  by the node id; an action node is a ``uml:State`` whose ``entry`` OpaqueBehavior body, language
  ``TUNe``, is the action text), guards as the transitions' ``ownedRule`` constraints;
  ``on-failure`` as an ``ownedAttribute`` of the state machine.

Diagrams come from ``app.diagram_graphs``; a diagram only referenced by file is read with
:func:`tune.diagrams.rdl.parse_rdl` first.  ``xmi:id``\\ s are generated, deterministic and unique.
"""

from __future__ import annotations

import re
from typing import Optional

from lxml import etree

from ..diagrams.actions import unparse_action
from ..diagrams.model import Diagram, NodeKind
from ..errors import ValidationError
from .model import RESERVED_COMPONENT_ATTRIBUTES, Application, ComponentType, Family, Multiplicity

XMI_NS = "http://www.omg.org/spec/XMI/20131001"
UML_NS = "http://www.eclipse.org/uml2/5.0.0/UML"
_PRIMITIVES = "pathmap://UML_LIBRARIES/UMLPrimitiveTypes.library.uml"
_NSMAP = {"xmi": XMI_NS, "uml": UML_NS}
_X = f"{{{XMI_NS}}}"
_SAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
_FAMILY_FIELDS = ("nodefile", "user", "protocol", "dirlocal", "python", "key", "port", "allocation", "driver")


class _Writer:
    def __init__(self) -> None:
        self.count = 0

    def new_id(self, hint: str) -> str:
        self.count += 1
        return f"_{_SAFE_RE.sub('_', hint)[:40]}-{self.count}"

    def el(self, parent: etree._Element, tag: str, xtype: Optional[str] = None, hint: str = "e",
           **attrs: str) -> etree._Element:
        e = etree.SubElement(parent, tag)
        if xtype:
            e.set(f"{_X}type", f"uml:{xtype}")
        e.set(f"{_X}id", self.new_id(hint))
        for k, v in attrs.items():
            e.set(k.replace("__", "-"), v)
        return e

    def attribute(self, cls: etree._Element, name: str, value: str, *, integer: bool = False,
                  secret: bool = False) -> etree._Element:
        hint = f"{cls.get('name')}.{name}"
        a = self.el(cls, "ownedAttribute", hint=hint, name=name)
        if secret:
            ann = self.el(a, "eAnnotations", hint=hint + ".secret", source="tune")
            self.el(ann, "details", hint=hint + ".secretd", key="secret", value="true")
        t = etree.SubElement(a, "type")
        t.set(f"{_X}type", "uml:PrimitiveType")
        t.set("href", f"{_PRIMITIVES}#{'Integer' if integer else 'String'}")
        if integer:
            self.el(a, "defaultValue", "LiteralInteger", hint + ".value", value=value)
        else:
            self.el(a, "defaultValue", "LiteralString", hint + ".value", value=value)
        return a

    def bounds(self, end: etree._Element, m: Multiplicity, hint: str) -> None:
        self.el(end, "lowerValue", "LiteralInteger", hint + ".lower", value=str(m.lower))
        self.el(end, "upperValue", "LiteralUnlimitedNatural", hint + ".upper",
                value="*" if m.upper is None else str(m.upper))


def _family(w: _Writer, grid: etree._Element, fam: Family) -> None:
    cls = w.el(grid, "packagedElement", "Class", f"family.{fam.name}", name=fam.name)
    for key in _FAMILY_FIELDS:
        if key == "port":
            continue
        value = getattr(fam, key)
        if value is not None:
            w.attribute(cls, key, value)
    if fam.port is not None:
        w.attribute(cls, "port", str(fam.port), integer=True)
    for key, value in fam.attributes.items():
        if key in _FAMILY_FIELDS or key == "name":
            raise ValidationError(f"family {fam.name}: attribute {key!r} has the name of a family field",
                                  file=fam.source.file, line=fam.source.line)
        w.attribute(cls, key, value)


def _component(w: _Writer, model: etree._Element, comp: ComponentType) -> etree._Element:
    cls = w.el(model, "packagedElement", "Class", f"component.{comp.name}", name=comp.name)
    if comp.wrapper:
        w.attribute(cls, "wrapper", comp.wrapper)
    w.attribute(cls, "legacyFile", comp.legacy_file or "")
    if comp.host_family:
        w.attribute(cls, "host-family", comp.host_family)
    w.attribute(cls, "initial", str(comp.initial), integer=True)
    for key, value in comp.attributes.items():
        if key in RESERVED_COMPONENT_ATTRIBUTES:
            raise ValidationError(f"component {comp.name}: attribute {key!r} is reserved",
                                  file=comp.source.file, line=comp.source.line)
        w.attribute(cls, key, value, secret=key in comp.secret)
    return cls


def _diagram_of(app: Application, event: str) -> Diagram:
    graph = app.diagram_graphs.get(event)
    if graph is not None:
        return graph
    ref = app.diagrams[event]
    if not ref.file:
        raise ValidationError(f"diagram for event {event!r} has neither a graph nor a file",
                              file=ref.source.file, line=ref.source.line)
    from ..diagrams.rdl import parse_rdl
    path = app.resolve(ref.file)
    assert path is not None
    return parse_rdl(path, name=event)


def _state_machine(w: _Writer, model: etree._Element, event: str, d: Diagram) -> None:
    sm = w.el(model, "packagedElement", "StateMachine", f"sm.{event}", name=event)
    if d.on_failure:
        w.attribute(sm, "on-failure", d.on_failure)
    region = w.el(sm, "region", hint=f"{event}.region", name="Region1")
    ids: dict[str, str] = {}
    for n in d.nodes.values():
        ids[n.id] = w.new_id(f"{event}.{n.id}")
    for t in d.transitions:
        if t.source not in ids or t.target not in ids:
            raise ValidationError(f"diagram {d.name}: transition {t.source}->{t.target} refers to an unknown node",
                                  file=t.origin.file, line=t.origin.line)
        tr = w.el(region, "transition", hint=f"{event}.t", source=ids[t.source], target=ids[t.target])
        if t.guard_text is not None:
            rule = w.el(tr, "ownedRule", hint=f"{event}.guard", name="guard")
            tr.set("guard", rule.get(f"{_X}id"))
            spec = w.el(rule, "specification", "OpaqueExpression", f"{event}.guardspec")
            etree.SubElement(spec, "language").text = "TUNe"
            etree.SubElement(spec, "body").text = t.guard_text
            # Papyrus writes guard= before source/target; keep that order
            for k in ("source", "target"):
                v = tr.attrib.pop(k)
                tr.set(k, v)
    for n in d.nodes.values():
        v = etree.SubElement(region, "subvertex")
        if n.kind is NodeKind.ACTION:
            v.set(f"{_X}type", "uml:State")
        elif n.kind is NodeKind.FINAL:
            v.set(f"{_X}type", "uml:FinalState")
        else:
            v.set(f"{_X}type", "uml:Pseudostate")
        v.set(f"{_X}id", ids[n.id])
        v.set("name", n.id)
        if n.kind in (NodeKind.FORK, NodeKind.JOIN, NodeKind.CHOICE):
            v.set("kind", n.kind.value)
        if n.kind is NodeKind.ACTION:
            text = n.text or "; ".join(unparse_action(a) for a in n.actions)
            entry = w.el(v, "entry", "OpaqueBehavior", f"{event}.{n.id}.entry", name=n.id)
            etree.SubElement(entry, "language").text = "TUNe"
            etree.SubElement(entry, "body").text = text


def to_uml(app: Application) -> str:
    """``app`` as a ``.uml`` document (a string, UTF-8 XML declaration included)."""
    w = _Writer()
    model = etree.Element(f"{{{UML_NS}}}Model", nsmap=_NSMAP)
    model.set(f"{_X}version", "20131001")
    model.set(f"{_X}id", w.new_id("model"))
    model.set("name", app.name)
    imp = w.el(model, "packageImport", hint="import")
    lib = etree.SubElement(imp, "importedPackage")
    lib.set(f"{_X}type", "uml:Model")
    lib.set("href", f"{_PRIMITIVES}#_0")
    if app.families:
        grid = w.el(model, "packagedElement", "Package", "grid", name="grid")
        for fam in app.families.values():
            _family(w, grid, fam)
    classes: dict[str, etree._Element] = {}
    for comp in app.components.values():
        classes[comp.name] = _component(w, model, comp)
    for b in app.bindings:
        if b.source not in classes or b.target not in classes:
            raise ValidationError(f"binding {b.source}-{b.target} names a component that does not exist",
                                  file=b.origin.file, line=b.origin.line)
        assoc_id = w.new_id(f"{b.source}_{b.target}")
        owner = classes[b.source]
        taken = {a.get("name") for a in owner if a.get("name")}
        end_name = b.target[:1].lower() + b.target[1:]
        while end_name in taken:
            end_name += "_"
        nav = w.el(owner, "ownedAttribute", hint=f"{b.source}.{end_name}", name=end_name,
                   type=classes[b.target].get(f"{_X}id"), association=assoc_id)
        w.bounds(nav, b.to_multiplicity, f"{b.source}.{end_name}")
        assoc = etree.SubElement(model, "packagedElement")
        assoc.set(f"{_X}type", "uml:Association")
        assoc.set(f"{_X}id", assoc_id)
        assoc.set("name", f"{b.source}_{b.target}")
        other = w.new_id(f"{b.target}.end")
        assoc.set("memberEnd", f"{other} {nav.get(f'{_X}id')}")
        back = etree.SubElement(assoc, "ownedEnd")
        back.set(f"{_X}id", other)
        back.set("name", b.source[:1].lower() + b.source[1:])
        back.set("type", classes[b.source].get(f"{_X}id") or "")
        back.set("association", assoc_id)
        w.bounds(back, b.from_multiplicity, f"{b.target}.end")
    for event in app.diagrams:
        _state_machine(w, model, event, _diagram_of(app, event))
    for event, graph in app.diagram_graphs.items():
        if event not in app.diagrams:
            _state_machine(w, model, event, graph)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(model, pretty_print=True, encoding="unicode")
