"""One exception tree rooted at :class:`TuneError`.

Every user mistake (bad file, bad command line, unreachable host) ends in a subclass of
:class:`TuneError` that carries where it happened (file and line, or host and command), so the
CLI can print one clear line and choose the exit code without a traceback.  Exit codes:
2 for usage and validation errors (:attr:`TuneError.exit_code`), 1 for runtime failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional


class TuneError(Exception):
    """Base of every error ``tune`` raises on purpose."""

    #: exit code the CLI uses for this error: 2 usage/validation, 1 runtime.
    exit_code: int = 1

    def __init__(self, message: str, *, file: Optional[str] = None, line: Optional[int] = None,
                 host: Optional[str] = None, command: Optional[str] = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.host = host
        self.command = command
        super().__init__(self.__str__())

    def location(self) -> str:
        if self.file is not None:
            return f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.host is not None:
            return f"{self.host}" + (f" [{self.command}]" if self.command else "")
        return ""

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message


# --- usage and validation (exit 2) -------------------------------------------------------
class UsageError(TuneError):
    """Bad command line or API usage."""

    exit_code = 2


class ValidationError(TuneError):
    """A file is well-formed but says something impossible or inconsistent."""

    exit_code = 2


class ParseError(ValidationError):
    """A file cannot be read as the language it claims to be (malformed XML, bad syntax)."""


class XMLSecurityError(ParseError):
    """An XML document tried to use DTD entities or external resources."""


class NodefileError(ParseError):
    """A bad line in a nodefile or inventory."""


class ExpressionError(ParseError):
    """A bad WDL parameter expression, RDL action or guard."""


class WrapperResolutionError(ValidationError):
    """A wrapper ``key`` does not import, or the class lacks the named method."""


class MultiplicityError(ValidationError):
    """A binding's multiplicities cannot be met."""


class UnknownPolicyError(UsageError):
    """A policy, driver or executor name that is not registered."""


@dataclass
class Problem:
    """One static problem found by ``tune validate``."""

    message: str
    file: Optional[str] = None
    line: Optional[int] = None

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class ValidationFailed(ValidationError):
    """Several problems at once; :attr:`problems` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem("invalid")
        super().__init__(f"{len(self.problems)} problem(s); first: {first}")

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


# --- runtime (exit 1) ---------------------------------------------------------------------
class RuntimeFailure(TuneError):
    """Something that was valid failed while running."""


class ExecutorError(RuntimeFailure):
    """A command or transfer on a node failed."""


class HostUnreachable(ExecutorError):
    """Could not connect to a host (refused, timeout, no route)."""


class HostKeyError(ExecutorError):
    """A host key is unknown under the ``strict`` policy, or has changed."""


class CommandFailed(ExecutorError):
    """A remote or local command exited non-zero."""

    def __init__(self, message: str, *, host: Optional[str] = None, command: Optional[str] = None,
                 exit_status: Optional[int] = None, stdout: str = "", stderr: str = "") -> None:
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message, host=host, command=command)


class CommandTimeout(ExecutorError):
    """A command did not finish within its timeout."""


class GroupError(ExecutorError):
    """Some hosts of a group failed; :attr:`results` maps every host to its result or error."""

    def __init__(self, message: str, results: Mapping[str, Any]) -> None:
        self.results = dict(results)
        super().__init__(message)

    @property
    def failed(self) -> dict[str, BaseException]:
        return {h: r for h, r in self.results.items() if isinstance(r, BaseException)}

    @property
    def succeeded(self) -> dict[str, Any]:
        return {h: r for h, r in self.results.items() if not isinstance(r, BaseException)}


class DriverError(RuntimeFailure):
    """A hypervisor operation failed."""


class DomainNotFound(DriverError):
    """The named domain does not exist on that host."""


class MigrationError(DriverError):
    """A live migration failed; the VM is still on its source (:attr:`report` says more)."""

    def __init__(self, message: str, *, host: Optional[str] = None, command: Optional[str] = None,
                 report: Any = None) -> None:
        self.report = report
        super().__init__(message, host=host, command=command)


class InsufficientResources(DriverError):
    """A host has not enough memory (or CPU) for a domain."""


class AllocationError(RuntimeFailure):
    """No free node slot for a new instance."""


class ActionError(RuntimeFailure):
    """A diagram action failed; says which diagram, node and instance."""

    def __init__(self, message: str, *, diagram: str = "", node: str = "", instance: str = "",
                 cause: Optional[BaseException] = None) -> None:
        self.diagram = diagram
        self.node = node
        self.instance = instance
        self.cause = cause
        where = "/".join(x for x in (diagram, node, instance) if x)
        super().__init__(f"[{where}] {message}" if where else message)


class DiagramCancelled(RuntimeFailure):
    """A running diagram was cancelled."""


class ManagerError(RuntimeFailure):
    """Talking to a running manager failed (no manager, bad reply)."""


class SimulationError(ValidationError):
    """Bad simulator input: traces, setup, parameters."""


__all__ = [name for name in dir() if name.endswith(("Error", "Failure", "Failed", "Unreachable",
                                                      "Timeout", "Found", "Resources", "Cancelled"))] + [
    "Problem"]
