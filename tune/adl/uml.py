"""The UML form of an application: Eclipse UML2 XMI (``.uml``, as Papyrus writes it) → Application.

Accepted files
    ``xmi:version="20131001"`` with ``xmlns:xmi="http://www.omg.org/spec/XMI/20131001"`` and
    ``xmlns:uml="http://www.eclipse.org/uml2/5.0.0/UML"`` (Papyrus today), and the older Eclipse
    namespaces ``.../uml2/4.0.0/UML``, ``3.0.0``, ``2.1.0`` (and ``2.0.0``) with the XMI namespaces
    ``http://schema.omg.org/spec/XMI/2.1`` or ``http://www.omg.org/XMI``; the OMG UML namespaces
    (``http://www.omg.org/spec/UML/2009...``, ``2011...``, ``2013...``, ``2016...``) are read too.
    The root is ``uml:Model`` (or ``uml:Package``), or ``xmi:XMI`` holding exactly one of them
    beside profile applications and stereotype instances, which are ignored.  Every file goes
    through :func:`tune.xmlsafe.parse_xml` (no DTD, no entities, no network).

What is read (everything else, diagrams' notation, profiles, comments, is ignored)
    * ``packagedElement xmi:type="uml:Class"`` (or ``uml:Component``) whose nearest enclosing
      package is named ``grid``: a host :class:`~tune.adl.model.Family`.  Its ``ownedAttribute``
      named ``nodefile``, ``user``, ``protocol``, ``dirlocal``, ``python``, ``key``, ``port``,
      ``allocation``, ``driver`` fill the family's fields, the others ``Family.attributes``.
    * Every other class: a :class:`~tune.adl.model.ComponentType`.  ``ownedAttribute`` named
      ``wrapper``, ``legacyFile``, ``host-family``, ``initial`` fill its fields, the others are free
      attributes (``name`` is reserved).  An attribute's value is its ``defaultValue``:
      ``uml:LiteralString`` (missing ``value`` = ``""``), ``uml:LiteralInteger`` (missing = ``0``),
      ``uml:LiteralBoolean`` (missing = ``false``), ``uml:LiteralUnlimitedNatural`` (``*`` = ``-1``,
      missing = ``0``), ``uml:LiteralReal`` (missing = ``0.0``), ``uml:LiteralNull`` (``""``),
      ``uml:OpaqueExpression`` (its ``body``).  No ``defaultValue`` = ``""``.  An attribute is
      secret (never logged) when it carries ``<eAnnotations source="tune"><details key="secret"
      value="true"/></eAnnotations>``.  Attributes that are association ends (``association=``
      set, or listed as a ``memberEnd``) are not free attributes.
    * ``uml:Association`` with two ``memberEnd`` (an attribute of two ids, or ``<memberEnd
      xmi:idref=.../>`` children; without any, its ``ownedEnd`` children and the class attributes
      naming it with ``association=``): a :class:`~tune.adl.model.Binding`.  An end's multiplicity
      comes from its ``lowerValue`` / ``upperValue`` (a missing one is ``1``, as in UML;
      ``LiteralUnlimitedNatural`` ``*`` is unbounded; a ``LiteralInteger`` without ``value`` is 0).

      **Which class is ``from``** (the user, started after ``to``): if exactly one end is
      *navigable* - owned by a class (``ownedAttribute`` with ``association=``, what Papyrus writes
      for a directed association ``Probe → VM``: ``Probe`` owns an attribute ``vm : VM``) or listed
      in the association's ``navigableOwnedEnd`` - that end's type is ``to`` and the other end's
      type is ``from``.  Otherwise (both or neither navigable) the type of the *first*
      ``memberEnd`` is ``from`` and the second's is ``to``.  As written in UML, the multiplicity
      at the ``to`` end is ``to_multiplicity`` (how many ``to`` instances each ``from`` instance is
      bound to) and the one at the ``from`` end is ``from_multiplicity``.  :func:`to_uml` writes
      both conventions at once (``from`` owns the navigable end, and ``memberEnd`` lists the
      ``from`` end first).
    * ``uml:StateMachine`` anywhere (``packagedElement``, a class's ``ownedBehavior`` ...): the
      reconfiguration diagram for the event named like it (``Application.diagrams[name]`` is a
      :class:`DiagramRef` without file, ``Application.diagram_graphs[name]`` the
      :class:`~tune.diagrams.model.Diagram`).  It has one ``region``.  Its ``subvertex``:

      - ``uml:Pseudostate`` ``kind`` ``initial`` (the default), ``fork``, ``join``, ``choice`` → the
        same node kind; ``junction`` → a choice in which the one unguarded outgoing transition
        (a merge's way on) gets the guard ``else``; ``terminate`` → a final node; other kinds
        (history, entry/exit points) are refused.
      - ``uml:FinalState`` → final node.
      - ``uml:State`` → an action node; the action text is the ``body`` of its ``entry``
        behaviour (``uml:OpaqueBehavior``; with several bodies, the one whose ``language`` is
        ``TUNe`` or ``RDL``, else the first), else of its ``doActivity``, else the state's name.
      - A composite ``uml:State`` (with ``region`` children) is a fork/join: it becomes a fork
        node ``<id>.fork`` whose branches are each region's chain (the region's initial
        pseudostate is replaced by the fork, its ``FinalState``\\ s by the join), then a join node
        ``<id>.join``.  Transitions into the composite go to the fork (or to an action node
        ``<id>`` holding the composite's ``entry``, which then goes to the fork), transitions out
        of it leave from the join.  A composite's name is only a label.
      - ``transition`` ``source``/``target``; its guard is the constraint named by ``guard=``
        (usually the transition's own ``ownedRule``) or a ``<guard>`` child, whose
        ``specification`` is an ``uml:OpaqueExpression`` (``body`` text) or a literal (its
        ``value``).  Guards and actions are parsed by :mod:`tune.diagrams` exactly as in RDL.
        Triggers are ignored; transition ``effect`` behaviours are refused (put the action in a
        state).

      Node ids are the vertices' names when they are valid RDL ids and unique in the machine,
      else their ``xmi:id`` (so ``tune validate`` messages name what the modeller sees).

      **on-failure**: the compensation diagram is the default value of an ``ownedAttribute``
      named ``on-failure`` of the state machine (what :func:`to_uml` writes), or an
      ``ownedComment`` of the state machine whose body is ``on-failure: NAME``.

Errors - wrong root or namespace, missing ``xmi:id``, duplicate ids or names, references to ids
that do not exist, unsupported constructs, bad values - are :class:`~tune.errors.ParseError`
with the file and line.  Nothing here checks meaning (families that exist, wrappers): that is
``tune validate``'s job, as for the native CDL.
"""

