"""Pure parsers for what Xen's ``xl`` and ``xentop`` print (checked on Xen 4.17.7 samples).

Kept apart from the driver so they can be tested on the real outputs in ``tests/data/xl/`` and
fuzzed: on anything they do not understand they raise :class:`~tune.errors.DriverError` (never
``ValueError`` or ``IndexError``), quoting the offending line.

Two details that bite: the ``xl list`` header separates ``VCPUs``, ``State`` and ``Time(s)``
with TABs, and ``xentop`` orders its six state flags ``dsbcpr`` where ``xl list`` uses
``rbpscd``.

>>> [d.name for d in parse_xl_list("Name ID Mem VCPUs\\tState\\tTime(s)\\n"
...                                "Domain-0  0  512  1  r-----  5.6\\n")]
['Domain-0']
>>> parse_state("--b---", XENTOP_FLAGS)
'blocked'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from ..errors import DriverError
from .base import DomainInfo, HostInfo

__all__ = ["XL_FLAGS", "XENTOP_FLAGS", "XentopRow", "MigrationOutcome", "parse_state",
           "parse_xl_list", "parse_xentop", "parse_xl_info", "host_info", "invalid_domain",
           "parse_create_error", "parse_migration", "DOM0"]

DOM0 = "Domain-0"
#: flag letters in the order ``xl list`` prints them
XL_FLAGS = "rbpscd"
#: ... and in the order ``xentop`` prints them
XENTOP_FLAGS = "dsbcpr"
_STATE_OF = {"d": "dying", "c": "crashed", "s": "shutdown", "p": "paused", "r": "running",
             "b": "blocked"}
#: when several flags are set, the most telling wins
_PRIORITY = "dcsprb"
_LIST_COLUMNS = ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]
_XENTOP_COLUMNS = ["NAME", "STATE", "CPU(sec)", "CPU(%)", "MEM(k)", "MEM(%)", "MAXMEM(k)",
                   "MAXMEM(%)", "VCPUS", "NETS", "NETTX(k)", "NETRX(k)", "VBDS", "VBD_OO",
                   "VBD_RD", "VBD_WR", "VBD_RSECT", "VBD_WSECT", "SSID"]


def _bad(what: str, line: str, lineno: Optional[int] = None) -> DriverError:
    where = f" line {lineno}" if lineno is not None else ""
    shown = line if len(line) <= 200 else line[:200] + "..."
    return DriverError(f"cannot parse {what}{where}: {shown!r}")


def parse_state(flags: str, order: str = XL_FLAGS) -> str:
    """Six state flags (``r-----``) → ``running``/``blocked``/``paused``/...

    No flag set means runnable but not on a CPU at this instant: ``running`` for our purposes.

    >>> parse_state("--p---"), parse_state("------"), parse_state("-----r", XENTOP_FLAGS)
    ('paused', 'running', 'running')
    """
    if len(flags) != 6:
        raise _bad("domain state flags", flags)
    present = set()
    for pos, ch in enumerate(flags):
        if ch == "-":
            continue
        if ch != order[pos]:
            raise _bad("domain state flags", flags)
        present.add(ch)
    for letter in _PRIORITY:
        if letter in present:
            return _STATE_OF[letter]
    return "running"


def _int(text: str, what: str, line: str, lineno: int) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise _bad(what, line, lineno)
    return int(text)


def _float(text: str, what: str, line: str, lineno: int) -> float:
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise _bad(what, line, lineno)
    return float(text)


def parse_xl_list(text: str) -> list[DomainInfo]:
    """``xl list`` (or ``xl list NAME``) → one :class:`DomainInfo` per row, Domain-0 included."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise _bad("xl list output", text)
    if lines[0].split() != _LIST_COLUMNS:
        raise _bad("xl list header", lines[0], 1)
    out = []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.rsplit(None, 5)
        if len(parts) != 6:
            raise _bad("xl list", line, lineno)
        name, domid, mem, vcpus, flags, cpu = parts
        name = name.strip()
        if not name:
            raise _bad("xl list", line, lineno)
        out.append(DomainInfo(name=name, state=parse_state(flags, XL_FLAGS),
                              memory_mb=_int(mem, "xl list", line, lineno),
                              vcpus=_int(vcpus, "xl list", line, lineno),
                              cpu_seconds=_float(cpu, "xl list", line, lineno),
                              domid=_int(domid, "xl list", line, lineno)))
    return out


@dataclass
class XentopRow:
    """One domain in one ``xentop -b`` iteration (only the columns ``tune`` uses)."""

    name: str
    state: str
    cpu_seconds: int
    cpu_percent: float
    mem_k: int
    maxmem_k: Optional[int]  # None: "no limit"
    vcpus: int
    extra: dict[str, str] = field(default_factory=dict)


def _is_xentop_header(line: str) -> bool:
    return line.split()[:2] == ["NAME", "STATE"]


