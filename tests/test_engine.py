"""The workflow engine on hand-built diagrams: order, real concurrency, choices, failure, cancel."""

from __future__ import annotations

import threading
import time

import pytest

from test_engine_support import RecordingRunner, diagram, ended_before, run_diagram, statuses, traced
from tune.diagrams.engine import DiagramRun, Engine, raise_for_status
from tune.diagrams.validate import diagram_problems
from tune.errors import ActionError, CommandFailed, DiagramCancelled


def valid(d):
    assert diagram_problems(d) == []
    return d


# --- sequences ------------------------------------------------------------------------------
def test_empty_diagram_completes():
    run = run_diagram(valid(diagram("empty", "i:initial end:final", [("i", "end")])), RecordingRunner())
    assert run.status == "completed" and run.error is None
    assert statuses(run, "final") == {"end": "done"}


def test_sequence_runs_in_order_once_each():
    d = valid(diagram("seq", "i:initial a:action b:action c:action end:final",
                      [("i", "a"), ("a", "b"), ("b", "c"), ("c", "end")]))
    r = RecordingRunner(sleep=0.01)
    run = run_diagram(d, r)
    assert run.status == "completed"
    assert r.ran() == ["a", "b", "c"]
    assert ended_before(r, "a", "b") and ended_before(r, "b", "c")
    assert statuses(run) == {"a": "done", "b": "done", "c": "done"}
    assert run.started_at <= r.call("a").start and r.call("c").end <= run.ended_at


def test_missing_initial_is_a_failed_run():
    run = run_diagram(diagram("noinit", "a:action end:final", [("a", "end")]), RecordingRunner())
    assert run.status == "failed" and isinstance(run.error, ActionError) and run.error.diagram == "noinit"


# --- forks and joins ------------------------------------------------------------------------
def fork_diagram(k: int) -> object:
    names = [f"b{n}" for n in range(1, k + 1)]
    nodes = "i:initial f:fork j:join after:action end:final " + " ".join(f"{b}:action" for b in names)
    edges = [("i", "f"), ("j", "after"), ("after", "end")]
    for b in names:
        edges += [("f", b), (b, "j")]
    return valid(diagram(f"fork{k}", nodes, edges))


@pytest.mark.parametrize("k", [2, 3])
def test_fork_runs_every_branch_and_join_waits_for_all(k):
    sleeps = {f"b{n}": 0.02 * n for n in range(1, k + 1)}
    r = RecordingRunner(sleep=sleeps)
    run = run_diagram(fork_diagram(k), r)
    assert run.status == "completed"
    assert sorted(r.ran()) == sorted(list(sleeps) + ["after"])
    for b in sleeps:
        assert ended_before(r, b, "after"), f"'after' started before {b} ended"
    assert r.ran()[-1] == "after"


def test_fork_branches_really_run_at_the_same_time():
    """Measured, not guessed: two 0.3 s branches take well under 0.6 s and their intervals overlap."""
    r = RecordingRunner(sleep={"b1": 0.3, "b2": 0.3})
    t0 = time.monotonic()
    run = run_diagram(fork_diagram(2), r)
    elapsed = time.monotonic() - t0
    assert run.status == "completed"
    assert elapsed < 0.45, f"fork of two 0.3 s branches took {elapsed:.3f} s"
    b1, b2 = r.call("b1"), r.call("b2")
    assert b1.start < b2.end and b2.start < b1.end, (b1, b2)
    overlap = min(b1.end, b2.end) - max(b1.start, b2.start)
    assert overlap > 0.25, f"branches overlapped only {overlap:.3f} s"
    assert b1.thread != b2.thread


def test_three_branches_run_at_the_same_time():
    r = RecordingRunner(sleep={"b1": 0.2, "b2": 0.2, "b3": 0.2})
    t0 = time.monotonic()
    run_diagram(fork_diagram(3), r)
    assert time.monotonic() - t0 < 0.35
    starts = [r.call(b).start for b in ("b1", "b2", "b3")]
    ends = [r.call(b).end for b in ("b1", "b2", "b3")]
    assert max(starts) < min(ends)  # one instant when all three were running


def test_nested_forks():
    # i -> f1 -> [ f2 -> [a, b] -> j2 -> c ] , [ d ] -> j1 -> e
    d = valid(diagram("nested", "i:initial f1:fork f2:fork a:action b:action j2:join c:action d:action "
                                "j1:join e:action end:final",
                      [("i", "f1"), ("f1", "f2"), ("f1", "d"), ("f2", "a"), ("f2", "b"), ("a", "j2"), ("b", "j2"),
                       ("j2", "c"), ("c", "j1"), ("d", "j1"), ("j1", "e"), ("e", "end")]))
    r = RecordingRunner(sleep={"a": 0.1, "b": 0.15, "d": 0.2, "c": 0.01})
    t0 = time.monotonic()
    run = run_diagram(d, r)
    assert run.status == "completed"
    assert sorted(r.ran()) == ["a", "b", "c", "d", "e"]
    assert ended_before(r, "a", "c") and ended_before(r, "b", "c")
    for x in "abcd":
        assert ended_before(r, x, "e")
    # a, b and d all ran together; the whole took about max(b + c, d), not the sum
    assert r.call("d").start < r.call("a").end and r.call("d").start < r.call("b").end
    assert time.monotonic() - t0 < 0.35


