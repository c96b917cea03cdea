"""WDL files (``wrappers/*.wdl``) → :class:`tune.wdl.model.Wrapper`; and back."""

from __future__ import annotations

import re
from typing import Optional

from lxml import etree

from ..adl.model import NAME_RE, Source
from ..errors import ExpressionError, ParseError
from ..xmlsafe import local_name, parse_xml, reject_namespaces
from .expr import parse_expression
from .model import Param, Wrapper, WrapperMethod

_KEY_RE = re.compile(r"^(?=.{3,256}\Z)[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")
_METHOD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def parse_wdl(path: str, data: Optional[bytes] = None) -> Wrapper:
    tree = parse_xml(path, data=data)
    root = tree.getroot()
    if local_name(root) != "wrapper":
        raise ParseError(f"expected <wrapper>, found <{local_name(root) or root.tag}>", file=path,
                         line=root.sourceline)
    reject_namespaces(tree, path)
    name = root.get("name", "").strip()
    if not NAME_RE.match(name):
        raise ParseError(f"<wrapper> needs a valid 'name' (got {name[:80]!r})", file=path, line=root.sourceline)
    wrapper = Wrapper(name=name, file=path, source=Source(path, root.sourceline))
    for el in root:
        if not isinstance(el.tag, str):
            continue
        if local_name(el) != "method":
            raise ParseError(f"unexpected <{local_name(el)}> in <wrapper>", file=path, line=el.sourceline)
        method = _parse_method(el, path)
        if method.name in wrapper.methods:
            raise ParseError(f"duplicate method {method.name!r}", file=path, line=el.sourceline)
        wrapper.methods[method.name] = method
    return wrapper


def _parse_method(el: etree._Element, path: str) -> WrapperMethod:
    line = el.sourceline
    name = (el.get("name") or "").strip()
    if not _METHOD_RE.match(name):
        raise ParseError(f"<method> needs a valid 'name' (got {name[:80]!r})", file=path, line=line)
    key = (el.get("key") or "").strip()
    if not _KEY_RE.match(key):
        raise ParseError(f"method {name}: 'key' must be a dotted path module.Class (got {key[:80]!r})",
                         file=path, line=line)
    target = (el.get("method") or name).strip()
    if not _METHOD_RE.match(target) or target.startswith("_"):
        raise ParseError(f"method {name}: bad Python method name {target[:80]!r}", file=path, line=line)
    params = []
    for p in el:
        if not isinstance(p.tag, str):
            continue
        if local_name(p) != "param":
            raise ParseError(f"unexpected <{local_name(p)}> in <method>", file=path, line=p.sourceline)
        text = p.get("value")
        if text is None:
            text = p.text or ""
        try:
            expr = parse_expression(text)
        except ExpressionError as exc:
            raise ExpressionError(exc.message, file=path, line=p.sourceline) from None
        params.append(Param(text=text, expr=expr, source=Source(path, p.sourceline)))
    return WrapperMethod(name=name, key=key, method=target, params=params, source=Source(path, line))


def to_xml(wrapper: Wrapper) -> str:
    root = etree.Element("wrapper", name=wrapper.name)
    for m in wrapper.methods.values():
        el = etree.SubElement(root, "method", name=m.name, key=m.key, method=m.method)
        for p in m.params:
            etree.SubElement(el, "param", value=p.text)
    return etree.tostring(root, pretty_print=True, encoding="unicode")