def parse_xentop(text: str, iteration: int = -1) -> dict[str, XentopRow]:
    """``xentop -b -d D -i N`` → rows of one iteration, by domain name.

    The default is the last iteration: the first one always shows 0.0 CPU% (xentop has no
    previous sample yet), so ``tune`` runs ``-i 2`` and reads the second.
    """
    blocks: list[list[tuple[int, str]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if _is_xentop_header(line):
            if line.split() != _XENTOP_COLUMNS:
                raise _bad("xentop header", line, lineno)
            blocks.append([])
            continue
        if not blocks:
            raise _bad("xentop output (row before header)", line, lineno)
        blocks[-1].append((lineno, line))
    if not blocks:
        raise _bad("xentop output (no header)", text[:200])
    try:
        block = blocks[iteration]
    except IndexError:
        raise DriverError(f"xentop printed {len(blocks)} iteration(s), wanted #{iteration}") from None
    rows: dict[str, XentopRow] = {}
    n = len(_XENTOP_COLUMNS)
    for lineno, line in block:
        cooked = line.replace("no limit", "nolimit")
        parts = cooked.rsplit(None, n - 1)
        if len(parts) != n:
            raise _bad("xentop", line, lineno)
        name = parts[0].strip()
        if not name:
            raise _bad("xentop", line, lineno)
        values = dict(zip(_XENTOP_COLUMNS, parts))
        maxmem = values["MAXMEM(k)"]
        rows[name] = XentopRow(
            name=name, state=parse_state(values["STATE"], XENTOP_FLAGS),
            cpu_seconds=_int(values["CPU(sec)"], "xentop", line, lineno),
            cpu_percent=_float(values["CPU(%)"], "xentop", line, lineno),
            mem_k=_int(values["MEM(k)"], "xentop", line, lineno),
            maxmem_k=None if maxmem == "nolimit" else _int(maxmem, "xentop", line, lineno),
            vcpus=_int(values["VCPUS"], "xentop", line, lineno),
            extra={k: v for k, v in values.items() if k not in ("NAME", "STATE")})
    return rows


def parse_xl_info(text: str) -> dict[str, str]:
    """``xl info`` → ``{key: value}`` (values keep inner colons, as in ``hw_caps``)."""
    info: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not re.fullmatch(r"[a-z_0-9]+", key):
            raise _bad("xl info", line, lineno)
        info[key] = value.strip()
    if not info:
        raise _bad("xl info output", text)
    return info


def host_info(info: dict[str, str], name: Optional[str] = None) -> HostInfo:
    """The capacity fields of ``xl info`` (MiB) as a :class:`HostInfo`."""
    try:
        return HostInfo(name=name or info.get("host", ""), cpus=int(info["nr_cpus"]),
                        memory_mb=int(info["total_memory"]),
                        free_memory_mb=int(info["free_memory"]))
    except KeyError as exc:
        raise DriverError(f"xl info lacks {exc.args[0]}") from None
    except ValueError as exc:
        raise DriverError(f"xl info has a non-numeric capacity: {exc}") from None


_INVALID = re.compile(r"^(?P<name>.*) is an invalid domain identifier \(rc=-?\d+\)\s*$", re.M)


def invalid_domain(stderr: str) -> Optional[str]:
    """The domain named in ``NAME is an invalid domain identifier (rc=-6)``, if present."""
    m = _INVALID.search(stderr)
    return m.group("name") if m else None


def parse_create_error(stderr: str) -> str:
    """Why ``xl create`` failed, in one line (the caller raises)."""
    for line in stderr.splitlines():
        if line.startswith("Failed to read config file"):
            return line.strip()
    errors = [ln.strip() for ln in stderr.splitlines()
              if ln.strip() and not ln.startswith("Parsing config from")]
    return errors[-1] if errors else "xl create failed"


@dataclass
class MigrationOutcome:
    """What ``xl migrate``'s stderr says happened."""

    ok: bool
    #: completed | failed | undefined (final handshake broke: check both hosts)
    status: str
    reason: str
    #: sender milestones seen, in order (``acknowledged``, ``permission``, ``started``)
    phases: list[str] = field(default_factory=list)


_SENDER_PHASES = [("migration sender: Target has acknowledged transfer.", "acknowledged"),
                  ("migration sender: Giving target permission to start.", "permission"),
                  ("migration sender: Target reports successful startup.", "started")]


def parse_migration(stderr: str, exit_status: int) -> MigrationOutcome:
    """Read ``xl migrate``'s messages: success needs ``Migration successful.`` and exit 0."""
    lines = [ln.rstrip() for ln in stderr.splitlines()]
    phases = [tag for text, tag in _SENDER_PHASES if text in lines]
    if exit_status == 0 and "Migration successful." in lines:
        return MigrationOutcome(True, "completed", "Migration successful.", phases)
    if any("Migration failed during final handshake" in ln for ln in lines):
        return MigrationOutcome(False, "undefined",
                                "migration failed during the final handshake: the domain state "
                                "is undefined, check both hosts", phases)
    reason = ""
    for ln in lines:
        if ln.startswith("libxl: error:") or "exited with error status" in ln \
                or ln.startswith(("ssh:", "Host key verification failed")):
            reason = reason or ln
    for ln in lines:
        if ln.startswith("Migration failed") or ln.startswith("migration sender: Target reports"):
            summary = ln
            reason = f"{summary} ({reason})" if reason and reason != summary else summary
            break
    if not reason:
        meaningful = [ln for ln in lines if ln.strip()]
        reason = meaningful[-1] if meaningful else f"xl migrate exited with status {exit_status}"
    return MigrationOutcome(False, "failed", reason, phases)
