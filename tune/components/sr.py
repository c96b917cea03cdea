"""The System Representation: the one graph of instances, nodes, bindings and placements.

Everything the manager knows about what runs where is here, and only here.  Reconfigurations
change it through these methods (each checks its invariant: multiplicities, slots, lifecycle),
under one lock, so concurrent diagram branches never see a half-applied change.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Iterable, Optional

import networkx as nx

from ..adl.model import Application, Binding
from ..errors import AllocationError, MultiplicityError, TuneError
from .component import TRANSITIONS, Component, Lifecycle, LifecycleError, Node


class UnknownInstance(TuneError):
    """An event or action names an instance that does not exist."""

    exit_code = 1


def _i(name: str) -> tuple[str, str]:
    return ("i", name)


def _n(name: str) -> tuple[str, str]:
    return ("n", name)


class SystemRepresentation:
    """Instances (``("i", srname)``) and nodes (``("n", id)``) in one ``networkx`` multigraph."""

    def __init__(self, app_name: str = "", bindings: Iterable[Binding] = ()) -> None:
        self.app_name = app_name
        self.graph = nx.MultiDiGraph()
        self.lock = threading.RLock()
        self._counters: dict[str, int] = {}
        # indexes kept in step with the graph (allocation asks them for every new instance)
        self._nodes: dict[str, Node] = {}
        self._by_type: dict[str, dict[str, Component]] = {}
        self._slots: dict[str, int] = {}
        self.bindings: dict[tuple[str, str], Binding] = {b.key: b for b in bindings}
        self.version = 0  # bumped on every change (status, journal)

    # ---- nodes -------------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        with self.lock:
            self.graph.add_node(_n(node.id), obj=node)
            self._nodes[node.id] = node
            self.version += 1
            return node

    def node(self, node_id: str) -> Node:
        try:
            obj: Node = self.graph.nodes[_n(node_id)]["obj"]
            return obj
        except KeyError:
            raise UnknownInstance(f"no node {node_id!r}") from None

    def nodes(self, family: Optional[str] = None) -> list[Node]:
        with self.lock:
            return [n for n in self._nodes.values() if family is None or n.family == family]

    def used_slots(self, node_id: str) -> int:
        return self._slots.get(node_id, 0)

    def free_slots(self, node_id: str) -> int:
        return self.node(node_id).slots - self.used_slots(node_id)

    def instances_on(self, node_id: str) -> list[Component]:
        with self.lock:
            return [self.graph.nodes[u]["obj"] for u, _v, d in self.graph.in_edges(_n(node_id), data=True)
                    if d.get("kind") == "placement"]

    def set_node_state(self, node_id: str, state: str) -> None:
        with self.lock:
            self.node(node_id).state = state
            self.version += 1

    # ---- instances ---------------------------------------------------------------------
    def next_name(self, comp_type: str) -> str:
        with self.lock:
            n = self._counters.get(comp_type, 0) + 1
            self._counters[comp_type] = n
            return f"{comp_type}{n}"

    def add_instance(self, comp: Component) -> Component:
        with self.lock:
            if _i(comp.srname) in self.graph:
                raise TuneError(f"instance {comp.srname} already exists")
            self.graph.add_node(_i(comp.srname), obj=comp)
            self._by_type.setdefault(comp.type, {})[comp.srname] = comp
            self.version += 1
            return comp

    def remove_instance(self, srname: str) -> Component:
        with self.lock:
            comp = self.instance(srname)
            self._unplace(srname)
            self.graph.remove_node(_i(srname))
            self._by_type.get(comp.type, {}).pop(srname, None)
            self.version += 1
            return comp

    def instance(self, srname: str) -> Component:
        try:
            obj: Component = self.graph.nodes[_i(srname)]["obj"]
            return obj
        except (KeyError, TypeError):
            raise UnknownInstance(f"no instance {str(srname)[:80]!r}") from None

    def has_instance(self, srname: str) -> bool:
        return _i(srname) in self.graph

    def instances(self, comp_type: Optional[str] = None) -> list[Component]:
        with self.lock:
            if comp_type is not None:
                out = list(self._by_type.get(comp_type, {}).values())
            else:
                out = [c for group in self._by_type.values() for c in group.values()]
        return sorted(out, key=lambda c: (c.type, _natural(c.srname)))

    def count(self, comp_type: str) -> int:
        return len(self._by_type.get(comp_type, ()))

    # ---- placement ---------------------------------------------------------------------
    def place(self, srname: str, node_id: str, *, check_slots: bool = True, uses_slot: bool = True) -> None:
        """Put ``srname`` on ``node_id``; ``uses_slot=False`` for components placed beside another."""
        with self.lock:
            comp = self.instance(srname)
            node = self.node(node_id)
            if uses_slot and check_slots and self.free_slots(node_id) <= 0:
                raise AllocationError(f"node {node_id} has no free slot for {srname}")
            self._unplace(srname)
            self.graph.add_edge(_i(srname), _n(node_id), kind="placement", slot=uses_slot)
            if uses_slot:
                self._slots[node_id] = self._slots.get(node_id, 0) + 1
            comp.node = node.id
            comp.uses_slot = uses_slot
            self.version += 1

    def _unplace(self, srname: str) -> None:
        for _u, v, k, d in list(self.graph.out_edges(_i(srname), keys=True, data=True)):
            if d.get("kind") == "placement":
                self.graph.remove_edge(_i(srname), v, key=k)
                if d.get("slot", True):
                    self._slots[v[1]] = self._slots.get(v[1], 0) - 1

    def unplace(self, srname: str) -> None:
        with self.lock:
            self._unplace(srname)
            self.instance(srname).node = None
            self.version += 1

    # ---- binding controller ------------------------------------------------------------
    def binding_between(self, type_a: str, type_b: str) -> Optional[Binding]:
        return self.bindings.get((type_a, type_b)) or self.bindings.get((type_b, type_a))

    def bind(self, a: str, b: str, *, check: bool = True) -> None:
        """Bind instance ``a`` to ``b`` along the binding between their types."""
        with self.lock:
            ca, cb = self.instance(a), self.instance(b)
            spec = self.binding_between(ca.type, cb.type)
            if spec is None:
                raise MultiplicityError(f"no binding between {ca.type} and {cb.type}")
            if spec.source != ca.type:
                ca, cb = cb, ca
            if self._bound_pair(ca.srname, cb.srname):
                return
            if check:
                if spec.to_multiplicity.upper is not None and \
                        len(self.bound(ca.srname, cb.type)) >= spec.to_multiplicity.upper:
                    raise MultiplicityError(f"{ca.srname} is already bound to {spec.to_multiplicity.upper} "
                                            f"{cb.type} (multiplicity {spec.to_multiplicity})")
                if spec.from_multiplicity.upper is not None and \
                        len(self.bound(cb.srname, ca.type)) >= spec.from_multiplicity.upper:
                    raise MultiplicityError(f"{cb.srname} is already bound to {spec.from_multiplicity.upper} "
                                            f"{ca.type} (multiplicity {spec.from_multiplicity})")
            self.graph.add_edge(_i(ca.srname), _i(cb.srname), kind="binding")
            self.version += 1

    def _bound_pair(self, a: str, b: str) -> bool:
        data = self.graph.get_edge_data(_i(a), _i(b)) or {}
        return any(d.get("kind") == "binding" for d in data.values())

    def unbind(self, a: str, b: str) -> None:
        with self.lock:
            for u, v in ((a, b), (b, a)):
                data = self.graph.get_edge_data(_i(u), _i(v)) or {}
                for key, d in list(data.items()):
                    if d.get("kind") == "binding":
                        self.graph.remove_edge(_i(u), _i(v), key=key)
            self.version += 1

    def bound(self, srname: str, comp_type: Optional[str] = None) -> list[Component]:
        """Instances bound to ``srname`` (either direction), optionally of one type."""
        with self.lock:
            key = _i(srname)
            if key not in self.graph:
                raise UnknownInstance(f"no instance {str(srname)[:80]!r}")
            names = set()
            for _u, v, d in self.graph.out_edges(key, data=True):
                if d.get("kind") == "binding":
                    names.add(v[1])
            for u, _v, d in self.graph.in_edges(key, data=True):
                if d.get("kind") == "binding":
                    names.add(u[1])
            out = [self.instance(n) for n in names]
        return sorted((c for c in out if comp_type is None or c.type == comp_type), key=lambda c: _natural(c.srname))

    def interfaces(self, srname: str) -> dict[str, list[str]]:
        """Client interfaces (types this instance uses) and server interfaces (types that use it)."""
        comp = self.instance(srname)
        client = sorted({b.target for b in self.bindings.values() if b.source == comp.type})
        server = sorted({b.source for b in self.bindings.values() if b.target == comp.type})
        return {"client": client, "server": server}

    def binding_problems(self, spec_filter: Optional[Binding] = None) -> list[str]:
        """Bound counts outside their multiplicities (empty when the SR is consistent)."""
        out = []
        with self.lock:
            for spec in self.bindings.values():
                if spec_filter is not None and spec.key != spec_filter.key:
                    continue
                for c in self.instances(spec.source):
                    n = len(self.bound(c.srname, spec.target)) if spec.source != spec.target else 0
                    if spec.source != spec.target and not spec.to_multiplicity.contains(n):
                        out.append(f"{c.srname} bound to {n} {spec.target} (needs {spec.to_multiplicity})")
                for c in self.instances(spec.target):
                    n = len(self.bound(c.srname, spec.source)) if spec.source != spec.target else 0
                    if spec.source != spec.target and not spec.from_multiplicity.contains(n):
                        out.append(f"{c.srname} bound to {n} {spec.source} (needs {spec.from_multiplicity})")
        return out

    # ---- lifecycle controller / attribute controller -----------------------------------
    def set_state(self, srname: str, state: Lifecycle, *, error: Optional[str] = None) -> None:
        with self.lock:
            comp = self.instance(srname)
            if state not in TRANSITIONS[comp.state]:
                raise LifecycleError(f"{srname}: cannot go from {comp.state.value} to {state.value}")
            comp.state = state
            comp.error = error if state is Lifecycle.FAILED else None
            self.version += 1

    def set_attribute(self, srname: str, name: str, value: str) -> None:
        with self.lock:
            self.instance(srname).attributes[name] = value
            self.version += 1

    # ---- serialisation -----------------------------------------------------------------
    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        with self.lock:
            bindings = sorted([u[1], v[1]] for u, v, d in self.graph.edges(data=True)
                              if d.get("kind") == "binding")
            return {
                "application": self.app_name,
                "version": self.version,
                "nodes": [n.to_dict() for n in sorted(self.nodes(), key=lambda n: _natural(n.id))],
                "instances": [c.to_dict(redact=redact) for c in self.instances()],
                "bindings": bindings,
                "counters": dict(sorted(self._counters.items())),
                "binding_types": [[b.source, b.target, str(b.from_multiplicity), str(b.to_multiplicity)]
                                  for b in self.bindings.values()],
            }

    def to_json(self, *, redact: bool = True) -> str:
        return json.dumps(self.to_dict(redact=redact), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SystemRepresentation":
        from ..adl.model import Multiplicity
        bindings = [Binding(s, t, Multiplicity.parse(f), Multiplicity.parse(to))
                    for s, t, f, to in data.get("binding_types", [])]
        sr = cls(data.get("application", ""), bindings)
        for n in data.get("nodes", []):
            sr.add_node(Node.from_dict(n))
        for c in data.get("instances", []):
            comp = Component.from_dict(c)
            node = comp.node
            comp.node = None
            sr.add_instance(comp)
            if node is not None:
                sr.place(comp.srname, node, check_slots=False, uses_slot=comp.uses_slot)
        for a, b in data.get("bindings", []):
            sr.graph.add_edge(_i(a), _i(b), kind="binding")
        sr._counters = dict(data.get("counters", {}))
        sr.version = int(data.get("version", 0))
        return sr

    @classmethod
    def from_json(cls, text: str) -> "SystemRepresentation":
        return cls.from_dict(json.loads(text))

    def placement(self) -> dict[str, Optional[str]]:
        return {c.srname: c.node for c in self.instances()}

    @classmethod
    def for_application(cls, app: Application) -> "SystemRepresentation":
        return cls(app.name, app.bindings)


def _natural(name: str) -> tuple[str, int]:
    i = len(name)
    while i > 0 and name[i - 1].isdigit():
        i -= 1
    return (name[:i], int(name[i:]) if i < len(name) else -1)
