"""Property tests of the workflow engine on random well-nested fork/join/choice diagrams.

A structure is a sequence of items; an item is an action, a fork of 2-3 branches (each a
sequence) closed by a join, or a choice of 1-3 guarded branches (maybe empty, maybe an
``else``) that merge on a fresh action.  Nesting depth ≤ 4.  Each structure becomes a Diagram,
runs on the recording runner (0-5 ms per action), and the run is checked against what the
structure says must happen.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional, Union

import networkx as nx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from test_engine_support import RecordingRunner, run_diagram, statuses, traced
from tune.adl.model import Source
from tune.diagrams.model import Diagram, DiagramNode, NodeKind
from tune.diagrams.rdl import make_action_node, make_transition
from tune.diagrams.validate import diagram_problems


@dataclass
class Act:
    id: str


@dataclass
class Seq:
    items: list["Item"]


@dataclass
class Fork:
    id: str
    branches: list[Seq]


@dataclass
class Choice:
    id: str
    #: (guard value, branch or None = straight on, ends at a final instead of the merge)
    branches: list[tuple[bool, Optional[Seq], bool]]
    otherwise: Optional[tuple[Optional[Seq], bool]]  # None: no else
    merge: Act


Item = Union[Act, Fork, Choice]


@dataclass
class Built:
    diagram: Diagram
    values: dict[str, int] = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)  # actions on the taken path
    forks: list[str] = field(default_factory=list)


@st.composite
def structures(draw, choices: bool = True, max_depth: int = 4) -> Seq:
    ids = itertools.count(1)
    budget = [draw(st.integers(1, 30))]  # roughly how many actions

    def seq(depth: int) -> Seq:
        return Seq([item(depth) for _ in range(draw(st.integers(1, 3)))])

    def item(depth: int) -> Item:
        kinds = ["act", "act"] if depth == 0 or budget[0] <= 0 else \
            ["act", "act", "fork"] + (["choice"] if choices else [])
        kind = draw(st.sampled_from(kinds))
        budget[0] -= 1
        if kind == "act":
            return Act(f"a{next(ids)}")
        if kind == "fork":
            fid = f"f{next(ids)}"
            return Fork(fid, [seq(depth - 1) for _ in range(draw(st.integers(2, 3)))])
        cid = f"c{next(ids)}"
        finals = draw(st.sampled_from([False, False, True]))  # some arms may end at a final

        def ends() -> bool:
            return finals and draw(st.booleans())

        branches = [(draw(st.booleans()), seq(depth - 1) if draw(st.booleans()) else None, ends())
                    for _ in range(draw(st.integers(1, 3)))]
        otherwise = (seq(depth - 1) if draw(st.booleans()) else None, ends()) if draw(st.booleans()) else None
        if otherwise is None and not any(v for v, _, _ in branches):
            branches[-1] = (True,) + branches[-1][1:]  # keep every run completable
        if all(e for _, _, e in branches) and (otherwise is None or otherwise[1]):
            branches[-1] = branches[-1][:2] + (False,)  # the merge stays reachable
        return Choice(cid, branches, otherwise, Act(f"m{next(ids)}"))

    return seq(max_depth)


def build(s: Seq, name: str = "random") -> Built:
    d = Diagram(name=name)
    b = Built(d)

    def node(nid: str, kind: NodeKind) -> None:
        d.nodes[nid] = make_action_node(nid, f"T.{nid}", Source()) if kind is NodeKind.ACTION else \
            DiagramNode(nid, kind)

    def edge(a: str, z: str, guard: Optional[str] = None) -> None:
        d.transitions.append(make_transition(a, z, guard, Source()))

    def emit(x: Union[Seq, Item], pred: str, guard: Optional[str], taken: bool) -> tuple[str, bool]:
        """Add ``x`` after ``pred`` (edge guarded by ``guard``); returns its single exit node and
        whether a token leaves it when ``taken`` (False when the taken path ended at a final)."""
        if isinstance(x, Seq):
            for it in x.items:
                pred, taken = emit(it, pred, guard, taken)
                guard = None
            return pred, taken
        if isinstance(x, Act):
            node(x.id, NodeKind.ACTION)
            edge(pred, x.id, guard)
            if taken:
                b.expected.append(x.id)
            return x.id, taken
        if isinstance(x, Fork):
            node(x.id, NodeKind.FORK)
            edge(pred, x.id, guard)
            join = "j" + x.id[1:]
            node(join, NodeKind.JOIN)
            alive = []
            for br in x.branches:
                last, ok = emit(br, x.id, None, taken)
                edge(last, join)
                alive.append(ok)
            b.forks.append(x.id)
            # a join missing tokens from branches that ended at a final is released once
            # nothing runs; a join that no token reached at all is never released
            return join, taken and any(alive)
        node(x.id, NodeKind.CHOICE)
        edge(pred, x.id, guard)
        node(x.merge.id, NodeKind.ACTION)
        first = None
        arms: list[tuple[str, Optional[Seq], bool]] = []
        for k, (value, br, to_final) in enumerate(x.branches):
            var = f"Sw.{x.id}_{k}"
            b.values[var] = int(value)
            arms.append((f"{var} == 1", br, to_final))
            if value and first is None:
                first = k
        if x.otherwise is not None:
            arms.append(("else", x.otherwise[0], x.otherwise[1]))
            if first is None:
                first = len(arms) - 1
        merged = False
        for k, (g, br, to_final) in enumerate(arms):
            arm_taken = taken and k == first
            if br is None:
                last, ok = x.id, arm_taken
            else:
                last, ok = emit(br, x.id, g, arm_taken)
                g = None
            if to_final:
                end = f"x{x.id[1:]}_{k}"
                node(end, NodeKind.FINAL)
                edge(last, end, g)
            else:
                edge(last, x.merge.id, g)
                merged = merged or ok
        if merged:
            b.expected.append(x.merge.id)
        return x.merge.id, merged

    node("init", NodeKind.INITIAL)
    node("end", NodeKind.FINAL)
    edge(emit(s, "init", None, True)[0], "end")
    return b


def sleeps_for(draw, built: Built) -> dict[str, float]:
    return {n: draw(st.integers(0, 5)) / 1000 for n in sorted(built.diagram.nodes)
            if built.diagram.nodes[n].kind is NodeKind.ACTION}


def check_order(built: Built, r: RecordingRunner) -> None:
    """Whatever ran respects the graph: if b is reachable from a, a ended before b started.

    In particular no action after a join starts before every action of every branch ended.
    """
    g = built.diagram.graph()
    calls = {c.node: c for c in r.calls}
    for a, ca in calls.items():
        for b in nx.descendants(g, a):
            if b in calls:
                assert ca.end <= calls[b].start, f"{b} started before {a} (its predecessor) ended"
    for f in built.forks:  # the join rule, spelled out
        join = "j" + f[1:]
        inside = (nx.descendants(g, f) - nx.descendants(g, join)) & set(calls)
        after = nx.descendants(g, join) & set(calls)
        if inside and after:
            assert max(calls[x].end for x in inside) <= min(calls[y].start for y in after)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_random_fork_join_runs_every_action_exactly_once(data):
    built = build(data.draw(structures(choices=False)))
    assert diagram_problems(built.diagram) == []
    r = RecordingRunner(sleep=sleeps_for(data.draw, built))
    run = run_diagram(built.diagram, r)
    assert run.status == "completed", run.error
    actions = sorted(n.id for n in built.diagram.action_nodes())
    assert sorted(r.ran()) == actions  # every action, exactly once
    assert statuses(run) == {a: "done" for a in actions}
    check_order(built, r)
    assert all(run.started_at <= c.start and c.end <= run.ended_at for c in r.calls)


@SETTINGS
@given(st.data())
def test_random_diagrams_with_choices_run_the_taken_path_once(data):
    built = build(data.draw(structures(choices=True)))
    assert diagram_problems(built.diagram) == []
    r = RecordingRunner(sleep=sleeps_for(data.draw, built), values=built.values)
    run = run_diagram(built.diagram, r)
    assert run.status == "completed", run.error
    assert sorted(r.ran()) == sorted(built.expected)
    assert len(set(r.ran())) == len(r.ran())
    assert statuses(run) == {a: "done" for a in built.expected}
    check_order(built, r)


@SETTINGS
@given(st.data())
def test_random_failure_stops_the_run(data):
    built = build(data.draw(structures(choices=data.draw(st.booleans()))))
    assert diagram_problems(built.diagram) == []
    assume(built.expected)  # the taken path may hold no action at all
    failing = data.draw(st.sampled_from(built.expected), label="failing")
    r = RecordingRunner(sleep=sleeps_for(data.draw, built), values=built.values, fail={failing})
    run = run_diagram(built.diagram, r)

    assert run.status == "failed"
    assert (run.error.diagram, run.error.node) == ("random", failing)
    st_ = statuses(run)  # also: no action recorded twice
    assert st_[failing] == "failed"
    assert set(st_) == {n.id for n in built.diagram.action_nodes()}  # every action accounted for
    ran = r.ran()
    assert len(set(ran)) == len(ran) and set(ran) <= set(built.expected)
    # what the runner saw is exactly what the trace says happened; skipped ones never ran
    assert set(ran) == {n for n, s in st_.items() if s in ("done", "failed")}
    # nothing that comes after the failing action ran
    assert not set(ran) & nx.descendants(built.diagram.graph(), failing)
    # no action started once the failure had happened (the engine's start decision and the
    # cancellation are ordered by the run's lock, so the engine's timestamps are exact)
    fail_end = traced(run, failing).ended
    for t in run.trace:
        if t.kind == "action" and t.status in ("done", "failed"):
            assert t.started <= fail_end, f"{t.node} started after {failing} failed"
            assert t.started <= r.call(t.node).start  # the runner was called after the decision
    # nothing started (or was still running) after the run ended
    for c in r.calls:
        assert run.started_at <= c.start <= c.end <= run.ended_at
    check_order(built, r)