from __future__ import annotations

import re
from typing import Optional

from lxml import etree

from ..diagrams.model import Diagram, DiagramNode, NodeKind
from ..diagrams.rdl import make_action_node, make_transition
from ..errors import ParseError
from ..xmlsafe import local_name, parse_xml
from .model import (
    ALLOCATIONS,
    NAME_RE,
    PROTOCOLS,
    RESERVED_COMPONENT_ATTRIBUTES,
    Application,
    Binding,
    ComponentType,
    DiagramRef,
    Family,
    Multiplicity,
    Source,
)

#: UML metamodel namespaces that are read
UML_NAMESPACES = (
    "http://www.eclipse.org/uml2/5.0.0/UML",
    "http://www.eclipse.org/uml2/4.0.0/UML",
    "http://www.eclipse.org/uml2/3.0.0/UML",
    "http://www.eclipse.org/uml2/2.1.0/UML",
    "http://www.eclipse.org/uml2/2.0.0/UML",
    "http://www.omg.org/spec/UML/20090901",
    "http://www.omg.org/spec/UML/20110701",
    "http://www.omg.org/spec/UML/20131001",
    "http://www.omg.org/spec/UML/20161101",
)
#: XMI namespaces that are read
XMI_NAMESPACES = (
    "http://www.omg.org/spec/XMI/20131001",
    "http://www.omg.org/spec/XMI/20110701",
    "http://schema.omg.org/spec/XMI/2.1",
    "http://www.omg.org/XMI",
)
FAMILY_FIELDS = ("nodefile", "user", "protocol", "dirlocal", "python", "key", "port", "allocation", "driver")
COMPONENT_FIELDS = ("wrapper", "legacyFile", "host-family", "initial")
#: element tags whose xmi:type may be omitted (EMF leaves out the feature's own type)
_DEFAULT_TYPES = {"ownedAttribute": "Property", "ownedEnd": "Property", "region": "Region",
                  "transition": "Transition", "ownedRule": "Constraint", "guard": "Constraint",
                  "ownedComment": "Comment"}
_RDL_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_ON_FAILURE_RE = re.compile(r"^\s*on-?failure\s*[:=]\s*(\S+)\s*$", re.I)
_LANGUAGES = ("tune", "rdl")
MAX_INT = 1_000_000