def test_branch_ending_at_final_releases_join_when_quiescent():
    # branch 1: a -> choice -> (guard false: join | else: final f1); branch 2: b -> join.  The join
    # needs two tokens and only gets one: it is released once nothing runs, after a and b ended.
    d = valid(diagram("quiescent", "i:initial f:fork a:action c:choice b:action j:join after:action "
                                   "f1:final end:final",
                      [("i", "f"), ("f", "a"), ("f", "b"), ("a", "c"), ("c", "j", "Sw.go == 1"), ("c", "f1", "else"),
                       ("b", "j"), ("j", "after"), ("after", "end")]))
    for slow in ("a", "b"):
        r = RecordingRunner(sleep={slow: 0.15}, values={"Sw.go": 0})
        run = run_diagram(d, r)
        assert run.status == "completed", run.error
        assert sorted(r.ran()) == ["a", "after", "b"]
        assert ended_before(r, "a", "after") and ended_before(r, "b", "after")
        assert statuses(run, "final") == {"f1": "done", "end": "done"}
    # with the guard true the join gets both tokens in the ordinary way
    r = RecordingRunner(sleep={"a": 0.05}, values={"Sw.go": 1})
    run = run_diagram(d, r)
    assert run.status == "completed" and sorted(r.ran()) == ["a", "after", "b"]
    assert statuses(run, "final") == {"end": "done"}


# --- choices --------------------------------------------------------------------------------
CHOICE = ("i:initial c:choice x:action y:action z:action m:action end:final",
          [("i", "c"), ("c", "x", "Sw.p == 1"), ("c", "y", "Sw.q == 1"), ("c", "z", "else"),
           ("x", "m"), ("y", "m"), ("z", "m"), ("m", "end")])


@pytest.mark.parametrize("p,q,taken", [(1, 1, "x"), (1, 0, "x"), (0, 1, "y"), (0, 0, "z")])
def test_choice_takes_first_true_guard_in_order_else_last(p, q, taken):
    d = valid(diagram("choice", *CHOICE))
    r = RecordingRunner(values={"Sw.p": p, "Sw.q": q})
    run = run_diagram(d, r)
    assert run.status == "completed"
    assert r.ran() == [taken, "m"]
    chosen = traced(run, "c")
    assert chosen.status == "chosen" and chosen.detail.endswith(f"-> {taken}")
    # guards are evaluated in order and no further than needed; else is never "evaluated"
    assert r.guards == {"x": ["Sw.p == 1"], "y": ["Sw.p == 1", "Sw.q == 1"],
                        "z": ["Sw.p == 1", "Sw.q == 1"]}[taken]


def test_else_written_first_is_still_taken_last():
    d = valid(diagram("elsefirst", "i:initial c:choice x:action z:action end:final",
                      [("i", "c"), ("c", "z", "else"), ("c", "x", "$arg.cpu >= 90"), ("x", "end"), ("z", "end")]))
    r = RecordingRunner(values={"$arg.cpu": 95})
    assert run_diagram(d, r).status == "completed" and r.ran() == ["x"]
    r = RecordingRunner(values={"$arg.cpu": 10})
    assert run_diagram(d, r).status == "completed" and r.ran() == ["z"]


def test_choice_without_true_guard_and_without_else_fails_naming_diagram_and_node():
    d = valid(diagram("noelse", "i:initial a:action c:choice x:action y:action end:final",
                      [("i", "a"), ("a", "c"), ("c", "x", "Sw.p == 1"), ("c", "y", "Sw.p == 2"), ("x", "end"),
                       ("y", "end")]))
    r = RecordingRunner(values={"Sw.p": 0})
    run = run_diagram(d, r)
    assert run.status == "failed"
    assert isinstance(run.error, ActionError)
    assert (run.error.diagram, run.error.node) == ("noelse", "c")
    assert "no guard is true" in str(run.error) and "noelse/c" in str(run.error)
    assert r.ran() == ["a"]
    assert statuses(run) == {"a": "done", "x": "skipped", "y": "skipped"}
    with pytest.raises(ActionError):
        raise_for_status(run)


