"""What a live migration costs a client: the seed's Figure 3.3.4, measured.

:func:`measure_migration` pings a VM every ``interval`` (10 ms) with a ``timeout`` (2 s) while a
driver migrates it, and returns a :class:`Measurement`: one :class:`PingSample` per echo request
(send time, RTT or lost), the migration's start and end, and the driver's report.  It works with
any :class:`~tune.virt.base.HypervisorDriver` that can migrate; the VM only has to answer ping.

:func:`write_csv`, :func:`plot` (matplotlib, imported only there) and :meth:`Measurement.summary`
turn it into files: ``time_s,seq,rtt_ms,status`` rows, a PNG of RTT over time with the migration
marked, and the figures the seed reports: total migration time, interruption (longest run of lost
replies times the interval) and replies lost.

Pings are sent from this process over a raw ICMP socket (root), or an unprivileged ICMP socket
when ``net.ipv4.ping_group_range`` allows it.

>>> m = Measurement("vm", "10.0.0.5", 0.01, 2.0, [PingSample(i * 0.01, i, None if 3 <= i < 6 else 0.5)
...                 for i in range(10)], 0.02, 0.09)
>>> s = m.summary(); (s["sent"], s["lost"], s["longest_loss_run"], round(s["interruption_s"], 3))
(10, 3, 3, 0.03)
"""

from __future__ import annotations

import csv
import logging
import os
import random
import socket
import statistics
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .errors import MigrationError, UsageError
from .virt.base import HypervisorDriver, MigrationReport

log = logging.getLogger(__name__)

__all__ = ["PingSample", "Measurement", "Pinger", "measure_migration", "write_csv", "plot",
           "write_all"]


@dataclass(frozen=True)
class PingSample:
    """One echo request: sent ``time`` seconds after the start; ``rtt_ms`` ``None`` when lost."""

    time: float
    seq: int
    rtt_ms: Optional[float]

    @property
    def lost(self) -> bool:
        return self.rtt_ms is None