class _Doc:
    """One parsed XMI document: namespaces, the id index, and helpers that report ``file:line``."""

    def __init__(self, path: str, tree: etree._ElementTree) -> None:
        self.path = path
        root = tree.getroot()
        self.xmi_ns = self._xmi_namespace(root)
        self.model = self._model(root)
        self.uml_ns = etree.QName(self.model).namespace
        self.ids: dict[str, etree._Element] = {}
        id_attr = f"{{{self.xmi_ns}}}id"
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            xid = el.get(id_attr)
            if xid is None:
                continue
            if xid in self.ids:
                raise self.error(f"duplicate xmi:id {xid[:80]!r} (first at line {self.ids[xid].sourceline})", el)
            self.ids[xid] = el

    # --- errors -----------------------------------------------------------------------
    def error(self, message: str, el: Optional[etree._Element] = None) -> ParseError:
        return ParseError(message, file=self.path, line=el.sourceline if el is not None else None)

    def src(self, el: etree._Element) -> Source:
        return Source(self.path, el.sourceline)

    # --- root -------------------------------------------------------------------------
    def _xmi_namespace(self, root: etree._Element) -> str:
        if not isinstance(root.tag, str):  # pragma: no cover - lxml roots are elements
            raise self.error("no root element")
        found = [ns for ns in dict.fromkeys(root.nsmap.values()) if ns in XMI_NAMESPACES]
        if not found:
            declared = ", ".join(sorted(ns for ns in root.nsmap.values() if ns)) or "none"
            raise self.error(f"not a UML XMI file: no known XMI namespace on <{root.tag}> "
                             f"(declared: {declared[:200]}; expected one of {', '.join(XMI_NAMESPACES)})", root)
        if len(found) > 1:
            raise self.error(f"several XMI namespaces declared ({', '.join(found)})", root)
        return found[0]

    def _model(self, root: etree._Element) -> etree._Element:
        q = etree.QName(root)
        if q.namespace == self.xmi_ns and q.localname == "XMI":
            models = [el for el in root if isinstance(el.tag, str)
                      and etree.QName(el).namespace in UML_NAMESPACES
                      and etree.QName(el).localname in ("Model", "Package")]
            if len(models) != 1:
                bad = [el for el in root if isinstance(el.tag, str) and etree.QName(el).localname == "Model"]
                if not models and bad:
                    raise self.error(f"<{bad[0].tag}> is not in a known UML namespace "
                                     f"(expected one of {', '.join(UML_NAMESPACES)})", bad[0])
                raise self.error(f"<xmi:XMI> must hold exactly one uml:Model, found {len(models)}", root)
            return models[0]
        if q.localname in ("Model", "Package"):
            if q.namespace not in UML_NAMESPACES:
                raise self.error(f"<{q.localname}> is in namespace {q.namespace!r}, not a known UML namespace "
                                 f"(expected one of {', '.join(UML_NAMESPACES)})", root)
            return root
        raise self.error(f"expected a uml:Model or xmi:XMI root, found <{q.localname}> "
                         f"({q.namespace or 'no namespace'})", root)

    # --- typing and references --------------------------------------------------------
    def xtype(self, el: etree._Element) -> Optional[str]:
        """The UML metaclass of ``el`` (``"Class"``), from ``xmi:type`` or the tag's default."""
        value = el.get(f"{{{self.xmi_ns}}}type")
        if value is None:
            if isinstance(el.tag, str) and etree.QName(el).namespace in UML_NAMESPACES:
                return etree.QName(el).localname
            return _DEFAULT_TYPES.get(local_name(el))
        prefix, sep, name = value.partition(":")
        if not sep:
            return None
        ns = el.nsmap.get(prefix)
        return name if ns in UML_NAMESPACES else None

    def xid(self, el: etree._Element, what: str) -> str:
        value = el.get(f"{{{self.xmi_ns}}}id")
        if value is None or not value.strip():
            raise self.error(f"{what} has no xmi:id", el)
        return value

    def ref_ids(self, el: etree._Element, feature: str) -> list[tuple[str, etree._Element]]:
        """Ids referenced by ``feature``: an attribute of space-separated ids and/or children
        ``<feature xmi:idref="..."/>``; each with the element to blame in errors."""
        out: list[tuple[str, etree._Element]] = []
        text = el.get(feature)
        if text is not None:
            out.extend((part, el) for part in text.split())
        for child in el:
            if not isinstance(child.tag, str) or local_name(child) != feature:
                continue
            idref = child.get(f"{{{self.xmi_ns}}}idref") or child.get("idref")
            if idref:
                out.append((idref, child))
            elif child.get("href") is not None:
                raise self.error(f"<{feature}> refers to another resource ({child.get('href', '')[:120]!r}); "
                                 "only references inside this file are supported", child)
            elif child.get(f"{{{self.xmi_ns}}}id") is None:
                raise self.error(f"<{feature}> without xmi:idref", child)
        return out

    def resolve(self, ident: str, blame: etree._Element, feature: str) -> etree._Element:
        target = self.ids.get(ident)
        if target is None:
            raise self.error(f"{feature} refers to {ident[:80]!r}, which does not exist", blame)
        return target

    def single_ref(self, el: etree._Element, feature: str, what: str,
                   required: bool = True) -> Optional[etree._Element]:
        refs = self.ref_ids(el, feature)
        if not refs:
            if required:
                raise self.error(f"{what} has no {feature}", el)
            return None
        if len(refs) > 1:
            raise self.error(f"{what} has {len(refs)} {feature} references, expected one", el)
        ident, blame = refs[0]
        return self.resolve(ident, blame, feature)

    def name(self, el: etree._Element, what: str) -> str:
        value = el.get("name")
        if value is None:
            for child in el:  # XMI also allows <name>text</name>
                if isinstance(child.tag, str) and local_name(child) == "name":
                    value = child.text or ""
                    break
        if value is None or not value.strip():
            raise self.error(f"{what} has no name", el)
        value = value.strip()
        if not NAME_RE.match(value):
            raise self.error(f"bad {what} name {value[:80]!r} (letters, digits, '_', '-', '.'; at most 64)", el)
        return value


def _children(el: etree._Element, tag: str) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str) and local_name(c) == tag]


def _texts(el: etree._Element, tag: str) -> list[str]:
    return [c.text or "" for c in _children(el, tag)]


