"""Readable lines for the manager's timeline (what ``tune deploy`` prints as it happens)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..manager.manager import TimelineEvent


def _migration(d: dict[str, Any]) -> str:
    if d.get("status") == "completed":
        down = d.get("downtime")
        down_text = f", downtime {down * 1000:.0f} ms" if isinstance(down, (int, float)) else ""
        total = d.get("total_time")
        total_text = f" in {total:.1f} s" if isinstance(total, (int, float)) else ""
        return f"migrated {d['domain']} {d['source']} -> {d['destination']}{total_text}{down_text}"
    return f"migration of {d['domain']} {d['source']} -> {d['destination']} FAILED: {d.get('message', '')}"


FORMATS: dict[str, Callable[[dict[str, Any]], Optional[str]]] = {
    "deploy.plan": lambda d: "plan: " + ", ".join(f"{k}@{v}" for k, v in d["placement"].items()),
    "deploy.host": lambda d: f"deployed {', '.join(d['instances'])} on {d['node']}",
    "deploy.failed": lambda d: f"deployment FAILED on {d['node']}: {d['error']}",
    "deploy.done": lambda d: f"deployment done: {d['instances']} instance(s) on {d['hosts']} host(s)",
    "diagram.start": lambda d: f"diagram {d['diagram']} started" + (f" ({' '.join(d['args'])})" if d["args"] else ""),
    "diagram.end": lambda d: f"diagram {d['diagram']} {d['status']} in {d['duration']:.2f} s"
                             + (f": {d['error']}" if d.get("error") else ""),
    "diagram.compensate": lambda d: f"diagram {d['diagram']} failed: running compensation {d['compensation']}",
    "action.failed": lambda d: f"{d['instance']}.{d['method']} FAILED: {d['error']}",
    "event.dispatch": lambda d: f"event '{d['event']}' -> diagram {d['diagram']}",
    "event.received": lambda d: f"event '{d['event']}' from {d['source']}",
    "event.coalesced": lambda d: f"event '{d['event']}' coalesced (a diagram already runs for it)",
    "event.unknown": lambda d: f"event '{d['event']}' has no diagram (ignored)",
    "event.rejected": lambda d: f"event '{d['event']}' rejected: {d['error']}",
    "migration.start": lambda d: f"migrating {d['vm']} {d['source']} -> {d['destination']}"
                                 + (f" ({d['reason']})" if d.get("reason") else ""),
    "migration.end": _migration,
    "consolidation.round": lambda d: (f"consolidation ({d['policy']}): {len(d['migrated'])} migration(s)"
                                      + (f", switched off {', '.join(d['powered_off'])}" if d["powered_off"] else "")
                                      + (f", switched on {', '.join(d['powered_on'])}" if d["powered_on"] else "")
                                      + (f", {len(d['failed'])} failed" if d["failed"] else "")),
    "host.power": lambda d: f"host {d['node']} switched {d['state']}",
    "instance.moved": lambda d: f"{d['instance']} now on {d['node']}",
    "instance.created": lambda d: f"created {d['instance']} on {d['node']}",
    "instance.removed": lambda d: f"removed {d['instance']}",
    "scenario.step": lambda d: "scenario: " + (d.get("note") or "")
                               + "".join(f" [{k} load {v:g}%]" for k, v in d.get("load", {}).items())
                               + (f" [event {d['event']}]" if d.get("event") else ""),
    "scenario.end": lambda d: "scenario: end",
    "undeploy.start": lambda d: "stopping: running the stop diagram",
    "undeploy.done": lambda d: f"undeployed; {d['nodes']} node(s) cleaned",
}


class TimelinePrinter:
    """Prints timeline events; probe readings only when they change or fire (no storm)."""

    def __init__(self, write: Callable[[str], None], *, actions: bool = False) -> None:
        self.write = write
        self.actions = actions
        self._last_reading: dict[str, float] = {}

    def __call__(self, ev: TimelineEvent) -> None:
        line = self.format(ev)
        if line is not None:
            self.write(f"[{ev.time:8.1f}s] {line}")

    def format(self, ev: TimelineEvent) -> Optional[str]:
        d = ev.data
        if ev.kind == "probe.reading":
            last = self._last_reading.get(d["instance"])
            if not d.get("fired") and last is not None and abs(last - d["cpu"]) < 5:
                return None
            self._last_reading[d["instance"]] = d["cpu"]
            return (f"{d['instance']}: {d['vm']} at {d['cpu']:.1f}% CPU"
                    + ("  -> threshold crossed, probe fires" if d.get("fired") else ""))
        if ev.kind in ("action.start", "action.end"):
            if not self.actions:
                return None
            return f"  {d['instance']}.{d['method']} {'started' if ev.kind == 'action.start' else 'done'}"
        fmt = FORMATS.get(ev.kind)
        return fmt(d) if fmt else None
