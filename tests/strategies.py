"""Hypothesis strategies shared by the language tests: valid CDL, WDL, RDL, guards, nodefiles,
and mutations of valid documents.

Generated values are *model objects* (the dataclasses the parsers produce); the tests serialise
them with the modules' own writers and check that parsing gives them back.
"""

from __future__ import annotations

import ipaddress
import string
from typing import Any, Callable, Optional

from hypothesis import strategies as st
from lxml import etree

from tune.adl.cdl import FAMILY_FIELDS
from tune.adl.model import (ALLOCATIONS, PROTOCOLS, RESERVED_COMPONENT_ATTRIBUTES, Application, Binding,
                            ComponentType, DiagramRef, Family, Multiplicity, NodeSpec)
from tune.diagrams.actions import Assign, Call, Create, Remove, Target
from tune.diagrams.guards import Guard
from tune.wdl.expr import Literal, Template, Var

# --- text --------------------------------------------------------------------------------
#: characters XML 1.0 can carry (no C0 controls but tab/newline, no surrogates, no U+FFFE/FFFF)
XML_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | \
    st.sampled_from("\t\n")
xml_text = st.text(XML_CHARS, max_size=20)
#: hostile but XML-compatible strings: shell metacharacters, unicode, newlines
hostile_text = st.sampled_from(['"; rm -rf /', "$(x)", "`id`", "a\nb", "\u00e9t\u00e9", "\u202e", "a b",
                                "../../etc", "x" * 65]) | xml_text

_ALNUM = string.ascii_letters + string.digits + "_"
#: identifiers valid everywhere (CDL names, WDL/RDL identifiers): no '.', no '-'
ident = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_letters + "_"),
                  st.text(_ALNUM, max_size=8)).filter(lambda s: s not in ("and", "or", "not", "true", "false"))
#: CDL names may also hold '.' and '-' (up to 64 characters)
cdl_name = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_letters + "_"),
                     st.text(_ALNUM + ".-", max_size=63))
#: a component-like root of a $variable: not this/new/arg, not $argN
var_root = ident.filter(lambda s: s not in ("this", "new") and not (s.startswith("arg") and s[3:].isdigit()))


# --- CDL --------------------------------------------------------------------------------
def multiplicities() -> st.SearchStrategy[Multiplicity]:
    bounded = st.tuples(st.integers(0, 5), st.integers(1, 9)).filter(lambda t: t[0] <= t[1]) \
        .map(lambda t: Multiplicity(t[0], t[1]))
    return bounded | st.integers(0, 5).map(lambda lo: Multiplicity(lo, None))


@st.composite
def families(draw: Callable[..., Any], name: str) -> Family:
    opt = lambda s: st.none() | s  # noqa: E731
    attrs = draw(st.dictionaries(cdl_name, xml_text, max_size=3))
    return Family(name=name, nodefile=draw(opt(st.sampled_from(["nodes", "grid/nodes.txt", ""]))),
                  user=draw(opt(xml_text)), protocol=draw(st.sampled_from(PROTOCOLS)),
                  dirlocal=draw(xml_text.filter(bool)), python=draw(opt(xml_text)), key=draw(opt(xml_text)),
                  port=draw(opt(st.integers(1, 65535))), allocation=draw(st.sampled_from(ALLOCATIONS)),
                  driver=draw(opt(st.sampled_from(["sim", "xen", "qemu"]))), attributes=attrs)


@st.composite
def components(draw: Callable[..., Any], name: str, family_names: list[str]) -> ComponentType:
    attr_name = cdl_name.filter(lambda s: s not in RESERVED_COMPONENT_ATTRIBUTES)
    attrs = draw(st.dictionaries(attr_name, xml_text, max_size=4))
    secret = draw(st.frozensets(st.sampled_from(sorted(attrs)), max_size=2)) if attrs else frozenset()
    return ComponentType(name=name, wrapper=draw(st.none() | st.sampled_from(["w/a.wdl", "x.wdl"])),
                         legacy_file=draw(st.none() | st.sampled_from(["a.tar.gz", "bin/b.tgz"])),
                         host_family=draw(st.none() | st.sampled_from(family_names)) if family_names else None,
                         initial=draw(st.integers(0, 1000)), attributes=attrs, secret=secret)


