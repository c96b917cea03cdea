"""run_on_hosts / GroupResult: per-host results, never a silent abort."""

import threading
import time

import pytest

from tune.errors import CommandFailed, GroupError, HostUnreachable
from tune.remote.group import GroupResult, run_on_hosts
from tune.remote.local import LocalExecutor


def _executors(*names):
    return {n: LocalExecutor(n) for n in names}


def test_all_succeed_in_given_order():
    res = run_on_hosts(_executors("c", "a", "b"), lambda ex: ex.host * 2)
    assert list(res) == ["c", "a", "b"]
    assert dict(res) == {"c": "cc", "a": "aa", "b": "bb"}
    assert res.ok and res.failed == {} and len(res.succeeded) == 3
    assert res.raise_on_failure() is res


def test_one_failure_does_not_abort_the_others():
    def fn(ex):
        if ex.host == "b":
            raise HostUnreachable("refused", host="b")
        time.sleep(0.05)
        return ex.host
    res = run_on_hosts(_executors("a", "b", "c"), fn)
    assert res.succeeded == {"a": "a", "c": "c"}
    assert list(res.failed) == ["b"] and isinstance(res["b"], HostUnreachable)
    with pytest.raises(GroupError) as info:
        res.raise_on_failure()
    err = info.value
    assert set(err.results) == {"a", "b", "c"}
    assert err.succeeded == {"a": "a", "c": "c"} and list(err.failed) == ["b"]
    assert "1 of 3 hosts failed" in str(err) and "b: b: refused" in str(err)


def test_runs_concurrently_bounded_by_max_workers():
    active, peak, lock = [0], [0], threading.Lock()

    def fn(ex):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return True

    t0 = time.monotonic()
    run_on_hosts(_executors(*"abcdef"), fn, max_workers=3)
    assert peak[0] == 3
    assert time.monotonic() - t0 < 0.5


def test_with_real_commands():
    res = run_on_hosts(_executors("x", "y"),
                       lambda ex: ex.run(["sh", "-c", f"test {ex.host} = x"]).exit_status)
    assert res.succeeded == {"x": 0}
    assert isinstance(res["y"], CommandFailed) and res["y"].exit_status == 1


def test_empty():
    assert len(run_on_hosts({}, lambda ex: 1)) == 0


def test_group_result_is_a_mapping():
    res = GroupResult({"a": 1, "b": ValueError("x")})
    assert "a" in res and res.get("z") is None and not res.ok
    assert "1 failed" in repr(res)
