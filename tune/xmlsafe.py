"""Safe XML parsing shared by every language of ``tune``.

One parser configuration for all files: no DTD loading, no entity expansion, no network, no
huge trees.  A document with a DTD that declares entities (billion laughs, external entities)
is refused outright: no format of ``tune`` needs one.
"""

from __future__ import annotations

import os
from typing import Optional

from lxml import etree

from .errors import ParseError, XMLSecurityError

#: refuse files larger than this before parsing (bytes)
MAX_XML_BYTES = 16 * 1024 * 1024


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False, remove_pis=True)


def parse_xml(path: str, *, data: Optional[bytes] = None) -> etree._ElementTree:
    """Parse ``path`` (or ``data`` on behalf of ``path``) safely; errors name file and line."""
    if data is None:
        try:
            size = os.path.getsize(path)
            if size > MAX_XML_BYTES:
                raise ParseError(f"file too large ({size} bytes > {MAX_XML_BYTES})", file=path)
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ParseError(f"cannot read: {exc.strerror or exc}", file=path) from None
    if len(data) > MAX_XML_BYTES:
        raise ParseError(f"document too large ({len(data)} bytes)", file=path)
    try:
        tree = etree.fromstring(data, parser=_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if getattr(exc, "lineno", None) else None
        msg = str(exc.msg if hasattr(exc, "msg") else exc)
        if "entity" in msg.lower() or "Entity" in msg:
            raise XMLSecurityError(f"malformed or refused entity: {msg}", file=path, line=line) from None
        raise ParseError(f"malformed XML: {msg}", file=path, line=line) from None
    except ValueError as exc:  # e.g. unicode strings with encoding declaration
        raise ParseError(f"malformed XML: {exc}", file=path) from None
    docinfo = tree.docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and (list(dtd.iterentities()) or docinfo.system_url or docinfo.public_id):
        raise XMLSecurityError("DTD entity declarations are not allowed", file=path,
                               line=1)
    if docinfo.system_url or docinfo.public_id:
        raise XMLSecurityError("external DTDs are not allowed", file=path, line=1)
    for el in tree.iter():
        if isinstance(el, etree._Entity):
            raise XMLSecurityError(f"entity reference &{el.name}; is not allowed", file=path,
                                   line=el.sourceline)
    return tree


def reject_namespaces(tree: etree._ElementTree, path: str) -> None:
    """Refuse namespaced elements or attributes: the native formats of ``tune`` have none."""
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        names = [el.tag] + [str(k) for k in el.attrib.keys()]
        for name in names:
            if name.startswith("{"):
                ns, _, local = name[1:].partition("}")
                raise ParseError(f"namespace {ns[:80]!r} not expected ({local[:40]!r})", file=path,
                                 line=el.sourceline)


def local_name(el: etree._Element) -> str:
    """Tag without namespace (comments and PIs give an empty string)."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