@st.composite
def applications(draw: Callable[..., Any], path: str = "app.xml") -> Application:
    fam_names = draw(st.lists(cdl_name, max_size=3, unique=True))
    comp_names = draw(st.lists(cdl_name, min_size=1, max_size=4, unique=True))
    app = Application(name=draw(cdl_name), path=path)
    for n in fam_names:
        app.families[n] = draw(families(n))
    for n in comp_names:
        app.components[n] = draw(components(n, fam_names))
    pairs = draw(st.lists(st.tuples(st.sampled_from(comp_names), st.sampled_from(comp_names)), max_size=4,
                          unique_by=lambda p: frozenset(p)))
    for a, b in pairs:
        app.bindings.append(Binding(a, b, draw(multiplicities()), draw(multiplicities())))
    for event in draw(st.lists(cdl_name, max_size=3, unique=True)):
        app.diagrams[event] = DiagramRef(event, draw(st.sampled_from(["d/start.xml", "x.xml"])))
    return app


# --- expressions (WDL parameters, action arguments) --------------------------------------
def variables() -> st.SearchStrategy[Var]:
    path = st.lists(ident, max_size=2).map(tuple)
    return st.one_of(
        st.builds(Var, st.sampled_from(["this", "new"]), path),
        st.builds(lambda p, i: Var("arg", p, i), path, st.none() | st.integers(2, 12)),
        st.builds(Var, var_root, path))


def expressions(literal: st.SearchStrategy[str] = xml_text) -> st.SearchStrategy[Any]:
    """Expressions as :func:`tune.wdl.expr.parse_expression` returns them (no adjacent literals)."""
    lit = literal.filter(bool).map(Literal)

    def template(parts: list[Any]) -> Any:
        merged: list[Any] = []
        for p in parts:  # parsing never yields two literals in a row
            if merged and isinstance(p, Literal) and isinstance(merged[-1], Literal):
                merged[-1] = Literal(merged[-1].value + p.value)
            else:
                merged.append(p)
        return merged[0] if len(merged) == 1 else Template(tuple(merged))

    return st.one_of(st.just(Literal("")), lit, variables(),
                     st.lists(lit | variables(), min_size=2, max_size=4).map(template))


# --- WDL -------------------------------------------------------------------------------
keys = st.lists(ident, min_size=2, max_size=4).map(".".join)
#: a text safe as an RDL assignment value (no quotes, ';', leading/trailing space)
SAFE_VALUE = st.text(string.ascii_letters + string.digits + "/._-:", min_size=1, max_size=10)


# --- RDL actions ------------------------------------------------------------------------
def targets(allow_comp: bool = True) -> st.SearchStrategy[Target]:
    via = st.none() | ident
    options = [st.builds(lambda i, v: Target("arg", index=i, via=v), st.integers(1, 4), via),
               st.builds(lambda v: Target("new", via=v), via)]
    if allow_comp:
        options.append(st.builds(lambda c: Target("comp", component=c), ident))
    return st.one_of(*options)


def actions() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(Call, targets(), ident, st.lists(expressions(), max_size=3).map(tuple)),
        st.builds(Create, ident, st.integers(1, 10_000)),
        st.builds(Remove, targets()),
        st.builds(Assign, targets(), ident, expressions(SAFE_VALUE)))


# --- guards ------------------------------------------------------------------------------
def guard_leaves() -> st.SearchStrategy[Guard]:
    nums = st.integers(-10**6, 10**6).map(float) | st.integers(-10**6, 10**6).map(lambda i: i / 1000)
    return st.one_of(
        nums.map(lambda v: Guard("num", value=v)),
        st.text(XML_CHARS, max_size=8).map(lambda s: Guard("str", value=s)),
        st.booleans().map(lambda b: Guard("bool", value=b)),
        variables().map(lambda v: Guard("var", value=v)),
        ident.map(lambda c: Guard("count", value=(c, "count"))),
        st.tuples(ident, ident.filter(lambda a: a != "count")).map(lambda t: Guard("attr", value=t)))


def guards() -> st.SearchStrategy[Guard]:
    def extend(children: st.SearchStrategy[Guard]) -> st.SearchStrategy[Guard]:
        return st.one_of(
            children.map(lambda c: Guard("not", (c,))),
            st.lists(children, min_size=2, max_size=3).map(lambda cs: Guard("and", tuple(cs))),
            st.lists(children, min_size=2, max_size=3).map(lambda cs: Guard("or", tuple(cs))),
            st.builds(lambda a, op, b: Guard("cmp", (a, b), op), children,
                      st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), children))
    return st.recursive(guard_leaves(), extend, max_leaves=8)