@dataclass
class Measurement:
    """Pings around one migration.  Times are seconds from the first ping."""

    domain: str
    address: str
    interval: float
    timeout: float
    samples: list[PingSample]
    migration_start: Optional[float] = None
    migration_end: Optional[float] = None
    report: Optional[MigrationReport] = None
    error: Optional[str] = None
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The seed's figures, plus RTT statistics and the driver's own numbers."""
        lost_runs: list[tuple[int, int]] = []  # (first index, length)
        run_start: Optional[int] = None
        for i, s in enumerate(self.samples + [PingSample(0, -1, 0.0)]):
            if s.lost and run_start is None:
                run_start = i
            elif not s.lost and run_start is not None:
                lost_runs.append((run_start, i - run_start))
                run_start = None
        longest = max(lost_runs, key=lambda r: r[1], default=None)
        rtts = [s.rtt_ms for s in self.samples if s.rtt_ms is not None]
        before = [s.rtt_ms for s in self.samples if s.rtt_ms is not None and self.migration_start is not None
                  and s.time < self.migration_start]
        out: dict[str, Any] = {
            "domain": self.domain, "address": self.address, "interval_s": self.interval,
            "timeout_s": self.timeout, "sent": len(self.samples), "received": len(rtts),
            "lost": len(self.samples) - len(rtts),
            "longest_loss_run": longest[1] if longest else 0,
            "interruption_s": (longest[1] * self.interval) if longest else 0.0,
            "interruption_at_s": self.samples[longest[0]].time if longest else None,
            "rtt_median_ms": statistics.median(rtts) if rtts else None,
            "rtt_median_before_ms": statistics.median(before) if before else None,
            "rtt_max_ms": max(rtts) if rtts else None,
            "migration_start_s": self.migration_start, "migration_end_s": self.migration_end,
            "migration_wall_s": (self.migration_end - self.migration_start)
            if self.migration_start is not None and self.migration_end is not None else None,
            "error": self.error,
        }
        if self.report is not None:
            out["status"] = self.report.status
            out["total_time_s"] = self.report.total_time
            out["downtime_s"] = self.report.downtime
            out["setup_time_s"] = self.report.setup_time
            out["ram_transferred_mb"] = self.report.ram_transferred_mb
            prepare = getattr(self.report, "prepare_time", None)
            if prepare is not None:
                out["prepare_time_s"] = prepare
        out.update(self.meta)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "report": self.report.to_dict() if self.report else None,
                "samples": [asdict(s) for s in self.samples]}


# --- ping -----------------------------------------------------------------------------------
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


class Pinger:
    """ICMP echo every ``interval`` to ``address`` from a thread; replies matched by sequence.

    ``start()``, then ``stop()`` returns the samples: a reply later than ``timeout`` counts as
    lost, as ping's ``-W`` would have it.
    """

    def __init__(self, address: str, interval: float = 0.01, timeout: float = 2.0) -> None:
        if interval < 0.001 or timeout <= 0:
            raise UsageError("ping interval >= 1 ms and timeout > 0 needed")
        self.address = address
        self.interval = interval
        self.timeout = timeout
        self.raw = True
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except PermissionError:
            try:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
                self.raw = False
            except OSError as exc:
                raise UsageError("pinging needs root (raw socket) or net.ipv4.ping_group_range "
                                 f"covering this user: {exc}") from exc
        self.sock.settimeout(0.05)
        self.ident = random.randrange(1, 0xFFFF)
        self._sent: dict[int, float] = {}
        self._rtt: dict[int, float] = {}
        self._last_seq = 0
        self._stop_send = threading.Event()
        self._stop_recv = threading.Event()
        self._t0 = 0.0
        self._threads: list[threading.Thread] = []

    @property
    def t0(self) -> float:
        """``time.monotonic()`` of the first echo request."""
        return self._t0

    def _send(self) -> None:
        seq = 0
        next_at = self._t0
        while not self._stop_send.is_set():
            payload = struct.pack("!d", time.monotonic()) + b"tune-measure"
            header = struct.pack("!BBHHH", 8, 0, 0, self.ident, seq & 0xFFFF)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), self.ident,
                                 seq & 0xFFFF) + payload
            now = time.monotonic()
            self._sent[seq] = now
            self._last_seq = seq
            try:
                self.sock.sendto(packet, (self.address, 0))
            except OSError as exc:  # no route during a partition: a lost request
                log.debug("ping %s seq %d: %s", self.address, seq, exc)
            seq += 1
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop_send.wait(delay)
            elif delay < -1.0:  # fell far behind (suspended?): do not burst
                next_at = time.monotonic()

    def _recv(self) -> None:
        while not self._stop_recv.is_set():
            try:
                data, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            if self.raw:
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) < 8:
                continue
            kind, _, _, ident, seq = struct.unpack("!BBHHH", data[:8])
            if kind != 0 or (self.raw and ident != self.ident):
                continue
            # map the 16-bit sequence back to the newest request that had it
            base = self._last_seq
            full = base - ((base - seq) & 0xFFFF)
            sent = self._sent.get(full)
            if sent is not None and full not in self._rtt:
                self._rtt[full] = (now - sent) * 1000.0

    def start(self) -> "Pinger":
        self._t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._recv, name="ping-recv", daemon=True),
                         threading.Thread(target=self._send, name="ping-send", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> list[PingSample]:
        """Stop sending, wait ``timeout`` for the last replies, return every sample."""
        self._stop_send.set()
        self._threads[1].join()
        last = max(self._sent.values(), default=time.monotonic())
        while time.monotonic() < last + self.timeout and len(self._rtt) < len(self._sent):
            time.sleep(0.01)
        self._stop_recv.set()
        self._threads[0].join()
        self.sock.close()
        out = []
        for seq in sorted(self._sent):
            rtt = self._rtt.get(seq)
            if rtt is not None and rtt > self.timeout * 1000.0:
                rtt = None
            out.append(PingSample(round(self._sent[seq] - self._t0, 6), seq,
                                  None if rtt is None else round(rtt, 3)))
        return out


def wait_answers(address: str, timeout: float = 30.0) -> float:
    """Wait until ``address`` answers one echo request; return the wait."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        p = Pinger(address, interval=0.2, timeout=0.5).start()
        time.sleep(0.2)
        if any(not s.lost for s in p.stop()):
            return time.monotonic() - start
    raise MigrationError(f"{address} does not answer ping after {timeout:g}s")


def measure_migration(source: HypervisorDriver, name: str, destination: "HypervisorDriver | str",
                      address: str, *, interval: float = 0.01, timeout: float = 2.0,
                      before: float = 1.0, after: float = 2.0, **migrate_options: Any) -> Measurement:
    """Ping ``address`` every ``interval`` while ``source`` migrates ``name`` to ``destination``.

    ``before`` seconds of pings precede the migration and ``after`` seconds follow it.  A failed
    migration is recorded (``error``, ``report`` with ``status="failed"``), not raised.
    """
    pinger = Pinger(address, interval, timeout).start()
    m = Measurement(name, address, interval, timeout, [])
    try:
        time.sleep(before)
        m.migration_start = time.monotonic() - pinger.t0
        try:
            m.report = source.migrate(name, destination, **migrate_options)
        except MigrationError as exc:
            m.error = str(exc)
            m.report = exc.report if isinstance(exc.report, MigrationReport) else None
        m.migration_end = time.monotonic() - pinger.t0
        time.sleep(after)
    finally:
        m.samples = pinger.stop()
    # drivers that keep the guest's console (qemu) say whether the guest survived intact
    where = destination if m.report is not None and m.report.ok else source
    console = getattr(where, "serial_output", None)
    if callable(console):
        from .testbed.guest import console_errors
        try:
            m.meta["guest_errors"] = console_errors(console(name))
        except Exception as exc:  # noqa: BLE001 - a missing console is not a failed measurement
            log.debug("no console for %s: %s", name, exc)
    log.info("measured %s: %s", name, {k: v for k, v in m.summary().items()
                                       if k in ("lost", "interruption_s", "total_time_s")})
    return m