def _body(doc: _Doc, el: etree._Element) -> Optional[str]:
    """The body of an OpaqueExpression / OpaqueBehavior (``<body>`` children or ``body=``)."""
    bodies = _texts(el, "body")
    if not bodies:
        return el.get("body")
    languages = [t.strip().lower() for t in _texts(el, "language")]
    for i, lang in enumerate(languages):
        if lang in _LANGUAGES and i < len(bodies):
            return bodies[i]
    return bodies[0]


def _literal(doc: _Doc, spec: etree._Element, what: str) -> str:
    """The text of a ValueSpecification (defaultValue, guard specification)."""
    t = doc.xtype(spec)
    value = spec.get("value")
    if t == "LiteralString":
        return value if value is not None else ""
    if t == "LiteralInteger":
        if value is None:
            return "0"
        try:
            return str(int(value.strip()))
        except ValueError:
            raise doc.error(f"{what}: LiteralInteger value {value[:40]!r} is not an integer", spec) from None
    if t == "LiteralBoolean":
        v = (value or "false").strip().lower()
        if v not in ("true", "false"):
            raise doc.error(f"{what}: LiteralBoolean value {value[:40]!r} is not true or false", spec)
        return v
    if t == "LiteralUnlimitedNatural":
        v = (value or "0").strip()
        if v == "*":
            return "-1"
        if not v.isdigit():
            raise doc.error(f"{what}: LiteralUnlimitedNatural value {v[:40]!r} is not * or a natural", spec)
        return str(int(v))
    if t == "LiteralReal":
        if value is None:
            return "0.0"
        try:
            float(value)
        except ValueError:
            raise doc.error(f"{what}: LiteralReal value {value[:40]!r} is not a number", spec) from None
        return value.strip()
    if t == "LiteralNull":
        return ""
    if t in ("OpaqueExpression", "Expression"):
        body = _body(doc, spec)
        return (body or "").strip()
    raise doc.error(f"{what}: unsupported value {spec.get(f'{{{doc.xmi_ns}}}type') or local_name(spec)!r} "
                    "(use a LiteralString, LiteralInteger, LiteralBoolean, LiteralReal, "
                    "LiteralUnlimitedNatural or OpaqueExpression)", spec)


def _default(doc: _Doc, attr: etree._Element, what: str) -> str:
    values = _children(attr, "defaultValue")
    if not values:
        return ""
    if len(values) > 1:
        raise doc.error(f"{what} has {len(values)} default values", values[1])
    return _literal(doc, values[0], what)


def _is_secret(attr: etree._Element) -> bool:
    for ann in _children(attr, "eAnnotations"):
        if ann.get("source") not in ("tune", "TUNe"):
            continue
        for d in _children(ann, "details"):
            if d.get("key") == "secret" and (d.get("value") or "").strip().lower() in ("true", "1", "yes"):
                return True
    return False


def _int(doc: _Doc, text: str, what: str, el: etree._Element, default: Optional[int]) -> Optional[int]:
    if text.strip() == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise doc.error(f"{what}={text[:40]!r} is not an integer", el) from None
    if value < 0 or value > MAX_INT:
        raise doc.error(f"{what}={value} out of range", el)
    return value


# --- structure -------------------------------------------------------------------------
class _Walk:
    """Classes (with their grid-ness) and associations, in document order."""

    def __init__(self, doc: _Doc) -> None:
        self.classes: list[tuple[etree._Element, bool]] = []
        self.associations: list[etree._Element] = []
        self._package(doc, doc.model, local_name_or(doc.model) == "grid")

    def _package(self, doc: _Doc, pkg: etree._Element, in_grid: bool) -> None:
        for el in _children(pkg, "packagedElement"):
            t = doc.xtype(el)
            if t in ("Package", "Model"):
                self._package(doc, el, (el.get("name") or "").strip() == "grid")
            elif t in ("Class", "Component"):
                self.classes.append((el, in_grid))
            elif t == "Association":
                self.associations.append(el)


def local_name_or(el: etree._Element) -> str:
    return (el.get("name") or "").strip()


def _attributes(doc: _Doc, cls: etree._Element, end_ids: set[str], what: str
                ) -> list[tuple[str, str, bool, etree._Element]]:
    """(name, value, secret, element) of a class's attributes that are not association ends."""
    out: list[tuple[str, str, bool, etree._Element]] = []
    seen: dict[str, etree._Element] = {}
    for attr in _children(cls, "ownedAttribute"):
        xid = attr.get(f"{{{doc.xmi_ns}}}id")
        if attr.get("association") is not None or (xid is not None and xid in end_ids):
            continue
        if doc.xtype(attr) not in ("Property", "Port"):
            continue
        name = doc.name(attr, f"{what} attribute")
        if name in seen:
            raise doc.error(f"{what}: duplicate attribute {name!r} (first at line {seen[name].sourceline})", attr)
        seen[name] = attr
        out.append((name, _default(doc, attr, f"{what}.{name}"), _is_secret(attr), attr))
    return out


