"""Run one function on many hosts at once; every host gets its own result or error.

Why: one offline host must never abort the others (a long-standing complaint about fabric's
groups).  :func:`run_on_hosts` returns a :class:`GroupResult` mapping each host to what ``fn``
returned or to the exception it raised; :meth:`GroupResult.raise_on_failure` turns failures into
one :class:`~tune.errors.GroupError` carrying every result.

>>> from tune.remote.local import LocalExecutor
>>> res = run_on_hosts({"a": LocalExecutor("a")}, lambda ex: ex.host.upper())
>>> dict(res), res.ok
({'a': 'A'}, True)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Iterator, TypeVar

from ..errors import GroupError
from .base import Executor

log = logging.getLogger(__name__)

__all__ = ["GroupResult", "run_on_hosts"]

T = TypeVar("T")


class GroupResult(Mapping[str, Any], Generic[T]):
    """host → result (``T``) or the exception raised for that host, in the order given."""

    def __init__(self, results: Mapping[str, "T | BaseException"]) -> None:
        self._results: dict[str, T | BaseException] = dict(results)

    def __getitem__(self, host: str) -> "T | BaseException":
        return self._results[host]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    @property
    def succeeded(self) -> dict[str, T]:
        return {h: r for h, r in self._results.items() if not isinstance(r, BaseException)}

    @property
    def failed(self) -> dict[str, BaseException]:
        return {h: r for h, r in self._results.items() if isinstance(r, BaseException)}

    @property
    def ok(self) -> bool:
        return not self.failed

    def raise_on_failure(self) -> "GroupResult[T]":
        """Raise :class:`GroupError` (with every result) if any host failed; else return self."""
        failed = self.failed
        if failed:
            detail = "; ".join(f"{h}: {e}" for h, e in failed.items())
            raise GroupError(f"{len(failed)} of {len(self)} hosts failed: {detail}",
                             self._results)
        return self

    def __repr__(self) -> str:
        return (f"<GroupResult {len(self.succeeded)} ok, {len(self.failed)} failed: "
                f"{sorted(self.failed)}>")


def run_on_hosts(executors: Mapping[str, Executor], fn: Callable[[Executor], T],
                 max_workers: int = 10) -> GroupResult[T]:
    """Call ``fn(executor)`` for every host concurrently (at most ``max_workers`` at a time).

    Never aborts: a host whose call raises gets the exception as its result.  SSH handshakes
    are additionally bounded process-wide (:func:`tune.remote.ssh.set_max_parallel_connects`).
    """
    results: dict[str, Any] = {}
    if not executors:
        return GroupResult(results)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(executors))),
                            thread_name_prefix="tune-group") as pool:
        futures = {host: pool.submit(fn, ex) for host, ex in executors.items()}
        for host, fut in futures.items():
            try:
                results[host] = fut.result()
            except BaseException as exc:  # noqa: BLE001 - recorded per host
                log.debug("%s: %s", host, exc)
                results[host] = exc
    return GroupResult({h: results[h] for h in executors})
