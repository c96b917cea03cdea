"""The native CDL: ``app.xml`` → :class:`tune.adl.model.Application`, and back.

Parsing is strict about structure (unknown elements, missing names, duplicates are errors with
``file:line``) and says nothing about meaning: that is :mod:`tune.validate`'s job.
"""

from __future__ import annotations

from typing import Iterator, Optional

from lxml import etree

from ..errors import ParseError
from ..xmlsafe import local_name, parse_xml, reject_namespaces
from .model import (ALLOCATIONS, NAME_RE, PROTOCOLS, RESERVED_COMPONENT_ATTRIBUTES, Application, Binding,
                    ComponentType, DiagramRef, Family, Multiplicity, Source)

FAMILY_FIELDS = ("name", "nodefile", "user", "protocol", "dirlocal", "python", "key", "port",
                 "allocation", "driver")


def _name(el: etree._Element, what: str, file: str, attr: str = "name") -> str:
    value = el.get(attr)
    if value is None or not value.strip():
        raise ParseError(f"<{local_name(el)}> needs a {attr!r} attribute", file=file, line=el.sourceline)
    value = value.strip()
    if not NAME_RE.match(value):
        raise ParseError(f"bad {what} name {value[:80]!r} (letters, digits, '_', '-', '.'; at most 64)",
                         file=file, line=el.sourceline)
    return value


def _int(el: etree._Element, attr: str, file: str, default: Optional[int]) -> Optional[int]:
    text = el.get(attr)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ParseError(f"{attr}={text[:40]!r} is not an integer", file=file, line=el.sourceline) from None
    if value < 0 or value > 1_000_000:
        raise ParseError(f"{attr}={value} out of range", file=file, line=el.sourceline)
    return value


def _attribute_children(el: etree._Element, what: str, owner: str, file: str,
                        taken: dict[str, str]) -> Iterator[tuple[str, etree._Element]]:
    """The ``<attribute>`` children of a ``<family>`` or ``<component>``, each name once."""
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if local_name(child) != "attribute":
            raise ParseError(f"unexpected <{local_name(child)}> in <{what}>", file=file, line=child.sourceline)
        attr = _name(child, "attribute", file)
        if attr in taken:
            raise ParseError(f"{what} {owner}: duplicate attribute {attr!r}", file=file, line=child.sourceline)
        yield attr, child


def parse_family(el: etree._Element, file: str) -> Family:
    src = Source(file, el.sourceline)
    name = _name(el, "family", file)
    protocol = (el.get("protocol") or "local").strip()
    if protocol not in PROTOCOLS:
        raise ParseError(f"family {name}: unknown protocol {protocol[:40]!r} (one of {', '.join(PROTOCOLS)})",
                         file=file, line=el.sourceline)
    allocation = (el.get("allocation") or "round-robin").strip()
    if allocation not in ALLOCATIONS:
        raise ParseError(f"family {name}: unknown allocation {allocation[:40]!r} "
                         f"(one of {', '.join(ALLOCATIONS)})", file=file, line=el.sourceline)
    port = _int(el, "port", file, None)
    extra = {k: v for k, v in el.attrib.items() if k not in FAMILY_FIELDS}
    for attr, child in _attribute_children(el, "family", name, file, extra):
        extra[attr] = child.get("value", "")
    return Family(name=name, nodefile=el.get("nodefile"), user=el.get("user"), protocol=protocol,
                  dirlocal=el.get("dirlocal") or "/tmp/tune", python=el.get("python"), key=el.get("key"),
                  port=port, allocation=allocation, driver=el.get("driver"), attributes=extra, source=src)


def parse_component(el: etree._Element, file: str) -> ComponentType:
    name = _name(el, "component", file)
    initial = _int(el, "initial", file, 1)
    attributes: dict[str, str] = {}
    sources: dict[str, Source] = {}
    secret: set[str] = set()
    for key, value in el.attrib.items():
        if key in RESERVED_COMPONENT_ATTRIBUTES:
            continue
        if not NAME_RE.match(key):
            raise ParseError(f"bad attribute name {key[:80]!r}", file=file, line=el.sourceline)
        attributes[key] = value
        sources[key] = Source(file, el.sourceline)
    for attr, child in _attribute_children(el, "component", name, file, attributes):
        if attr in RESERVED_COMPONENT_ATTRIBUTES:
            raise ParseError(f"component {name}: {attr!r} is reserved; set it on <component>",
                             file=file, line=child.sourceline)
        attributes[attr] = child.get("value", child.text or "")
        sources[attr] = Source(file, child.sourceline)
        if (child.get("secret") or "").lower() in ("true", "1", "yes"):
            secret.add(attr)
    legacy = el.get("legacyFile")
    return ComponentType(name=name, wrapper=el.get("wrapper") or None, legacy_file=legacy or None,
                         host_family=el.get("host-family") or None, initial=initial if initial is not None else 1,
                         attributes=attributes, secret=frozenset(secret), source=Source(file, el.sourceline),
                         attribute_sources=sources)


