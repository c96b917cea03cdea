"""Scenario files: what happens to the simulated grid over time (``scenario.yaml``).

A scenario drives an experiment on the embedded simulated grid: at given (simulated) times it
changes VMs' CPU demand, sends events, or adds a note to the timeline; it also says how fast
simulated time runs and when the run ends.  Example::

    speed: 20            # simulated seconds per real second
    duration: 240        # the run stops by itself then
    steps:
      - at: 30
        load: {VM1: 95}  # percent of its vCPUs
        note: a CPU-bound job starts in VM1
      - at: 100
        event: overload VM2
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import ParseError, TuneError
from ..events.event import make_event

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager

log = logging.getLogger(__name__)
STEP_KEYS = {"at", "load", "event", "note"}


@dataclass
class Step:
    at: float
    load: dict[str, float] = field(default_factory=dict)
    event: Optional[tuple[str, ...]] = None
    note: str = ""


@dataclass
class Scenario:
    speed: float = 20.0
    duration: Optional[float] = None
    steps: list[Step] = field(default_factory=list)
    file: Optional[str] = None


def _number(value: Any, what: str, file: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError(f"{what} must be a number, not {str(value)[:40]!r}", file=file)
    if value < minimum:
        raise ParseError(f"{what} must be at least {minimum:g}", file=file)
    return float(value)


def parse_scenario(path: str) -> Scenario:
    import yaml
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ParseError(f"cannot read scenario: {exc.strerror}", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParseError(f"malformed YAML: {getattr(exc, 'problem', exc)}", file=path,
                         line=mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParseError("a scenario is a mapping with speed, duration and steps", file=path)
    unknown = set(data) - {"speed", "duration", "steps"}
    if unknown:
        raise ParseError(f"unknown scenario key(s): {', '.join(sorted(map(str, unknown)))}", file=path)
    sc = Scenario(file=path)
    if "speed" in data:
        sc.speed = _number(data["speed"], "speed", path, 0.001)
    if data.get("duration") is not None:
        sc.duration = _number(data["duration"], "duration", path)
    steps = data.get("steps") or []
    if not isinstance(steps, list):
        raise ParseError("steps must be a list", file=path)
    for i, raw in enumerate(steps, 1):
        if not isinstance(raw, dict) or "at" not in raw:
            raise ParseError(f"step {i}: needs 'at'", file=path)
        bad = set(raw) - STEP_KEYS
        if bad:
            raise ParseError(f"step {i}: unknown key(s) {', '.join(sorted(map(str, bad)))}", file=path)
        step = Step(at=_number(raw["at"], f"step {i}: at", path), note=str(raw.get("note", "")))
        if "load" in raw:
            if not isinstance(raw["load"], dict):
                raise ParseError(f"step {i}: load is a mapping VM: percent", file=path)
            step.load = {str(k): _number(v, f"step {i}: load of {k}", path) for k, v in raw["load"].items()}
        if "event" in raw:
            words = str(raw["event"]).split()
            try:
                make_event(words[0] if words else "", words[1:])
            except TuneError as exc:
                raise ParseError(f"step {i}: {exc.message}", file=path) from None
            step.event = tuple(words)
        sc.steps.append(step)
    sc.steps.sort(key=lambda s: s.at)
    return sc


class ScenarioPlayer:
    """Plays a scenario against a running manager in a thread of its own."""

    def __init__(self, manager: "Manager", scenario: Scenario) -> None:
        self.m = manager
        self.scenario = scenario
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.applied: list[Step] = []
        self.handlers: dict[str, Callable[[Step], None]] = {"load": self._load, "event": self._event}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tune-scenario", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        clock = self.m.clock
        for step in self.scenario.steps:
            if clock.wait(self._stop, step.at - clock.now()):
                return
            self.m.notify("scenario.step", at=step.at, note=step.note,
                          load={k: v for k, v in step.load.items()}, event=" ".join(step.event or ()))
            for key, handler in self.handlers.items():
                if getattr(step, key):
                    try:
                        handler(step)
                    except TuneError as exc:
                        log.error("scenario step at %gs: %s", step.at, exc)
            self.applied.append(step)
        duration = self.scenario.duration
        if duration is not None:
            if not clock.wait(self._stop, duration - clock.now()):
                self.m.notify("scenario.end", at=duration)
                self.m.request_stop()

    def _load(self, step: Step) -> None:
        for name, value in step.load.items():
            self.m.world.set_load(name, value)

    def _event(self, step: Step) -> None:
        assert step.event is not None
        self.m.emit(step.event[0], *step.event[1:], source="scenario")