# --- RDL diagrams: structured workflows, valid by construction ----------------------------
def blocks() -> st.SearchStrategy[Any]:
    """A workflow block: ("action", [actions]) | ("seq", [b]) | ("fork", [b]) | ("choice", ...) | ("loop", b)."""
    leaf = st.lists(actions(), min_size=1, max_size=3).map(lambda a: ("action", a))
    guard_text = guards().map(str)

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda bs: ("seq", bs)),
            st.lists(inner, min_size=2, max_size=3).map(lambda bs: ("fork", bs)),
            st.tuples(st.lists(st.tuples(guard_text, inner), min_size=1, max_size=2), st.booleans())
            .map(lambda t: ("choice", t[0], t[1])),
            st.tuples(guard_text, inner).map(lambda t: ("loop", t[0], t[1])))
    return st.recursive(leaf, extend, max_leaves=6)


def diagram_xml(block: Any, name: str = "d", on_failure: Optional[str] = None) -> tuple[str, dict[str, list]]:
    """Compile a block into RDL text; also return each action node's actions."""
    from tune.diagrams.actions import unparse_action

    root = etree.Element("diagram", name=name)
    if on_failure:
        root.set("on-failure", on_failure)
    transitions: list[tuple[str, str, Optional[str]]] = []
    expected: dict[str, list] = {}
    counter = [0]

    def node(kind: str, text: Optional[str] = None) -> str:
        counter[0] += 1
        nid = f"{kind[0]}{counter[0]}"
        el = etree.SubElement(root, kind, id=nid)
        if text is not None:
            el.text = text
        return nid

    def compile_(b: Any, nxt: str) -> str:
        kind = b[0]
        if kind == "action":
            nid = node("action", "; ".join(unparse_action(a) for a in b[1]))
            expected[nid] = list(b[1])
            transitions.append((nid, nxt, None))
            return nid
        if kind == "seq":
            for inner in reversed(b[1]):
                nxt = compile_(inner, nxt)
            return nxt
        if kind == "fork":
            f, j = node("fork"), node("join")
            transitions.append((j, nxt, None))
            for inner in b[1]:
                transitions.append((f, compile_(inner, j), None))
            return f
        if kind == "choice":
            c = node("choice")
            for g, inner in b[1]:
                transitions.append((c, compile_(inner, nxt), g))
            if b[2]:
                transitions.append((c, nxt, "else"))
            return c
        assert kind == "loop"
        c = node("choice")
        transitions.append((c, compile_(b[2], c), b[1]))
        transitions.append((c, nxt, "else"))
        return c

    init = node("initial")
    final = node("final")
    transitions.append((init, compile_(block, final), None))
    for a, b, g in transitions:
        el = etree.SubElement(root, "transition", {"from": a, "to": b})
        if g is not None:
            el.set("guard", g)
    return etree.tostring(root, pretty_print=True, encoding="unicode"), expected


# --- nodefiles ---------------------------------------------------------------------------
hostnames = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_letters + string.digits),
                      st.text(string.ascii_letters + string.digits + ".-_", max_size=12))
hosts = hostnames | st.ip_addresses(v=6).map(str) | st.ip_addresses(v=4).map(str)
users = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_letters + "_"),
                  st.text(_ALNUM + ".-", max_size=10))


@st.composite
def node_lists(draw: Callable[..., Any]) -> list[NodeSpec]:
    entries = draw(st.lists(st.tuples(st.none() | users, hosts, st.none() | st.integers(1, 65535)),
                            max_size=6, unique=True))
    return [NodeSpec(host=h, user=u, port=p, slots=draw(st.integers(1, 3))) for u, h, p in entries]


# --- mutations of valid documents ---------------------------------------------------------
@st.composite
def mutated(draw: Callable[..., Any], data: bytes, xml: bool = True) -> bytes:
    """``data`` with one mutation: byte flips, truncation, or (XML) element deletion or
    attribute value replacement with random text."""
    kinds = ["flip", "truncate"] + (["delete", "attribute"] if xml else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.integers(0, 255))
        return bytes(buf)
    if kind == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    root = etree.fromstring(data)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    if kind == "delete":
        victims = [e for e in elements if e is not root]
        if victims:
            victim = draw(st.sampled_from(victims))
            victim.getparent().remove(victim)
    else:
        with_attrs = [e for e in elements if e.attrib]
        if with_attrs:
            el = draw(st.sampled_from(with_attrs))
            key = draw(st.sampled_from(sorted(el.attrib.keys())))
            el.set(key, draw(hostile_text))
    return etree.tostring(root)


__all__ = ["FAMILY_FIELDS", "actions", "applications", "blocks", "diagram_xml", "expressions", "guards",
           "hostile_text", "ident", "ipaddress", "keys", "mutated", "node_lists", "variables", "xml_text"]
