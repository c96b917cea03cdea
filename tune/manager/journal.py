"""The manager's journal: every reconfiguration step, written before and after it acts.

One SQLite database in WAL mode, ``STATE_DIR/journal.sqlite`` (mode 0600), holds

* ``records``: an append-only log.  *Intent* records are written before a step acts
  (``run.begin``, ``node.begin``, ``call.intent``, ``create.intent``, ``remove.intent``,
  ``migrate.intent``, ``deploy.begin``, ``undeploy.begin``, ``recovery.begin``); the matching
  *outcome* record (``run.end``, ``node.end``, ``call.done``/``call.failed``,
  ``create.done``/``create.failed``, ``remove.done``/``remove.failed``,
  ``migrate.done``/``migrate.failed``, ``deploy.end``, ``undeploy.end``, ``recovery.end``)
  names its intent in ``ref``.  Facts without an outcome: ``create.placed`` (the instances a
  Comp++ added to the SR, before they are deployed), ``relocate``, ``manager.start``.
* ``snapshots``: the System Representation (secrets redacted), written in the same transaction
  as a record that changes its structure (:data:`SNAPSHOT_KINDS`: deployment, Comp++ / Comp--,
  relocations, migrations, the end of a run), and otherwise at most every
  ``snapshot_interval`` seconds (or ten times what the last snapshot took) when it changed.  Between snapshots the records themselves are
  the SR-change log: lifecycle changes (``call.intent`` / ``call.done`` / ``call.failed`` of
  ``start`` and ``stop``) and attribute assignments (``assign``) are replayed over the last
  snapshot by :func:`replay`.  (A snapshot costs a serialisation of the whole SR: 0.5 ms for
  10 instances, 40 ms for 1000; a record alone costs well under 0.1 ms.)

An intent without its outcome is what a crash interrupted; :mod:`tune.manager.recovery` reads
them back.  A *deployment* (the records since the last ``deploy.begin``) is live until its
``undeploy.end``.

Durability: a committed record survives ``kill -9`` of the manager (WAL, ``synchronous=NORMAL``:
the pages are in the operating system); pass ``synchronous="FULL"`` to also survive a power
cut, at one ``fsync`` per record.

Crash points for tests: after each committed record (and each save of the persistent simulated
world) :func:`crash_point` is called with the step's name.  With ``TUNE_CRASH_AT=STEP[:N]`` in
the environment (or :func:`configure_crash`), the N-th (default first) occurrence of STEP kills
the process with SIGKILL; ``TUNE_CRASH_TRACE=FILE`` appends every step name to FILE.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..errors import ManagerError, TuneError

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.sqlite"
LOCK_NAME = "manager.lock"

#: intent kind -> the kinds that close it
OUTCOMES: dict[str, tuple[str, ...]] = {
    "run.begin": ("run.end",),
    "node.begin": ("node.end",),
    "call.intent": ("call.done", "call.failed"),
    "create.intent": ("create.done", "create.failed"),
    "remove.intent": ("remove.done", "remove.failed"),
    "migrate.intent": ("migrate.done", "migrate.failed"),
    "deploy.begin": ("deploy.end",),
    "undeploy.begin": ("undeploy.end",),
    "recovery.begin": ("recovery.end",),
}
CLOSING = {k for kinds in OUTCOMES.values() for k in kinds}

#: records written together with a snapshot of the SR (when it changed)
SNAPSHOT_KINDS = frozenset({"deploy.begin", "deploy.end", "create.placed", "create.done", "create.failed",
                            "remove.done", "remove.failed", "relocate", "migrate.done", "migrate.failed",
                            "run.end", "undeploy.end", "resume", "recovery.end"})
#: methods whose call records move an instance through its lifecycle (as the runner does)
LIFECYCLE_METHODS = {"start": ("starting", "started"), "stop": ("stopping", "stopped")}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    ref  INTEGER,
    run  INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ref ON records(ref);
CREATE TABLE IF NOT EXISTS snapshots (
    record  INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    data    TEXT NOT NULL
);
"""


class JournalError(TuneError):
    """The journal cannot be opened or read."""


# ---- crash points (test hook) -------------------------------------------------------------
class _Crash:
    def __init__(self) -> None:
        self.step: Optional[str] = None
        self.n = 1
        self.trace: Optional[str] = None
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()


_crash = _Crash()