def _family(doc: _Doc, cls: etree._Element, end_ids: set[str]) -> Family:
    name = doc.name(cls, "family")
    fields: dict[str, str] = {}
    extra: dict[str, str] = {}
    lines: dict[str, etree._Element] = {}
    for key, value, _secret, attr in _attributes(doc, cls, end_ids, f"family {name}"):
        if key == "name":
            raise doc.error(f"family {name}: 'name' is reserved", attr)
        (fields if key in FAMILY_FIELDS else extra)[key] = value
        lines[key] = attr
    protocol = fields.get("protocol", "").strip() or "local"
    if protocol not in PROTOCOLS:
        raise doc.error(f"family {name}: unknown protocol {protocol[:40]!r} (one of {', '.join(PROTOCOLS)})",
                        lines.get("protocol", cls))
    allocation = fields.get("allocation", "").strip() or "round-robin"
    if allocation not in ALLOCATIONS:
        raise doc.error(f"family {name}: unknown allocation {allocation[:40]!r} (one of {', '.join(ALLOCATIONS)})",
                        lines.get("allocation", cls))
    port = _int(doc, fields.get("port", ""), "port", lines.get("port", cls), None)

    def opt(key: str) -> Optional[str]:
        v = fields.get(key)
        return v if v else None

    return Family(name=name, nodefile=opt("nodefile"), user=opt("user"), protocol=protocol,
                  dirlocal=fields.get("dirlocal") or "/tmp/tune", python=opt("python"), key=opt("key"),
                  port=port, allocation=allocation, driver=opt("driver"), attributes=extra, source=doc.src(cls))


def _component(doc: _Doc, cls: etree._Element, end_ids: set[str]) -> ComponentType:
    name = doc.name(cls, "component")
    fields: dict[str, str] = {}
    lines: dict[str, etree._Element] = {}
    attributes: dict[str, str] = {}
    sources: dict[str, Source] = {}
    secret: set[str] = set()
    for key, value, is_secret, attr in _attributes(doc, cls, end_ids, f"component {name}"):
        if key in COMPONENT_FIELDS:
            fields[key] = value
            lines[key] = attr
            continue
        if key in RESERVED_COMPONENT_ATTRIBUTES:
            raise doc.error(f"component {name}: attribute {key!r} is reserved", attr)
        attributes[key] = value
        sources[key] = doc.src(attr)
        if is_secret:
            secret.add(key)
    initial = _int(doc, fields.get("initial", ""), "initial", lines.get("initial", cls), 1)
    return ComponentType(name=name, wrapper=fields.get("wrapper") or None,
                         legacy_file=fields.get("legacyFile") or None,
                         host_family=fields.get("host-family") or None,
                         initial=initial if initial is not None else 1, attributes=attributes,
                         secret=frozenset(secret), source=doc.src(cls), attribute_sources=sources)


def _bound(doc: _Doc, end: etree._Element, feature: str, what: str) -> Optional[int]:
    """Lower or upper bound of an association end: ``None`` is unbounded; missing is 1."""
    values = _children(end, feature)
    if not values:
        return 1
    spec = values[0]
    t = doc.xtype(spec)
    raw = spec.get("value")
    if t in ("LiteralInteger", "LiteralUnlimitedNatural", "LiteralString"):
        text = (raw if raw is not None else ("" if t == "LiteralString" else "0")).strip()
    else:
        raise doc.error(f"{what}: {feature} must be a LiteralInteger or LiteralUnlimitedNatural", spec)
    if text == "*":
        if feature == "lowerValue":
            raise doc.error(f"{what}: a lower bound cannot be '*'", spec)
        return None
    try:
        value = int(text)
    except ValueError:
        raise doc.error(f"{what}: {feature} {text[:40]!r} is not a number or '*'", spec) from None
    if value < 0 or value > MAX_INT:
        raise doc.error(f"{what}: {feature} {value} out of range", spec)
    return value


def _multiplicity(doc: _Doc, end: etree._Element, what: str) -> Multiplicity:
    low = _bound(doc, end, "lowerValue", what)
    high = _bound(doc, end, "upperValue", what)
    assert low is not None
    if high is not None and (high < low or high < 1):
        raise doc.error(f"{what}: impossible multiplicity {low}..{high}", end)
    return Multiplicity(low, high)