def test_guard_that_cannot_be_evaluated_fails_the_run_not_the_caller():
    d = valid(diagram("badguard", *CHOICE))
    run = run_diagram(d, RecordingRunner(values={}))  # Sw.p unknown: the lookup raises
    assert run.status == "failed" and run.error.node == "c" and "Sw.p" in str(run.error)

    class Broken(RecordingRunner):
        def evaluate(self, guard, run):
            raise KeyError("boom")

    run = run_diagram(d, Broken())
    assert run.status == "failed" and run.error.node == "c" and "KeyError" in str(run.error)


# --- failure --------------------------------------------------------------------------------
def test_failing_action_in_a_sequence_skips_the_rest():
    d = valid(diagram("seqfail", "i:initial a:action b:action c:action end:final",
                      [("i", "a"), ("a", "b"), ("b", "c"), ("c", "end")]))
    r = RecordingRunner(fail={"b"})
    run = run_diagram(d, r)
    assert run.status == "failed"
    assert (run.error.diagram, run.error.node) == ("seqfail", "b")
    assert isinstance(run.error.cause, CommandFailed) and "b broke" in str(run.error)
    assert r.ran() == ["a", "b"]
    assert statuses(run) == {"a": "done", "b": "failed", "c": "skipped"}
    assert statuses(run, "final") == {}


def test_failure_in_one_branch_lets_running_ones_finish_and_skips_the_rest():
    # f -> [a (fails at 0.05 s) -> a2], [b (0.3 s) -> b2] -> j -> c
    d = valid(diagram("forkfail", "i:initial f:fork a:action a2:action b:action b2:action j:join c:action "
                                  "end:final",
                      [("i", "f"), ("f", "a"), ("f", "b"), ("a", "a2"), ("b", "b2"), ("a2", "j"), ("b2", "j"),
                       ("j", "c"), ("c", "end")]))
    r = RecordingRunner(sleep={"a": 0.05, "b": 0.3}, fail={"a"})
    run = run_diagram(d, r)
    assert run.status == "failed"
    assert (run.error.diagram, run.error.node) == ("forkfail", "a")
    assert sorted(r.ran()) == ["a", "b"]  # a2, b2, c never run
    assert statuses(run) == {"a": "failed", "b": "done", "a2": "skipped", "b2": "skipped", "c": "skipped"}
    # b was running when a failed: it finished (its full 0.3 s) before the run ended
    b = r.call("b")
    assert b.end - b.start >= 0.29 and b.end <= run.ended_at
    assert r.call("a").end < b.end


def test_plain_exception_and_bare_action_error_are_reported_with_diagram_and_node():
    d = valid(diagram("bugs", "i:initial a:action end:final", [("i", "a"), ("a", "end")]))
    run = run_diagram(d, RecordingRunner(fail={"a"}, error=lambda nid: ValueError("wrapper bug")))
    assert run.status == "failed" and (run.error.diagram, run.error.node) == ("bugs", "a")
    assert "ValueError: wrapper bug" in str(run.error) and isinstance(run.error.cause, ValueError)
    run = run_diagram(d, RecordingRunner(fail={"a"}, error=lambda nid: ActionError("no VM", instance="VM3")))
    assert (run.error.diagram, run.error.node, run.error.instance) == ("bugs", "a", "VM3")
    assert str(run.error) == "[bugs/a/VM3] no VM"


def test_first_failure_wins():
    d = fork_diagram(2)
    r = RecordingRunner(sleep={"b1": 0.01, "b2": 0.1}, fail={"b1", "b2"})
    run = run_diagram(d, r)
    assert run.status == "failed" and run.error.node == "b1"
    assert statuses(run) == {"b1": "failed", "b2": "failed", "after": "skipped"}


def test_nothing_starts_after_a_failure_even_in_a_wide_fork():
    """A failure cancels the run in the failing thread: siblings queued behind it are skipped."""
    names = [f"b{n}" for n in range(1, 31)]
    nodes = "i:initial f:fork j:join end:final " + " ".join(f"{b}:action" for b in names)
    edges = [("i", "f"), ("j", "end")] + [e for b in names for e in (("f", b), (b, "j"))]
    d = valid(diagram("wide", nodes, edges))
    r = RecordingRunner(fail={"b1"}, sleep={b: 0.002 for b in names[1:]})
    engine = Engine(r, max_workers=2)  # most branches wait in the pool's queue
    try:
        run = engine.run(d)
    finally:
        engine.close()
    assert run.status == "failed" and run.error.node == "b1"
    failed = traced(run, "b1")
    st = statuses(run)
    assert st["b1"] == "failed" and "skipped" in st.values()
    for t in run.trace:
        if t.kind == "action" and t.status in ("done", "failed"):
            assert t.started <= failed.ended, f"{t.node} started after the failure ended"
    assert {c.node for c in r.calls} == {n for n, s in st.items() if s != "skipped"}