def configure_crash(spec: Optional[str], trace: Optional[str] = None) -> None:
    """Arm (``"STEP[:N]"``) or disarm (``None``) the crash point; counting starts now."""
    with _crash.lock:
        _crash.counts.clear()
        _crash.trace = trace
        if not spec:
            _crash.step = None
            return
        step, _, n = spec.partition(":")
        _crash.step, _crash.n = step, int(n or 1)


def crash_point(step: str) -> None:
    """A place where a test may kill the process (see the module's docstring)."""
    if _crash.step is None and _crash.trace is None:
        return
    with _crash.lock:
        _crash.counts[step] += 1
        if _crash.trace:
            with open(_crash.trace, "a") as fh:
                fh.write(f"{step}:{_crash.counts[step]}\n")
        if step == _crash.step and _crash.counts[step] == _crash.n:
            os.kill(os.getpid(), signal.SIGKILL)


configure_crash(os.environ.get("TUNE_CRASH_AT"), os.environ.get("TUNE_CRASH_TRACE"))


# ---- the journal ---------------------------------------------------------------------------
@dataclass
class Record:
    seq: int
    time: float
    kind: str
    ref: Optional[int]
    run: Optional[int]
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "kind": self.kind, "ref": self.ref, "run": self.run,
                **self.data}


def _private(path: str) -> None:
    for p in (path, path + "-wal", path + "-shm"):
        try:
            os.chmod(p, 0o600)
        except FileNotFoundError:
            pass


