"""Power models and power drivers (command building checked with a recording executor)."""

from __future__ import annotations

import numpy as np
import pytest

from tune.errors import CommandFailed, UsageError
from tune.power import (BMC, HP_ML110_G4, HP_ML110_G5, IpmitoolDriver, LinearPowerModel, SimPowerDriver,
                        TablePowerModel, WolDriver, magic_packet, power_drivers)
from tune.power.models import interp_tables, power_tables
from tune.remote.base import Executor, Result


class RecordingExecutor(Executor):
    """Records argv and environment; answers with canned output."""

    protocol = "record"

    def __init__(self, host: str = "mgmt", stdout: str = "", status: int = 0) -> None:
        super().__init__(host)
        self.calls: list[tuple[list[str], dict]] = []
        self.stdout = stdout
        self.status = status

    def run(self, command, *, timeout=None, check=True, input=None, env=None):  # noqa: A002
        self.calls.append((list(command), dict(env or {})))
        return Result(" ".join(command), self.status, self.stdout, "boom" if self.status else "", self.host)

    def put(self, local_path, remote_path, *, mode=None):  # pragma: no cover - unused
        raise NotImplementedError

    def stream(self, command):  # pragma: no cover - unused
        raise NotImplementedError


def test_spec_tables_at_points_and_between():
    assert HP_ML110_G4.power(0.0) == 86.0
    assert HP_ML110_G4.power(1.0) == 117.0
    assert HP_ML110_G5.power(0.5) == 116.0
    assert HP_ML110_G5.power(0.55) == pytest.approx(118.5)
    assert HP_ML110_G4.power(1.7) == 117.0  # clipped


def test_vectorised_tables_match_scalar():
    tables = power_tables([HP_ML110_G4, HP_ML110_G5, LinearPowerModel(100, 200)])
    u = np.array([0.25, 0.97, 0.5])
    assert np.allclose(interp_tables(tables, u), [HP_ML110_G4.power(0.25), HP_ML110_G5.power(0.97), 150.0])


def test_table_needs_eleven_points():
    with pytest.raises(ValueError):
        TablePowerModel("bad", [1, 2, 3])


def test_sim_driver_records_states():
    d = power_drivers.create("sim")
    assert d.state("a") == "on"
    d.power_off("a")
    assert d.state("a") == "off"
    d.power_on("a")
    assert d.history == [("a", "off"), ("a", "on")]


def test_ipmitool_password_goes_through_environment_not_argv():
    ex = RecordingExecutor(stdout="Chassis Power is off\n")
    d = IpmitoolDriver(ex, {"n1": BMC("10.0.0.1", "admin", password="s3cret")})
    d.power_off("n1")
    assert d.state("n1") == "off"
    argv, env = ex.calls[0]
    assert argv == ["ipmitool", "-I", "lanplus", "-H", "10.0.0.1", "-U", "admin", "-E",
                    "chassis", "power", "off"]
    assert env == {"IPMI_PASSWORD": "s3cret"}
    assert all("s3cret" not in a for a, _ in ex.calls for a in a)


def test_ipmitool_password_file_and_failure():
    ex = RecordingExecutor(status=1)
    d = IpmitoolDriver(ex, {"n1": BMC("bmc1", password_file="/etc/tune/ipmi.pass")})
    with pytest.raises(CommandFailed):
        d.power_on("n1")
    assert ex.calls[0][0] == ["ipmitool", "-I", "lanplus", "-H", "bmc1", "-U", "ADMIN", "-f",
                              "/etc/tune/ipmi.pass", "chassis", "power", "on"]
    with pytest.raises(UsageError):
        d.power_on("unknown")


def test_magic_packet_exact_bytes():
    p = magic_packet("01-23-45-67-89-AB")
    assert len(p) == 102
    assert p == b"\xff" * 6 + bytes([0x01, 0x23, 0x45, 0x67, 0x89, 0xAB]) * 16
    with pytest.raises(UsageError):
        magic_packet("01:23")


def test_wol_driver_sends_packet_and_suspends():
    sent = []
    ex = RecordingExecutor("n1")
    d = WolDriver(lambda h: ex, {"n1": "00:11:22:33:44:55"}, broadcast="10.0.0.255", port=7,
                  send=lambda pkt, addr, port: sent.append((pkt, addr, port)))
    d.power_on("n1")
    assert sent == [(magic_packet("00:11:22:33:44:55"), "10.0.0.255", 7)]
    d.power_off("n1")
    assert ex.calls[-1][0] == ["systemctl", "suspend"]
    d2 = WolDriver(lambda h: ex, {}, off_command="poweroff", send=lambda *a: None)
    d2.power_off("n1")
    assert ex.calls[-1][0] == ["systemctl", "poweroff"]
    with pytest.raises(UsageError):
        d2.power_on("n1")


def test_simpowerdriver_is_registered_with_others():
    assert power_drivers.names() == ["ipmitool", "sim", "wol"]
    assert power_drivers.get("sim") is SimPowerDriver