# --- cancel ---------------------------------------------------------------------------------
def run_in_thread(engine: Engine, run: DiagramRun) -> threading.Thread:
    th = threading.Thread(target=engine.run, args=(run.diagram,), kwargs={"run": run}, daemon=True)
    th.start()
    return th


def test_cancel_stops_new_nodes_and_lets_running_ones_finish():
    d = valid(diagram("cancel", "i:initial f:fork a:action b:action j:join c:action d:action end:final",
                      [("i", "f"), ("f", "a"), ("f", "b"), ("a", "j"), ("b", "j"), ("j", "c"), ("c", "d"),
                       ("d", "end")]))
    r = RecordingRunner(sleep={"a": 0.2, "b": 0.25})
    engine = Engine(r)
    run = DiagramRun(d)
    try:
        th = run_in_thread(engine, run)
        time.sleep(0.08)
        run.cancel()
        cancelled_at = time.monotonic()
        th.join(5)
        assert not th.is_alive()
    finally:
        engine.close()
    assert run.status == "cancelled" and run.error is None
    assert sorted(r.ran()) == ["a", "b"]
    assert r.call("a").end > cancelled_at and r.call("b").end > cancelled_at  # they finished
    assert statuses(run) == {"a": "done", "b": "done", "c": "skipped", "d": "skipped"}
    for c in r.calls:
        assert c.start < cancelled_at
    with pytest.raises(DiagramCancelled):
        raise_for_status(run)


def test_cancel_during_a_sequence():
    d = valid(diagram("cancelseq", "i:initial a:action b:action c:action end:final",
                      [("i", "a"), ("a", "b"), ("b", "c"), ("c", "end")]))
    r = RecordingRunner(sleep=0.05, on_start=lambda nid, run: run.cancel() if nid == "b" else None)
    run = run_diagram(d, r)
    assert run.status == "cancelled" and run.error is None
    assert r.ran() == ["a", "b"]
    assert statuses(run) == {"a": "done", "b": "done", "c": "skipped"}


def test_cancel_before_start_runs_nothing():
    d = fork_diagram(2)
    r = RecordingRunner()
    run = DiagramRun(d)
    run.cancel()
    engine = Engine(r)
    try:
        engine.run(d, run=run)
    finally:
        engine.close()
    assert run.status == "cancelled" and r.ran() == []
    assert set(statuses(run).values()) == {"skipped"}


def test_summary_lists_action_nodes():
    d = valid(diagram("summ", "i:initial a:action end:final", [("i", "a"), ("a", "end")]))
    run = run_diagram(d, RecordingRunner())
    s = run.summary()
    assert s["diagram"] == "summ" and s["status"] == "completed" and s["error"] is None
    assert [n["node"] for n in s["nodes"]] == ["a"]


def test_nested_joins_released_when_quiescent_inner_first():
    """At quiescence the join upstream is released first, whatever the order of the nodes: the
    outer join must not run its continuation before the inner branch reached it (nor twice)."""
    # f1 -> [ f2 -> [ p -> c -(go)-> j2 | else -> final x ], [ q -> j2 ]; j2 -> r -> j1 ], [ s -> j1 ]
    nodes = "i:initial f1:fork j1:join f2:fork j2:join p:action c:choice q:action r:action s:action " \
            "t:action x:final end:final"
    edges = [("i", "f1"), ("f1", "f2"), ("f1", "s"), ("f2", "p"), ("f2", "q"), ("p", "c"),
             ("c", "j2", "Sw.go == 1"), ("c", "x", "else"), ("q", "j2"), ("j2", "r"), ("r", "j1"), ("s", "j1"),
             ("j1", "t"), ("t", "end")]
    d = valid(diagram("nestedq", nodes, edges))
    for go in (0, 1):
        r = RecordingRunner(sleep={"p": 0.05}, values={"Sw.go": go})
        run = run_diagram(d, r)
        assert run.status == "completed"
        assert sorted(r.ran()) == ["p", "q", "r", "s", "t"]  # each once: t not twice
        for x in "pqrs":
            assert ended_before(r, x, "t")
        assert ended_before(r, "p", "r") and ended_before(r, "q", "r")


def test_join_with_a_single_incoming_transition_does_not_wait_for_a_branch_ending_at_a_final():
    """A join synchronises its own incoming flows only (UML): a branch that ends at a final
    elsewhere is not waited for."""
    d = valid(diagram("onein", "i:initial f:fork p:action q:action j:join r:action x:final end:final",
                      [("i", "f"), ("f", "p"), ("f", "q"), ("p", "x"), ("q", "j"), ("j", "r"), ("r", "end")]))
    r = RecordingRunner(sleep={"p": 0.2})
    run = run_diagram(d, r)
    assert run.status == "completed" and sorted(r.ran()) == ["p", "q", "r"]
    assert r.call("r").start < r.call("p").end  # r ran while p was still running
    assert r.call("p").end <= run.ended_at  # and the run ended only when p had