def _association(doc: _Doc, assoc: etree._Element, class_ends: dict[str, list[etree._Element]],
                 components: dict[etree._Element, str], families: dict[etree._Element, str]) -> Binding:
    aid = doc.xid(assoc, "association")
    what = f"association {assoc.get('name') or aid}"
    refs = doc.ref_ids(assoc, "memberEnd")
    if refs:
        ends = [doc.resolve(ident, blame, "memberEnd") for ident, blame in refs]
    else:
        ends = _children(assoc, "ownedEnd") + class_ends.get(aid, [])
    if len(ends) != 2:
        raise doc.error(f"{what} has {len(ends)} member ends; a binding needs exactly two", assoc)
    if ends[0] is ends[1]:
        raise doc.error(f"{what} lists the same member end twice", assoc)
    for end in ends:
        if local_name(end) not in ("ownedEnd", "ownedAttribute") or doc.xtype(end) not in ("Property", "Port"):
            raise doc.error(f"{what}: member end {doc.xid(end, 'member end')!r} is a <{local_name(end)}>, "
                            "not a property", end)
        owner = end.get("association")
        if owner is not None and owner != aid:
            raise doc.error(f"{what}: member end {doc.xid(end, 'member end')!r} belongs to association {owner!r}",
                            end)
    navigable_ids = {ident for ident, _ in doc.ref_ids(assoc, "navigableOwnedEnd")}
    types: list[str] = []
    for end in ends:
        t = doc.single_ref(end, "type", f"{what}: member end")
        assert t is not None
        if t in families:
            raise doc.error(f"{what}: end typed by host family {families[t]!r}; place components on families "
                            "with their 'host-family' attribute", end)
        if t not in components:
            raise doc.error(f"{what}: end type {t.get('name') or doc.xid(t, 'type')!r} is not a component class",
                            end)
        types.append(components[t])
    navigable = [local_name(e) == "ownedAttribute" or e.get(f"{{{doc.xmi_ns}}}id") in navigable_ids for e in ends]
    if navigable == [True, False]:
        to_i = 0
    else:
        to_i = 1  # [False, True] navigable, or no direction: first member end is `from`
    from_i = 1 - to_i
    return Binding(source=types[from_i], target=types[to_i],
                   from_multiplicity=_multiplicity(doc, ends[from_i], f"{what} ({types[from_i]} end)"),
                   to_multiplicity=_multiplicity(doc, ends[to_i], f"{what} ({types[to_i]} end)"),
                   origin=doc.src(assoc))


# --- state machines → diagrams ---------------------------------------------------------
_PSEUDO_KINDS = {"initial": NodeKind.INITIAL, "fork": NodeKind.FORK, "join": NodeKind.JOIN,
                 "choice": NodeKind.CHOICE, "junction": NodeKind.CHOICE, "terminate": NodeKind.FINAL}
MAX_VERTICES = 10_000


class _Vertex:
    __slots__ = ("el", "xid", "kind", "owner", "region", "node_id")

    def __init__(self, el: etree._Element, xid: str, kind: str, owner: Optional["_Vertex"],
                 region: etree._Element) -> None:
        self.el, self.xid, self.kind, self.owner, self.region = el, xid, kind, owner, region
        self.node_id = ""

    @property
    def nested(self) -> bool:
        return self.owner is not None


def _behaviour_text(doc: _Doc, state: etree._Element, feature: str) -> Optional[str]:
    behaviours = _children(state, feature)
    if not behaviours:
        return None
    if len(behaviours) > 1:
        raise doc.error(f"state has {len(behaviours)} {feature} behaviours", behaviours[1])
    body = _body(doc, behaviours[0])
    return body.strip() if body and body.strip() else None


def _state_action(doc: _Doc, state: etree._Element) -> Optional[str]:
    """Entry body, else doActivity body, else the state's name."""
    if _children(state, "exit"):
        raise doc.error("exit behaviours are not supported: put the action in the next state's entry",
                        _children(state, "exit")[0])
    text = _behaviour_text(doc, state, "entry") or _behaviour_text(doc, state, "doActivity")
    if text:
        return text
    name = (state.get("name") or "").strip()
    return name or None


def _guard_text(doc: _Doc, tr: etree._Element) -> Optional[str]:
    found: list[etree._Element] = []
    attr = tr.get("guard")
    if attr is not None:
        ids = attr.split()
        if len(ids) != 1:
            raise doc.error("guard= must name one constraint", tr)
        found.append(doc.resolve(ids[0], tr, "guard"))
    for child in _children(tr, "guard"):
        idref = child.get(f"{{{doc.xmi_ns}}}idref") or child.get("idref")
        found.append(doc.resolve(idref, child, "guard") if idref else child)
    if not found:
        return None
    if len(found) > 1 and any(f is not found[0] for f in found):
        raise doc.error("transition has more than one guard", tr)
    g = found[0]
    if doc.xtype(g) != "Constraint":
        raise doc.error("a transition's guard must be a uml:Constraint", g)
    specs = _children(g, "specification")
    if not specs:
        return None
    if len(specs) > 1:
        raise doc.error("guard constraint has several specifications", specs[1])
    text = _literal(doc, specs[0], "guard").strip()
    return text or None


def _on_failure(doc: _Doc, sm: etree._Element, name: str) -> Optional[str]:
    value: Optional[str] = None
    where: etree._Element = sm
    for attr in _children(sm, "ownedAttribute"):
        if (attr.get("name") or "").strip() in ("on-failure", "onFailure"):
            value, where = _default(doc, attr, f"state machine {name}: on-failure").strip(), attr
            break
    else:
        for c in _children(sm, "ownedComment"):
            body = c.get("body")
            if body is None:
                body = "".join(_texts(c, "body"))
            m = _ON_FAILURE_RE.match(body or "")
            if m:
                value, where = m.group(1), c
                break
    if not value:
        return None
    if not NAME_RE.match(value):
        raise doc.error(f"state machine {name}: bad on-failure diagram name {value[:80]!r}", where)
    return value