def parse_binding(el: etree._Element, file: str) -> Binding:
    src = Source(file, el.sourceline)
    a = _name(el, "component", file, "from")
    b = _name(el, "component", file, "to")
    return Binding(source=a, target=b,
                   from_multiplicity=Multiplicity.parse(el.get("from-multiplicity", "1"), src),
                   to_multiplicity=Multiplicity.parse(el.get("to-multiplicity", "1"), src), origin=src)


def parse_cdl(path: str, data: Optional[bytes] = None) -> Application:
    """Read a native ``app.xml``."""
    tree = parse_xml(path, data=data)
    root = tree.getroot()
    if local_name(root) != "application" or (isinstance(root.tag, str) and root.tag.startswith("{")):
        raise ParseError(f"expected <application> (no namespace), found <{root.tag}>", file=path,
                         line=root.sourceline)
    reject_namespaces(tree, path)
    app = Application(name=_name(root, "application", path), path=path, source=Source(path, root.sourceline))
    for el in root:
        if not isinstance(el.tag, str):
            continue
        kind = local_name(el)
        line = el.sourceline
        if kind == "family":
            fam = parse_family(el, path)
            if fam.name in app.families:
                raise ParseError(f"duplicate family {fam.name!r}", file=path, line=line)
            app.families[fam.name] = fam
        elif kind == "component":
            comp = parse_component(el, path)
            if comp.name in app.components:
                raise ParseError(f"duplicate component {comp.name!r}", file=path, line=line)
            app.components[comp.name] = comp
        elif kind == "binding":
            bnd = parse_binding(el, path)
            if any(x.key == bnd.key or x.key == bnd.key[::-1] for x in app.bindings):
                raise ParseError(f"duplicate binding {bnd.source}-{bnd.target}", file=path, line=line)
            app.bindings.append(bnd)
        elif kind == "diagram":
            event = _name(el, "event", path, "event")
            if event in app.diagrams:
                raise ParseError(f"two diagrams for event {event!r}", file=path, line=line)
            file_attr = el.get("file")
            if not file_attr:
                raise ParseError(f"diagram {event}: needs a 'file' attribute", file=path, line=line)
            app.diagrams[event] = DiagramRef(event=event, file=file_attr, source=Source(path, line))
        else:
            raise ParseError(f"unexpected <{kind}> in <application> "
                             "(expected family, component, binding, diagram)", file=path, line=line)
    return app


def parse_grid(path: str) -> dict[str, Family]:
    """A file of families only (``<grid><family .../></grid>``), to swap an application's hosts."""
    tree = parse_xml(path)
    root = tree.getroot()
    if local_name(root) not in ("grid", "application"):
        raise ParseError(f"expected <grid>, found <{local_name(root)}>", file=path, line=root.sourceline)
    reject_namespaces(tree, path)
    families: dict[str, Family] = {}
    for el in root:
        if isinstance(el.tag, str) and local_name(el) == "family":
            fam = parse_family(el, path)
            if fam.name in families:
                raise ParseError(f"duplicate family {fam.name!r}", file=path, line=el.sourceline)
            families[fam.name] = fam
        elif isinstance(el.tag, str) and local_name(root) == "grid":
            raise ParseError(f"unexpected <{local_name(el)}> in <grid>", file=path, line=el.sourceline)
    return families


def to_xml(app: Application) -> str:
    """Serialise an application back to native CDL (the inverse of :func:`parse_cdl`)."""
    root = etree.Element("application", name=app.name)
    for fam in app.families.values():
        attrs = {"name": fam.name, "protocol": fam.protocol, "dirlocal": fam.dirlocal,
                 "allocation": fam.allocation}
        for key in ("nodefile", "user", "python", "key", "driver"):
            if getattr(fam, key) is not None:
                attrs[key] = getattr(fam, key)
        if fam.port is not None:
            attrs["port"] = str(fam.port)
        el = etree.SubElement(root, "family", attrs)
        for k, v in fam.attributes.items():
            etree.SubElement(el, "attribute", name=k, value=v)
    for comp in app.components.values():
        attrs = {"name": comp.name, "initial": str(comp.initial)}
        if comp.wrapper:
            attrs["wrapper"] = comp.wrapper
        attrs["legacyFile"] = comp.legacy_file or ""
        if comp.host_family:
            attrs["host-family"] = comp.host_family
        el = etree.SubElement(root, "component", attrs)
        for k, v in comp.attributes.items():
            a = etree.SubElement(el, "attribute", name=k, value=v)
            if k in comp.secret:
                a.set("secret", "true")
    for b in app.bindings:
        etree.SubElement(root, "binding", {"from": b.source, "to": b.target,
                                           "from-multiplicity": str(b.from_multiplicity),
                                           "to-multiplicity": str(b.to_multiplicity)})
    for d in app.diagrams.values():
        etree.SubElement(root, "diagram", event=d.event, file=d.file or "")
    return etree.tostring(root, pretty_print=True, encoding="unicode")
