"""Executors: how ``tune`` runs commands on nodes (local, simulated, SSH)."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Command, Executor, Result, Shell, Stream, quote_command

executors: Registry[Executor] = Registry("executor")
executors.register("local", "tune.remote.local:LocalExecutor")
executors.register("sim", "tune.remote.sim:SimExecutor")
executors.register("ssh", "tune.remote.ssh:SSHExecutor", extra="ssh")


def executor_for(protocol: str, host: str, **options: Any) -> Executor:
    """Create the executor registered for ``protocol`` (``local``, ``sim``, ``ssh``)."""
    return executors.create(protocol, host, **options)


__all__ = ["Command", "Executor", "Result", "Shell", "Stream", "quote_command", "executors",
           "executor_for"]