def parse_state_machine(doc: _Doc, sm: etree._Element) -> Diagram:
    """One ``uml:StateMachine`` → a :class:`Diagram` (composite states become fork/join)."""
    name = doc.name(sm, "state machine")
    doc.xid(sm, f"state machine {name}")
    what = f"state machine {name}"
    diagram = Diagram(name=name, on_failure=_on_failure(doc, sm, name), file=doc.path, source=doc.src(sm))
    regions = _children(sm, "region")
    if len(regions) != 1:
        raise doc.error(f"{what} has {len(regions)} regions; use one region (parallel branches go in the "
                        "regions of a composite state)", sm)
    if _children(sm, "connectionPoint"):
        raise doc.error(f"{what}: entry/exit points are not supported", _children(sm, "connectionPoint")[0])
    vertices: list[_Vertex] = []
    transitions: list[etree._Element] = []

    def walk(region: etree._Element, owner: Optional[_Vertex]) -> None:
        for child in region:
            if not isinstance(child.tag, str):
                continue
            tag = local_name(child)
            if tag == "transition":
                transitions.append(child)
                continue
            if tag != "subvertex":
                continue
            if len(vertices) >= MAX_VERTICES:
                raise doc.error(f"{what}: more than {MAX_VERTICES} vertices", child)
            t = doc.xtype(child)
            xid = doc.xid(child, f"{what}: vertex")
            if t == "Pseudostate":
                kind = (child.get("kind") or "initial").strip()
                if kind not in _PSEUDO_KINDS:
                    raise doc.error(f"{what}: pseudostate kind {kind[:40]!r} is not supported "
                                    f"(use {', '.join(_PSEUDO_KINDS)})", child)
            elif t == "FinalState":
                kind = "final"
            elif t == "State":
                if child.get("submachine") is not None or _children(child, "submachine"):
                    raise doc.error(f"{what}: submachine states are not supported", child)
                if _children(child, "connection") or _children(child, "connectionPoint"):
                    raise doc.error(f"{what}: entry/exit points are not supported", child)
                kind = "composite" if _children(child, "region") else "state"
            else:
                raise doc.error(f"{what}: unsupported vertex type "
                                f"{child.get(f'{{{doc.xmi_ns}}}type') or '(none)'!r}", child)
            v = _Vertex(child, xid, kind, owner, region)
            vertices.append(v)
            if kind == "composite":
                for sub in _children(child, "region"):
                    walk(sub, v)

    walk(regions[0], None)
    by_el = {v.el: v for v in vertices}

    # node ids: unique valid names first, then xmi:ids
    def needs_id(v: _Vertex) -> bool:
        return not (v.nested and v.kind in ("initial", "final"))

    named = [v for v in vertices if needs_id(v)]
    counts: dict[str, int] = {}
    for v in named:
        n = (v.el.get("name") or "").strip()
        counts[n] = counts.get(n, 0) + 1
    used: set[str] = set()
    for v in named:
        n = (v.el.get("name") or "").strip()
        if n and _RDL_ID_RE.match(n) and counts[n] == 1:
            v.node_id = n
            used.add(n)

    def fresh(candidate: str) -> str:
        if not _RDL_ID_RE.match(candidate):
            candidate = f"v{len(used) + 1}"
        while candidate in used:
            candidate += "_"
        used.add(candidate)
        return candidate

    for v in named:
        if not v.node_id:
            v.node_id = fresh(v.xid)

    # nodes
    alias_in: dict[str, str] = {}
    alias_out: dict[str, str] = {}
    extra: list[tuple[str, str, etree._Element]] = []
    forks: dict[str, tuple[str, str]] = {}
    for v in vertices:
        if v.kind == "composite":
            forks[v.xid] = (fresh(v.node_id + ".fork"), fresh(v.node_id + ".join"))
    for v in vertices:
        src = doc.src(v.el)
        if v.nested and v.kind == "initial":
            alias_out[v.xid] = forks[v.owner.xid][0]  # type: ignore[union-attr]
            continue
        if v.nested and v.kind == "final":
            alias_in[v.xid] = forks[v.owner.xid][1]  # type: ignore[union-attr]
            continue
        if v.kind == "composite":
            fork_id, join_id = forks[v.xid]
            for sub in _children(v.el, "region"):
                initials = [w for w in vertices if w.region is sub and w.kind == "initial"]
                if len(initials) != 1:
                    raise doc.error(f"{what}: region {sub.get('name') or ''!r} of composite state "
                                    f"{v.node_id!r} needs exactly one initial pseudostate, has {len(initials)}", sub)
            if _children(v.el, "doActivity") or _children(v.el, "exit"):
                raise doc.error(f"{what}: composite state {v.node_id!r} can only have an entry behaviour", v.el)
            entry = _behaviour_text(doc, v.el, "entry")
            diagram.nodes[fork_id] = DiagramNode(fork_id, NodeKind.FORK, "", [], src)
            if entry:
                diagram.nodes[v.node_id] = make_action_node(v.node_id, entry, src)
                extra.append((v.node_id, fork_id, v.el))
                alias_in[v.xid] = v.node_id
            else:
                alias_in[v.xid] = fork_id
            diagram.nodes[join_id] = DiagramNode(join_id, NodeKind.JOIN, "", [], src)
            alias_out[v.xid] = join_id
            continue
        if v.kind == "state":
            text = _state_action(doc, v.el)
            if not text:
                raise doc.error(f"{what}: state {v.xid!r} has no action (give it an entry OpaqueBehavior "
                                "body, or name it after its action)", v.el)
            diagram.nodes[v.node_id] = make_action_node(v.node_id, text, src)
        else:
            kind = NodeKind.FINAL if v.kind == "final" else _PSEUDO_KINDS[v.kind]
            diagram.nodes[v.node_id] = DiagramNode(v.node_id, kind, "", [], src)

    # transitions
    for tr in transitions:
        doc.xid(tr, f"{what}: transition")
        ends: list[_Vertex] = []
        for feature in ("source", "target"):
            el = doc.single_ref(tr, feature, f"{what}: transition")
            assert el is not None  # required=True
            found = by_el.get(el)
            if found is None:
                raise doc.error(f"{what}: transition {feature} {el.get(f'{{{doc.xmi_ns}}}id')!r} "
                                "is not a vertex of this state machine", tr)
            ends.append(found)
        sv, tv = ends
        if sv.kind == "final":
            raise doc.error(f"{what}: a transition cannot leave a final state", tr)
        if tv.kind == "initial":
            raise doc.error(f"{what}: a transition cannot enter an initial pseudostate", tr)
        if _children(tr, "effect"):
            raise doc.error(f"{what}: transition effects are not supported; put the action in a state",
                            _children(tr, "effect")[0])
        s_id = alias_out.get(sv.xid, sv.node_id)
        t_id = alias_in.get(tv.xid, tv.node_id)
        diagram.transitions.append(make_transition(s_id, t_id, _guard_text(doc, tr), doc.src(tr)))
    for a, b, el in extra:
        diagram.transitions.append(make_transition(a, b, None, doc.src(el)))

    # a junction's single unguarded way on is its 'else' (a merge, or the default branch)
    for v in vertices:
        if v.kind != "junction":
            continue
        outs = [i for i, t in enumerate(diagram.transitions) if t.source == v.node_id]
        bare = [i for i in outs if diagram.transitions[i].guard_text is None]
        if len(bare) == 1 and not any(diagram.transitions[i].is_else for i in outs):
            t = diagram.transitions[bare[0]]
            diagram.transitions[bare[0]] = make_transition(t.source, t.target, "else", t.origin)
    return diagram


