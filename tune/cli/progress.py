"""Rich progress while deploying: one bar per host and one per component (terminals only).

When the output is not a terminal, ``tune deploy`` prints plain timeline lines instead; the
progress display consumes the same timeline events, so both views say the same thing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Optional

from ..manager.manager import TimelineEvent


class DeployProgress:
    """A timeline observer drawing deployment progress, then handing lines back to ``write``."""

    def __init__(self, stream: Any, printer: Callable[[TimelineEvent], None]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream)
        self.printer = printer
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=self.console,
                                 transient=False)
        self.hosts: dict[str, Any] = {}
        self.components: dict[str, Any] = {}
        self.placement: dict[str, str] = {}
        self.live = False

    def write(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def __call__(self, ev: TimelineEvent) -> None:
        d = ev.data
        if ev.kind == "deploy.plan":
            self.placement = dict(d["placement"])
            per_host = Counter(v for v in self.placement.values() if v)
            per_type = Counter(_type(k) for k in self.placement)
            for host, n in sorted(per_host.items()):
                self.hosts[host] = self.progress.add_task(f"host {host}", total=n, status="")
            for comp, n in sorted(per_type.items()):
                self.components[comp] = self.progress.add_task(f"component {comp}", total=n, status="")
            self.progress.start()
            self.live = True
            return
        if self.live and ev.kind in ("deploy.host", "deploy.failed"):
            node = d["node"]
            done = [k for k, v in self.placement.items() if v == node]
            ok = ev.kind == "deploy.host"
            self.progress.update(self.hosts[node], completed=len(done), status="ok" if ok else "FAILED")
            for inst in done:
                self.progress.advance(self.components[_type(inst)])
            if not ok:
                self.write(f"deployment FAILED on {node}: {d['error']}")
            return
        if self.live and ev.kind in ("deploy.done", "undeploy.start"):
            for task in self.components.values():
                self.progress.update(task, status="deployed")
            self.progress.stop()
            self.live = False
        self.printer(ev)

    def close(self) -> Optional[None]:
        if self.live:
            self.progress.stop()
            self.live = False
        return None


def _type(srname: str) -> str:
    return srname.rstrip("0123456789")