# --- output ---------------------------------------------------------------------------------
def write_csv(m: Measurement, path: str) -> None:
    """``time_s,seq,rtt_ms,status``: one row per echo request; ``rtt_ms`` empty when lost."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", "seq", "rtt_ms", "status"])
        for s in m.samples:
            w.writerow([f"{s.time:.6f}", s.seq, "" if s.rtt_ms is None else f"{s.rtt_ms:.3f}",
                        "timeout" if s.lost else "ok"])


def read_csv(path: str) -> list[PingSample]:
    """The samples of a CSV written by :func:`write_csv`."""
    with open(path, newline="") as fh:
        return [PingSample(float(r["time_s"]), int(r["seq"]), float(r["rtt_ms"]) if r["rtt_ms"] else None)
                for r in csv.DictReader(fh)]


def plot(m: Measurement, path: str, *, title: Optional[str] = None) -> None:
    """A PNG of RTT over time: replies as dots, lost replies as red marks at the top, the
    migration as a shaded band, the interruption annotated."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError("plotting needs matplotlib (pip install 'tune-autonomic[plot]')") from exc
    s = m.summary()
    ok = [x for x in m.samples if not x.lost]
    lost = [x for x in m.samples if x.lost]
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    try:
        top = max([x.rtt_ms or 0.0 for x in ok] + [1.0])
        ax.set_yscale("log")
        ymin = max(0.01, min([x.rtt_ms or 1.0 for x in ok] + [1.0]) / 2)
        lost_y = top * 3
        if m.migration_start is not None and m.migration_end is not None:
            ax.axvspan(m.migration_start, m.migration_end, color="tab:orange", alpha=0.18,
                       label=f"migration ({s['migration_wall_s']:.2f} s wall)")
            ax.axvline(m.migration_start, color="tab:orange", lw=1)
            ax.axvline(m.migration_end, color="tab:orange", lw=1)
            prepare = s.get("prepare_time_s")
            if prepare is not None:
                ax.axvline(m.migration_start + prepare, color="tab:orange", lw=1, ls="--",
                           label=f"'migrate' sent (+{prepare * 1000:.0f} ms)")
        ax.plot([x.time for x in ok], [x.rtt_ms or 0.0 for x in ok], ".", ms=2.5, color="tab:blue",
                label=f"RTT ({s['received']} replies)")
        if lost:
            ax.plot([x.time for x in lost], [lost_y] * len(lost), "|", ms=9, color="tab:red",
                    label=f"no reply within {m.timeout:g} s ({s['lost']})")
            if s["longest_loss_run"] and s["interruption_at_s"] is not None:
                ax.annotate(f"interruption {s['interruption_s'] * 1000:.0f} ms",
                            (s["interruption_at_s"], lost_y), xytext=(8, -14), textcoords="offset points",
                            fontsize=8, color="tab:red")
        ax.set_ylim(ymin, lost_y * 2)
        ax.set_xlim(0, max([x.time for x in m.samples] + [1.0]))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("ping RTT (ms, log scale)")
        ax.grid(True, which="major", alpha=0.3)
        parts = []
        if s.get("total_time_s") is not None:
            parts.append(f"migration {s['total_time_s']:.2f} s")
        if s.get("downtime_s") is not None:
            parts.append(f"QEMU downtime {s['downtime_s'] * 1000:.0f} ms")
        parts.append(f"interruption {s['interruption_s'] * 1000:.0f} ms")
        parts.append(f"lost {s['lost']}/{s['sent']}")
        if s.get("guest_errors"):
            parts.append(f"GUEST KERNEL ERRORS: {len(s['guest_errors'])}")
        ax.set_title(title or f"{m.domain}: ping every {m.interval * 1000:g} ms during live migration\n"
                     + ", ".join(parts), fontsize=10)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def write_all(m: Measurement, out_dir: str, stem: str = "migration") -> dict[str, str]:
    """CSV, PNG and JSON summary in ``out_dir``; returns their paths."""
    import json
    os.makedirs(out_dir, exist_ok=True)
    paths = {"csv": os.path.join(out_dir, f"{stem}.csv"), "png": os.path.join(out_dir, f"{stem}.png"),
             "json": os.path.join(out_dir, f"{stem}.json")}
    write_csv(m, paths["csv"])
    plot(m, paths["png"])
    with open(paths["json"], "w") as fh:
        json.dump({"summary": m.summary(), "report": m.report.to_dict() if m.report else None}, fh,
                  indent=1, sort_keys=True, default=str)
    return paths