def parse_uml(path: str, data: Optional[bytes] = None) -> Application:
    """Read a Papyrus / Eclipse UML2 ``.uml`` file as an :class:`Application` (see the module doc)."""
    doc = _Doc(path, parse_xml(path, data=data))
    app = Application(name=doc.name(doc.model, "model"), path=path, source=doc.src(doc.model))
    walk = _Walk(doc)
    class_ends: dict[str, list[etree._Element]] = {}
    for cls, _grid in walk.classes:
        for attr in _children(cls, "ownedAttribute"):
            a = attr.get("association")
            if a is not None:
                target = doc.resolve(a, attr, "association")
                if doc.xtype(target) != "Association":
                    raise doc.error(f"association={a[:80]!r} is not an association", attr)
                class_ends.setdefault(a, []).append(attr)
    end_ids: set[str] = set()
    for assoc in walk.associations:
        end_ids.update(ident for ident, _ in doc.ref_ids(assoc, "memberEnd"))
    components: dict[etree._Element, str] = {}
    families: dict[etree._Element, str] = {}
    first_line: dict[str, Optional[int]] = {}
    for cls, grid in walk.classes:
        doc.xid(cls, "class")
        if grid:
            fam = _family(doc, cls, end_ids)
            if fam.name in app.families:
                raise doc.error(f"duplicate family {fam.name!r} (first at line {first_line[fam.name]})", cls)
            app.families[fam.name] = fam
            families[cls] = fam.name
            first_line[fam.name] = cls.sourceline
        else:
            comp = _component(doc, cls, end_ids)
            if comp.name in app.components:
                raise doc.error(f"duplicate component {comp.name!r} (first at line {first_line[comp.name]})", cls)
            app.components[comp.name] = comp
            components[cls] = comp.name
            first_line[comp.name] = cls.sourceline
    for assoc in walk.associations:
        b = _association(doc, assoc, class_ends, components, families)
        if any(x.key == b.key or x.key == b.key[::-1] for x in app.bindings):
            raise doc.error(f"duplicate binding {b.source}-{b.target}", assoc)
        app.bindings.append(b)
    for el in doc.model.iter():
        if isinstance(el.tag, str) and el.get(f"{{{doc.xmi_ns}}}type") is not None and doc.xtype(el) == "StateMachine":
            diagram = parse_state_machine(doc, el)
            if diagram.name in app.diagrams:
                raise doc.error(f"two state machines for event {diagram.name!r}", el)
            app.diagrams[diagram.name] = DiagramRef(event=diagram.name, file=None, source=doc.src(el))
            app.diagram_graphs[diagram.name] = diagram
    return app


def to_uml(app: Application) -> str:
    """Write ``app`` (with its diagrams) as Papyrus-style XMI; see :mod:`tune.adl.uml_write`."""
    from .uml_write import to_uml as _to_uml
    return _to_uml(app)


__all__ = ["UML_NAMESPACES", "XMI_NAMESPACES", "parse_uml", "to_uml"]
