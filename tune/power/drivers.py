"""Switching physical hosts off and on: simulated, IPMI (``ipmitool``) and Wake-on-LAN.

A consolidation plan says which hosts to power off and on; a :class:`PowerDriver` does it.
Drivers run commands through an executor (:mod:`tune.remote.base`), never a shell string, and
never put a BMC password on a command line (it would show in ``ps`` and in our logs): ipmitool
gets it through ``-E`` (the ``IPMI_PASSWORD`` environment variable) or ``-f PASSFILE``.
"""

from __future__ import annotations

import logging
import re
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from ..errors import CommandFailed, UsageError
from ..registry import Registry
from ..remote.base import Executor

log = logging.getLogger(__name__)

ON, OFF, UNKNOWN = "on", "off", "unknown"


class PowerDriver(ABC):
    """Powers hosts off and on and reports their state (``"on"``, ``"off"``, ``"unknown"``)."""

    name: str = ""

    @abstractmethod
    def power_off(self, host: str) -> None:
        """Switch ``host`` off (or suspend it)."""

    @abstractmethod
    def power_on(self, host: str) -> None:
        """Switch ``host`` on (or wake it)."""

    @abstractmethod
    def state(self, host: str) -> str:
        """``"on"``, ``"off"`` or ``"unknown"``."""


class SimPowerDriver(PowerDriver):
    """In-memory power states, for the simulator and tests.  Unknown hosts start ``on``."""

    name = "sim"

    def __init__(self, initial: Optional[Mapping[str, str]] = None) -> None:
        self.states: dict[str, str] = dict(initial or {})
        self.history: list[tuple[str, str]] = []

    def power_off(self, host: str) -> None:
        self.states[host] = OFF
        self.history.append((host, OFF))

    def power_on(self, host: str) -> None:
        self.states[host] = ON
        self.history.append((host, ON))

    def state(self, host: str) -> str:
        return self.states.get(host, ON)


@dataclass(frozen=True)
class BMC:
    """How to reach one host's baseboard management controller."""

    address: str
    user: str = "ADMIN"
    password: Optional[str] = None      #: passed through IPMI_PASSWORD, never on the command line
    password_file: Optional[str] = None  #: or a file readable by ipmitool (``-f``)
    interface: str = "lanplus"


class IpmitoolDriver(PowerDriver):
    """``ipmitool -I lanplus -H BMC -U USER -E chassis power off|on|status``.

    ``executor`` runs ipmitool (usually the management node's local executor); ``bmcs`` maps a
    host name to its :class:`BMC`.
    """

    name = "ipmitool"

    def __init__(self, executor: Executor, bmcs: Mapping[str, BMC], *, timeout: float = 30.0) -> None:
        self.executor = executor
        self.bmcs = dict(bmcs)
        self.timeout = timeout

    def command(self, host: str, action: str) -> tuple[list[str], dict[str, str]]:
        """The argv and extra environment for ``chassis power ACTION`` on ``host``."""
        try:
            bmc = self.bmcs[host]
        except KeyError:
            raise UsageError(f"no BMC configured for host {host!r}") from None
        argv = ["ipmitool", "-I", bmc.interface, "-H", bmc.address, "-U", bmc.user]
        env: dict[str, str] = {}
        if bmc.password_file:
            argv += ["-f", bmc.password_file]
        elif bmc.password is not None:
            argv.append("-E")
            env["IPMI_PASSWORD"] = bmc.password
        argv += ["chassis", "power", action]
        return argv, env

    def _run(self, host: str, action: str) -> str:
        argv, env = self.command(host, action)
        log.info("ipmitool %s on %s (BMC %s)", action, host, self.bmcs[host].address)
        result = self.executor.run(argv, timeout=self.timeout, check=False, env=env or None)
        if result.failed:
            raise CommandFailed(f"ipmitool chassis power {action} failed: {result.stderr.strip()}",
                                host=host, command=" ".join(argv), exit_status=result.exit_status,
                                stdout=result.stdout, stderr=result.stderr)
        return result.stdout

    def power_off(self, host: str) -> None:
        self._run(host, "off")

    def power_on(self, host: str) -> None:
        self._run(host, "on")

    def state(self, host: str) -> str:
        out = self._run(host, "status")
        m = re.search(r"Chassis Power is (on|off)", out, re.IGNORECASE)
        return m.group(1).lower() if m else UNKNOWN


def magic_packet(mac: str) -> bytes:
    """The Wake-on-LAN magic packet: 6 x 0xFF then the MAC address 16 times.

    >>> magic_packet("00:11:22:33:44:55")[:12].hex()
    'ffffffffffff001122334455'
    """
    digits = re.sub(r"[^0-9a-fA-F]", "", mac)
    if len(digits) != 12:
        raise UsageError(f"bad MAC address {mac!r}")
    return b"\xff" * 6 + bytes.fromhex(digits) * 16


class WolDriver(PowerDriver):
    """On: a Wake-on-LAN magic packet (UDP broadcast).  Off: ``systemctl suspend`` or ``poweroff``.

    ``executors(host)`` returns the executor of that host (used to switch it off); ``macs`` maps
    hosts to MAC addresses; ``send`` is the packet sender (injected by tests).
    """

    name = "wol"

    def __init__(self, executors: Callable[[str], Executor], macs: Mapping[str, str], *,
                 broadcast: str = "255.255.255.255", port: int = 9, off_command: str = "suspend",
                 send: Optional[Callable[[bytes, str, int], None]] = None) -> None:
        if off_command not in ("suspend", "poweroff"):
            raise UsageError("off_command must be 'suspend' or 'poweroff'")
        self.executors = executors
        self.macs = dict(macs)
        self.broadcast = broadcast
        self.port = port
        self.off_command = off_command
        self.send = send or _udp_broadcast
        self.states: dict[str, str] = {}

    def power_off(self, host: str) -> None:
        argv = ["systemctl", "suspend"] if self.off_command == "suspend" else ["systemctl", "poweroff"]
        # the connection usually drops while the host goes down: that is success, not failure
        self.executors(host).run(argv, check=False, timeout=30)
        self.states[host] = OFF

    def power_on(self, host: str) -> None:
        try:
            mac = self.macs[host]
        except KeyError:
            raise UsageError(f"no MAC address configured for host {host!r}") from None
        self.send(magic_packet(mac), self.broadcast, self.port)
        self.states[host] = ON

    def state(self, host: str) -> str:
        try:
            return ON if self.executors(host).alive(timeout=3) else OFF
        except Exception:  # noqa: BLE001 - no answer means we cannot tell
            return self.states.get(host, UNKNOWN)


def _udp_broadcast(packet: bytes, address: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.sendto(packet, (address, port))


power_drivers: Registry[PowerDriver] = Registry("power driver")
power_drivers.register("sim", "tune.power.drivers:SimPowerDriver")
power_drivers.register("ipmitool", "tune.power.drivers:IpmitoolDriver")
power_drivers.register("wol", "tune.power.drivers:WolDriver")
