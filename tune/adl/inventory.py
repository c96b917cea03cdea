"""Ansible inventories (INI and YAML) as the node list of a host family.

A family can take its nodes from an inventory instead of a nodefile::

    <family name="dom0" protocol="ssh">
      <attribute name="inventory" value="hosts.ini"/>
      <attribute name="group" value="dom0"/>      <!-- optional; default: every host -->
    </family>

What is read (the subset of Ansible's inventory that says where and how to connect):

* groups, ``[group:children]`` / ``children:`` (a group holds the hosts of its children, to any
  depth), ``[group:vars]`` / ``vars:`` (inherited: ``all`` < parent group < child group < host);
* per host ``ansible_host`` (→ :attr:`NodeSpec.address`; the inventory name is
  :attr:`NodeSpec.host`), ``ansible_user``, ``ansible_port`` (or ``host:port``),
  ``ansible_ssh_private_key_file`` (→ ``key``); the older ``ansible_ssh_host`` /
  ``ansible_ssh_user`` / ``ansible_ssh_port`` spellings; ``tune_slots`` (default 1);
* host ranges ``node[01:03]``, ``node[a:c]``, ``node[1:9:2]``.

Other variables are ignored.  Templated values (``{{ ... }}``) cannot be resolved here and are
refused.  Hosts come in the order they first appear.  Every bad line raises
:class:`tune.errors.NodefileError` naming the file and line.

>>> text = "[dom0]\\nxen1 ansible_host=10.0.0.1 ansible_user=root\\n"
>>> [(n.host, n.address, n.user, n.source.line) for n in parse_inventory_text(text, "hosts.ini")]
[('xen1', '10.0.0.1', 'root', 2)]
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import string
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import NodefileError
from .model import NodeSpec, Source

MAX_SIZE = 4 * 1024 * 1024
MAX_HOSTS = 100_000
MAX_RANGE = 10_000
MAX_YAML_NODES = 1_000_000

_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$")
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_RANGE_RE = re.compile(r"\[([^\[\]:]*):([^\[\]:]*)(?::([^\[\]:]*))?\]")

#: variable → NodeSpec field; later names in each list win over earlier ones
_ALIASES = {
    "address": ("ansible_ssh_host", "ansible_host"),
    "user": ("ansible_ssh_user", "ansible_user"),
    "port": ("ansible_ssh_port", "ansible_port"),
    "key": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
    "slots": ("tune_slots",),
}


@dataclass
class _Group:
    name: str
    hosts: list[str] = field(default_factory=list)  # in order of appearance
    children: list[str] = field(default_factory=list)
    vars: dict[str, tuple[Any, Source]] = field(default_factory=dict)
    source: Source = field(default_factory=Source)


@dataclass
class _Inventory:
    file: Optional[str]
    groups: dict[str, _Group] = field(default_factory=dict)
    host_order: list[str] = field(default_factory=list)
    host_vars: dict[str, dict[str, tuple[Any, Source]]] = field(default_factory=dict)
    host_source: dict[str, Source] = field(default_factory=dict)

    def group(self, name: str, src: Source) -> _Group:
        if not _GROUP_RE.match(name):
            raise NodefileError(f"bad group name {name[:80]!r}", file=src.file, line=src.line)
        g = self.groups.get(name)
        if g is None:
            g = self.groups[name] = _Group(name, source=src)
        return g

    def add_host(self, group: _Group, name: str, hvars: dict[str, tuple[Any, Source]], src: Source) -> None:
        _check_host(name, src, "host name")
        if name not in self.host_vars:
            if len(self.host_order) >= MAX_HOSTS:
                raise NodefileError(f"more than {MAX_HOSTS} hosts", file=src.file, line=src.line)
            self.host_order.append(name)
            self.host_vars[name] = {}
            self.host_source[name] = src
        self.host_vars[name].update(hvars)
        if name not in group.hosts:
            group.hosts.append(name)


# ---- shared checks ----------------------------------------------------------------------------
def _check_host(name: str, src: Source, what: str) -> None:
    if _HOST_RE.match(name):
        return
    try:
        ipaddress.ip_address(name)
    except ValueError:
        raise NodefileError(f"bad {what} {name[:80]!r}", file=src.file, line=src.line) from None


def _expand_ranges(pattern: str, src: Source) -> list[str]:
    """``node[01:03]`` → node01 node02 node03 (Ansible's host ranges; several ranges multiply)."""
    m = _RANGE_RE.search(pattern)
    if not m:
        if "[" in pattern or "]" in pattern:
            raise NodefileError(f"bad host range in {pattern[:80]!r} (expected name[start:end] or "
                                "name[start:end:step])", file=src.file, line=src.line)
        return [pattern]
    start, end, step_text = m.group(1), m.group(2), m.group(3)
    head, tail = pattern[:m.start()], pattern[m.end():]

    def bad(why: str) -> NodefileError:
        return NodefileError(f"bad host range [{m.group(0)[1:-1][:40]}] in {pattern[:80]!r}: {why}",
                             file=src.file, line=src.line)

    step = 1
    if step_text is not None:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
            raise bad("the step must be a positive number")
        step = int(step_text)
    if start.isascii() and start.isdigit() and end.isascii() and end.isdigit():
        lo, hi = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if lo > hi:
            raise bad("start is after end")
        if (hi - lo) // step + 1 > MAX_RANGE:
            raise bad(f"more than {MAX_RANGE} hosts")
        values = [str(v).zfill(width) for v in range(lo, hi + 1, step)]
    elif len(start) == 1 and len(end) == 1 and start in string.ascii_letters and end in string.ascii_letters:
        if start > end:
            raise bad("start is after end")
        values = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        raise bad("expected numbers or single letters")
    out: list[str] = []
    for v in values:
        for rest in _expand_ranges(tail, src):
            out.append(head + v + rest)
            if len(out) > MAX_RANGE:
                raise bad(f"more than {MAX_RANGE} hosts")
    return out


# ---- INI --------------------------------------------------------------------------------------
def _split(line: str, src: Source) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise NodefileError(f"cannot split {line.strip()[:80]!r}: {exc}", file=src.file, line=src.line) from None


def _key_value(token: str, src: Source) -> tuple[str, str]:
    if "=" not in token:
        raise NodefileError(f"expected key=value, found {token[:80]!r}", file=src.file, line=src.line)
    k, v = token.split("=", 1)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
        raise NodefileError(f"bad variable name {k[:80]!r}", file=src.file, line=src.line)
    return k, v


def _parse_ini(text: str, file: Optional[str]) -> _Inventory:
    inv = _Inventory(file)
    inv.group("all", Source(file, 1))
    section, kind = inv.group("ungrouped", Source(file, 1)), "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        src = Source(file, number)
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = re.match(r"^\[([^\[\]\s]+)\]\s*(?:[#;].*)?$", line)
            if not m:
                raise NodefileError(f"bad section header {line[:80]!r} (expected [group], [group:vars] or "
                                    "[group:children])", file=file, line=number)
            name, _, suffix = m.group(1).partition(":")
            if suffix not in ("", "vars", "children"):
                raise NodefileError(f"unknown section kind {suffix[:40]!r} in {line[:80]!r} (expected vars or "
                                    "children)", file=file, line=number)
            section, kind = inv.group(name, src), suffix or "hosts"
            continue
        tokens = _split(line, src)
        if not tokens:
            continue
        if kind == "vars":  # key=value, spaces allowed around '=' and in the value
            k, eq, v = line.partition("=")
            if not eq:
                raise NodefileError(f"expected key=value, found {line[:80]!r}", file=file, line=number)
            k, v = _key_value(f"{k.strip()}=", src)[0], " ".join(_split(v, src))
            section.vars[k] = (v, src)
        elif kind == "children":
            if len(tokens) != 1:
                raise NodefileError(f"expected one group name a line, found {line[:80]!r}", file=file, line=number)
            child = inv.group(tokens[0], src)
            if child.name == section.name:
                raise NodefileError(f"group {child.name} cannot be its own child", file=file, line=number)
            if child.name not in section.children:
                section.children.append(child.name)
        else:
            pattern, hvars = tokens[0], dict(_key_value(t, src) for t in tokens[1:])
            typed = {k: (v, src) for k, v in hvars.items()}
            pattern, port = _split_port(pattern)
            if port is not None:
                typed.setdefault("ansible_port", (port, src))
            for host in _expand_ranges(pattern, src):
                inv.add_host(section, host, typed, src)
    return inv


def _split_port(pattern: str) -> tuple[str, Optional[str]]:
    """``host:2222`` → (host, "2222"); colons inside ``[a:b]`` ranges and IPv6 addresses stay."""
    outside = re.sub(r"\[[^\]]*\]", lambda m: "_" * len(m.group(0)), pattern)
    if outside.count(":") != 1:
        return pattern, None
    name, port = pattern.rsplit(":", 1)
    return (name, port) if name else (pattern, None)


# ---- YAML -------------------------------------------------------------------------------------
def _parse_yaml(text: str, file: Optional[str]) -> _Inventory:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NodefileError(f"bad YAML: {why}", file=file, line=line) from None
    inv = _Inventory(file)
    inv.group("all", Source(file, 1))
    if root is None:
        return inv
    budget = [MAX_YAML_NODES]

    def src_of(node: Any) -> Source:
        return Source(file, node.start_mark.line + 1)

    def tick(node: Any) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise NodefileError("inventory too large (too many YAML nodes)", file=file, line=src_of(node).line)

    def mapping(node: Any, what: str) -> list[tuple[str, Any, Source]]:
        """A mapping's (key text, value node, where the key is) triples; null counts as empty."""
        tick(node)
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            raise NodefileError(f"{what} must be a mapping", file=file, line=src_of(node).line)
        out = []
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise NodefileError(f"{what}: keys must be plain names", file=file, line=src_of(k).line)
            out.append((str(k.value), v, src_of(k)))
        return out

    def scalar(node: Any, what: str) -> Any:
        tick(node)
        if not isinstance(node, yaml.ScalarNode):
            return node  # lists and mappings are kept as they are (never used for connecting)
        return None if node.tag == "tag:yaml.org,2002:null" else str(node.value)

    def variables(node: Any, what: str) -> dict[str, tuple[Any, Source]]:
        return {k: (scalar(v, f"{what}: {k}"), ksrc) for k, v, ksrc in mapping(node, what)}

    visiting: list[str] = []

    def group(name: str, node: Any, src: Source) -> None:
        g = inv.group(name, src)
        if name in visiting:
            raise NodefileError(f"group {name} contains itself", file=file, line=src.line)
        visiting.append(name)
        for key, value, ksrc in mapping(node, f"group {name}"):
            if key == "hosts":
                for hname, hnode, hsrc in mapping(value, f"hosts of group {name}"):
                    hvars = variables(hnode, f"host {hname}")
                    for h in _expand_ranges(hname, hsrc):
                        inv.add_host(g, h, hvars, hsrc)
            elif key == "vars":
                g.vars.update(variables(value, f"vars of group {name}"))
            elif key == "children":
                for cname, cnode, csrc in mapping(value, f"children of group {name}"):
                    if cname == name:
                        raise NodefileError(f"group {name} cannot be its own child", file=file, line=csrc.line)
                    inv.group(cname, csrc)
                    if cname not in g.children:
                        g.children.append(cname)
                    group(cname, cnode, csrc)
            else:
                raise NodefileError(f"unexpected key {key[:40]!r} in group {name} (expected hosts, vars, "
                                    "children)", file=file, line=ksrc.line)
        visiting.pop()

    for name, node, nsrc in mapping(root, "an inventory"):
        group(name, node, nsrc)
    return inv


# ---- groups → node specs ----------------------------------------------------------------------
def _members(inv: _Inventory, name: str) -> tuple[list[str], dict[str, list[str]]]:
    """The hosts of group ``name`` (with its descendants) and, per host, its groups from the
    most general to the most specific (for variable precedence)."""
    # depth of every group below 'all', for precedence (parents before children)
    parents: dict[str, list[str]] = {n: [] for n in inv.groups}
    for g in inv.groups.values():
        for c in g.children:
            parents[c].append(g.name)

    depth: dict[str, int] = {}

    def depth_of(n: str, stack: tuple[str, ...] = ()) -> int:
        if n in depth:
            return depth[n]
        if n in stack:
            raise NodefileError(f"group {n} is its own ancestor ({' -> '.join(stack + (n,))})", file=inv.file,
                                line=inv.groups[n].source.line)
        d = 0 if n == "all" else 1 + max([depth_of(p, stack + (n,)) for p in parents[n]] or [0])
        depth[n] = d
        return d

    for n in inv.groups:
        depth_of(n)

    host_groups: dict[str, list[str]] = {h: ["all"] for h in inv.host_order}
    for g in inv.groups.values():
        for h in g.hosts:
            for anc in _ancestors(inv, g.name, parents) | {g.name}:
                if anc not in host_groups[h]:
                    host_groups[h].append(anc)
    for gs in host_groups.values():
        gs.sort(key=lambda n: (depth[n], n))

    if name == "all":
        return list(inv.host_order), host_groups
    wanted = {name} | _descendants(inv, name)
    members = [h for h in inv.host_order if any(h in inv.groups[g].hosts for g in wanted)]
    return members, host_groups


def _ancestors(inv: _Inventory, name: str, parents: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    todo = list(parents[name])
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(parents[p])
    return out


def _descendants(inv: _Inventory, name: str) -> set[str]:
    out: set[str] = set()
    todo = list(inv.groups[name].children)
    while todo:
        c = todo.pop()
        if c not in out:
            out.add(c)
            todo.extend(inv.groups[c].children)
    return out


def _spec(inv: _Inventory, host: str, groups: list[str]) -> NodeSpec:
    merged: dict[str, tuple[Any, Source]] = {}
    for g in groups:
        merged.update(inv.groups[g].vars)
    merged.update(inv.host_vars[host])
    hsrc = inv.host_source[host]
    values: dict[str, Any] = {}
    for fieldname, names in _ALIASES.items():
        for n in names:
            if n in merged and merged[n][0] is not None:
                values[fieldname] = merged[n]
    for fieldname, (v, src) in values.items():
        if not isinstance(v, str):
            raise NodefileError(f"host {host}: {fieldname} must be a plain value", file=src.file, line=src.line)
        if "{{" in v or "{%" in v:
            raise NodefileError(f"host {host}: templated value {v[:80]!r} cannot be resolved by tune",
                                file=src.file, line=src.line)

    def num(fieldname: str, lo: int, hi: int) -> Optional[int]:
        if fieldname not in values:
            return None
        v, src = values[fieldname]
        if not (v.isascii() and v.isdigit()) or not lo <= int(v) <= hi:
            raise NodefileError(f"host {host}: bad {fieldname} {v[:20]!r}", file=src.file, line=src.line)
        return int(v)

    address = user = key = None
    if "address" in values:
        address, src = values["address"]
        _check_host(address, src, f"ansible_host for {host}")
    if "user" in values:
        user, src = values["user"]
        if not _USER_RE.match(user):
            raise NodefileError(f"host {host}: bad user name {user[:40]!r}", file=src.file, line=src.line)
    if "key" in values:
        key = values["key"][0]
    port = num("port", 1, 65535)
    slots = num("slots", 1, 100_000) or 1
    return NodeSpec(host=host, user=user, port=port, slots=slots, key=key, address=address, source=hsrc)


def _looks_like_yaml(text: str) -> bool:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "---":
            if line == "---":
                return True
            continue
        return bool(re.match(r"^[A-Za-z0-9_.-]+:(\s.*)?$", line)) and not line.startswith("[")
    return False


def parse_inventory_text(text: str, file: Optional[str] = None, *, group: Optional[str] = None,
                         fmt: Optional[str] = None) -> list[NodeSpec]:
    """Parse inventory ``text`` (``fmt`` ``"ini"`` or ``"yaml"``; guessed when None) and return
    the hosts of ``group`` (every host when None)."""
    if fmt is None:
        ext = os.path.splitext(file or "")[1].lower()
        fmt = "yaml" if ext in (".yml", ".yaml", ".json") else "ini" if ext == ".ini" else \
            ("yaml" if _looks_like_yaml(text) else "ini")
    if fmt not in ("ini", "yaml"):
        raise NodefileError(f"unknown inventory format {fmt!r} (expected ini or yaml)", file=file)
    inv = _parse_yaml(text, file) if fmt == "yaml" else _parse_ini(text, file)
    grouped = {h for g in inv.groups.values() if g.name not in ("all", "ungrouped") for h in g.hosts}
    inv.group("ungrouped", Source(file, 1)).hosts = [h for h in inv.host_order if h not in grouped]
    name = group or "all"
    if name not in inv.groups:
        known = ", ".join(sorted(n for n in inv.groups if n not in ("all", "ungrouped"))) or "none"
        raise NodefileError(f"no group {name!r} in the inventory (groups: {known})", file=file)
    members, host_groups = _members(inv, name)
    return [_spec(inv, h, host_groups[h]) for h in members]


def parse_inventory(path: str, group: Optional[str] = None) -> list[NodeSpec]:
    """Read an Ansible inventory file (INI or YAML) and return the nodes of ``group``."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_SIZE + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise NodefileError(f"cannot read inventory: {exc}", file=path) from None
    if len(text) > MAX_SIZE:
        raise NodefileError("inventory too large", file=path)
    return parse_inventory_text(text, path, group=group)