class Journal:
    """The write-ahead journal of one manager (thread-safe)."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL", snapshot_interval: float = 1.0,
                 group_commit: bool = True) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise JournalError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        self.lock = threading.Lock()       # in-memory state: numbering, pending records, snapshots
        self._db_lock = threading.Lock()   # the SQLite connection
        self._commit_lock = threading.Lock()
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        _private(path)
        self._seq = int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()[0])
        self._committed = self._seq
        self._pending: list[tuple[int, float, str, Optional[int], Optional[int], str, Any]] = []
        self.group_commit = group_commit
        self._wake = threading.Event()
        self._committer: Optional[threading.Thread] = None
        self._snap_version: Optional[int] = None
        self._snap_time = float("-inf")
        self._snap_cost = 0.0
        self.snapshot_interval = snapshot_interval
        self._runs: dict[int, int] = {}  # DiagramRun.id -> seq of its run.begin
        self._sync_ends: set[int] = set()
        self._lock_fd: Optional[int] = None
        self.closed = False

    @classmethod
    def open(cls, state_dir: str, *, exclusive: bool = True, **kw: Any) -> "Journal":
        """The journal of ``state_dir``; ``exclusive``: the one manager of that directory.

        The manager holds an ``flock`` on ``STATE_DIR/manager.lock`` while its journal is open
        (released by the kernel when it dies, even by SIGKILL), so a second manager — a deploy or
        a resume while the first still runs — is refused before it touches anything.
        """
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        lock_fd = None
        if exclusive:
            lock_path = os.path.join(state_dir, LOCK_NAME)
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                try:
                    holder = os.read(lock_fd, 32).decode(errors="replace").strip()
                finally:
                    os.close(lock_fd)
                raise ManagerError(f"a manager is already running on {state_dir}"
                                   + (f" (pid {holder})" if holder else "")) from None
            os.ftruncate(lock_fd, 0)
            os.write(lock_fd, f"{os.getpid()}\n".encode())
        try:
            journal = cls(os.path.join(state_dir, JOURNAL_NAME), **kw)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        journal._lock_fd = lock_fd
        return journal

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self._wake.set()
        if self._committer is not None and self._committer is not threading.current_thread():
            self._committer.join(5)
        self._commit()
        with self._db_lock:
            self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the manager lock
            self._lock_fd = None

    # ---- group commit ----------------------------------------------------------------------
    def _commit(self) -> None:
        """Commit every pending record (in order, with their snapshots) in one transaction."""
        with self._commit_lock:
            with self.lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            with self._db_lock:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    self.db.executemany("INSERT INTO records(seq, time, kind, ref, run, data) VALUES (?,?,?,?,?,?)",
                                        [b[:6] for b in batch])
                    snaps = [(b[0], b[6][0], b[6][1]) for b in batch if b[6] is not None]
                    if snaps:
                        self.db.executemany("INSERT INTO snapshots(record, version, data) VALUES (?,?,?)", snaps)
                    self.db.execute("COMMIT")
                except sqlite3.Error as exc:
                    try:
                        self.db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    with self.lock:
                        self._pending[:0] = batch   # kept for the next attempt
                    raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
                last = batch[-1][0]
                if (batch[0][0] - 1) // 200 != last // 200:   # every 200 records: keep the last snapshots only
                    self.db.execute("DELETE FROM snapshots WHERE record < ?", (last - 2000,))
                first_commit = self._committed == 0
            with self.lock:
                self._committed = last
            if first_commit:
                _private(self.path)

    def flush(self, seq: Optional[int] = None) -> None:
        """Return once record ``seq`` (default: every record written so far) is committed."""
        target = self._seq if seq is None else seq
        if self._committed >= target:
            return
        self._commit()

    def _run_committer(self) -> None:
        while True:
            self._wake.wait()
            if self.closed:
                return
            time.sleep(0.002)   # gather what other threads write meanwhile into one transaction
            self._wake.clear()
            try:
                self._commit()
            except JournalError:
                log.exception("journal: background commit failed (retried with the next records)")
            if self.closed:   # close() may have set the wake-up cleared above
                return

    # ---- writing -------------------------------------------------------------------------
    def write(self, kind: str, data: Optional[dict[str, Any]] = None, *, ref: Optional[int] = None,
              run: Optional[int] = None, sr: Any = None, force_snapshot: bool = False,
              sync: Optional[bool] = None) -> int:
        """Append one record (and the SR, if it changed since the last snapshot); returns its seq.

        A *synchronous* record (:func:`needs_sync`: the intents of steps that change the world,
        or ``sync=True``) is committed before this returns; the others are committed by a
        background thread within milliseconds, many in one transaction (group commit).
        """
        text = json.dumps(data or {}, sort_keys=True, default=str)
        if sync is None:
            sync = not self.group_commit or needs_sync(kind, data) or _crash.step is not None
        with self.lock:
            if self.closed:
                return 0
            snap = None
            now = time.monotonic()
            if sr is not None and (force_snapshot or (sr.version != self._snap_version and (
                    kind in SNAPSHOT_KINDS or now - self._snap_time >= max(self.snapshot_interval,
                                                                           10 * self._snap_cost)))):
                with sr.lock:
                    snap = (sr.version, sr.to_json(redact=True))
                self._snap_cost = time.monotonic() - now  # periodic snapshots stay under ~10% of the time
                self._snap_version, self._snap_time = snap[0], now
            self._seq += 1
            seq = self._seq
            self._pending.append((seq, time.time(), kind, ref, run, text, snap))
            if not sync and self._committer is None:
                self._committer = threading.Thread(target=self._run_committer, name="tune-journal", daemon=True)
                self._committer.start()
        if sync:
            self.flush(seq)
        else:
            self._wake.set()
        if kind == "deploy.begin":
            self.compact()
        crash_point(kind)
        return seq

    def run_seq(self, run_id: int) -> Optional[int]:
        return self._runs.get(run_id)

    def begin_run(self, run_id: int, data: dict[str, Any], sr: Any = None) -> int:
        seq = self.write("run.begin", data, sr=sr)
        self._runs[run_id] = seq
        if data.get("on_failure") or data.get("diagram") in ("start", "default-start"):
            self._sync_ends.add(run_id)   # recovery would act on it if interrupted: its end is synchronous
        return seq

    def end_run(self, run_id: int, data: dict[str, Any], sr: Any = None) -> int:
        seq = self._runs.pop(run_id, None)
        sync = True if run_id in self._sync_ends else None
        self._sync_ends.discard(run_id)
        return self.write("run.end", data, ref=seq, run=seq, sr=sr, sync=sync)

    # ---- reading -------------------------------------------------------------------------
    def records(self, since: int = 0, kinds: Optional[Iterable[str]] = None) -> list[Record]:
        self.flush()
        with self._db_lock:
            rows = self.db.execute("SELECT seq, time, kind, ref, run, data FROM records WHERE seq >= ? "
                                   "ORDER BY seq", (since,)).fetchall()
        wanted = set(kinds) if kinds is not None else None
        return [Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows
                if wanted is None or r[2] in wanted]

    def last(self, kind: str) -> Optional[Record]:
        self.flush()
        with self._db_lock:
            r = self.db.execute("SELECT seq, time, kind, ref, run, data FROM records WHERE kind = ? "
                                "ORDER BY seq DESC LIMIT 1", (kind,)).fetchone()
        return None if r is None else Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))

    def snapshot(self) -> Optional[dict[str, Any]]:
        """The last System Representation written (redacted), or None."""
        found = self.last_snapshot()
        return None if found is None else found[1]

    def last_snapshot(self) -> Optional[tuple[int, dict[str, Any]]]:
        """(seq of the record it was written with, the SR as a dict), or None."""
        self.flush()
        with self._db_lock:
            r = self.db.execute("SELECT record, data FROM snapshots ORDER BY record DESC LIMIT 1").fetchone()
        return None if r is None else (int(r[0]), dict(json.loads(r[1])))

    def live_deployment(self) -> Optional[Record]:
        """The ``deploy.begin`` of a deployment that was never undeployed, or None."""
        begin = self.last("deploy.begin")
        if begin is None:
            return None
        end = self.last("undeploy.end")
        return None if end is not None and end.seq > begin.seq else begin

    def compact(self) -> int:
        """Forget what came before the last ``deploy.begin`` (called by a fresh deployment,
        which keeps the previous deployment's records for post-mortems).  Returns records dropped."""
        begin = self.last("deploy.begin")
        if begin is None:
            return 0
        with self._db_lock:
            prev = self.db.execute("SELECT MAX(seq) FROM records WHERE kind = 'deploy.begin' AND seq < ?",
                                   (begin.seq,)).fetchone()[0]
            if prev is None:
                return 0
            cur = self.db.execute("DELETE FROM records WHERE seq < ?", (prev,))
            self.db.execute("DELETE FROM snapshots WHERE record < ?", (prev,))
            return int(cur.rowcount or 0)

    def open_intents(self, since: int = 0) -> list[Record]:
        """Intents written since ``since`` that have no outcome: what a crash interrupted."""
        recs = self.records(since)
        closed = {r.ref for r in recs if r.kind in CLOSING and r.ref is not None}
        return [r for r in recs if r.kind in OUTCOMES and r.seq not in closed]


#: records committed before :meth:`Journal.write` returns, whatever the group commit
SYNC_KINDS = frozenset({"deploy.begin", "deploy.end", "create.intent", "create.placed", "remove.intent",
                        "migrate.intent", "undeploy.begin", "undeploy.end", "recovery.begin",
                        "recovery.end", "resume"})


def needs_sync(kind: str, data: Optional[dict[str, Any]]) -> bool:
    """Committed before :meth:`Journal.write` returns: the intents of steps that change the world
    outside the manager (and ``start`` / ``stop`` calls and their outcomes: recovery must know
    whether they may have happened); :meth:`Journal.end_run` adds the end of a run recovery would
    act on if it were interrupted (one with an ``on-failure`` diagram, a ``start`` diagram).  What
    may be lost in a crash is only a tail of records about runs and wrapper calls recovery has
    nothing to do about — as if the event that started them came a moment later."""
    if kind in SYNC_KINDS:
        return True
    return kind in ("call.intent", "call.done", "call.failed") and bool(data) and \
        str(data.get("method")) in LIFECYCLE_METHODS  # type: ignore[union-attr]


def replay(sr: Any, records: Iterable[Record]) -> int:
    """Apply the SR changes ``records`` log (written after the snapshot ``sr`` was read from).

    Lifecycle changes of ``start`` / ``stop`` calls and ``assign`` records; idempotent (a
    snapshot may already hold the effect of a record written just after it).  Returns how many
    records changed something.
    """
    from ..components.component import Lifecycle

    n = 0
    with sr.lock:
        for r in records:
            name = r.data.get("instance")
            if not name or not sr.has_instance(name):
                continue
            comp = sr.instance(name)
            states = LIFECYCLE_METHODS.get(str(r.data.get("method")))
            if r.kind == "call.intent" and states:
                comp.state, comp.error = Lifecycle(states[0]), None
            elif r.kind == "call.done" and states:
                comp.state, comp.error = Lifecycle(states[1]), None
            elif r.kind == "call.failed" and not r.data.get("recovered"):
                if states:
                    comp.state = Lifecycle.FAILED
                comp.error = r.data.get("error")
            elif r.kind == "assign" and r.data.get("value") != "***":
                comp.attributes[str(r.data.get("attribute"))] = str(r.data.get("value"))
            else:
                continue
            n += 1
        if n:
            sr.version += 1
    return n


__all__ = ["CLOSING", "LIFECYCLE_METHODS", "SNAPSHOT_KINDS", "replay", "JOURNAL_NAME", "Journal", "JournalError", "OUTCOMES", "Record", "configure_crash",
           "crash_point"]
