"""``tune.measure`` and ``tune measure-migration``: pings around a live migration."""

from __future__ import annotations

import doctest
import json
import os

import pytest

import tune.measure as measure_mod
from test_qemu_fixtures import VMBed, guest, vmbed  # noqa: F401 - fixtures
from tune.cli import main
from tune.measure import Measurement, Pinger, PingSample, measure_migration, read_csv, write_all, write_csv
from tune.virt.base import DomainSpec, MigrationReport

root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (raw ICMP, namespaces)")


def synthetic() -> Measurement:
    samples = [PingSample(i * 0.01, i, None if i in (50, 51, 52, 53, 80) else 0.4 + (i % 3) * 0.1)
               for i in range(200)]
    rep = MigrationReport("vm1", "h1", "h2", "completed", total_time=0.62, downtime=0.03, setup_time=0.001)
    return Measurement("vm1", "10.0.0.5", 0.01, 2.0, samples, 0.45, 1.1, rep)


def test_doctests():
    assert doctest.testmod(measure_mod).failed == 0


def test_summary_figures():
    s = synthetic().summary()
    assert (s["sent"], s["received"], s["lost"], s["longest_loss_run"]) == (200, 195, 5, 4)
    assert s["interruption_s"] == pytest.approx(0.04)
    assert s["interruption_at_s"] == pytest.approx(0.5)
    assert s["total_time_s"] == 0.62 and s["downtime_s"] == 0.03
    assert s["migration_wall_s"] == pytest.approx(0.65)
    assert s["rtt_median_before_ms"] == pytest.approx(0.5)


def test_summary_no_loss_and_empty():
    m = Measurement("vm", "x", 0.01, 2.0, [PingSample(0.0, 0, 1.0)])
    s = m.summary()
    assert s["lost"] == 0 and s["interruption_s"] == 0.0 and s["interruption_at_s"] is None
    assert Measurement("vm", "x", 0.01, 2.0, []).summary()["sent"] == 0
    # lost at the very end counts too
    m = Measurement("vm", "x", 0.01, 2.0, [PingSample(0.0, 0, 1.0), PingSample(0.01, 1, None)])
    assert m.summary()["longest_loss_run"] == 1


def test_csv_round_trip(tmp_path):
    m = synthetic()
    path = str(tmp_path / "m.csv")
    write_csv(m, path)
    with open(path) as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "time_s,seq,rtt_ms,status"
    assert lines[51] == "0.500000,50,,timeout"
    assert read_csv(path) == [
        PingSample(round(s.time, 6), s.seq, None if s.rtt_ms is None else round(s.rtt_ms, 3))
        for s in m.samples]


def test_plot_and_json(tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_all(synthetic(), str(tmp_path / "out"))
    with open(paths["png"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths["json"]) as fh:
        data = json.load(fh)
    assert data["summary"]["lost"] == 5 and data["report"]["status"] == "completed"


@root
def test_pinger_loopback():
    p = Pinger("127.0.0.1", interval=0.01, timeout=0.5).start()
    import time
    time.sleep(0.3)
    samples = p.stop()
    assert 20 <= len(samples) <= 40
    assert all(not s.lost for s in samples)
    assert [s.seq for s in samples] == list(range(len(samples)))


@root
def test_pinger_unreachable_counts_lost(testbed):
    p = Pinger(f"{testbed.subnet}.222", interval=0.02, timeout=0.2).start()  # nobody there
    import time
    time.sleep(0.2)
    samples = p.stop()
    assert samples and all(s.lost for s in samples)


def test_cli_usage_errors(capsys):
    assert main(["measure-migration", "--out", "/tmp/x"]) == 2
    assert "--testbed" in capsys.readouterr().err
    assert main(["measure-migration", "--testbed", "--memory", "32", "--out", "/tmp/x"]) == 2


@pytest.mark.qemu
@root
def test_measure_a_real_migration(vmbed: VMBed, tmp_path):  # noqa: F811
    ip = vmbed.ip(2)
    vmbed.d1.create(DomainSpec("mvm", memory_mb=128, kernel=vmbed.guest.kernel, initrd=vmbed.guest.initrd,
                               cmdline=vmbed.guest.cmdline(f"{ip}/24")))
    try:
        vmbed.d1.wait_console("mvm", "GUEST-UP")
        measure_mod.wait_answers(ip)
        m = measure_migration(vmbed.d1, "mvm", vmbed.d2, ip, before=0.5, after=1.0)
        assert m.error is None and m.report is not None and m.report.ok
        s = m.summary()
        assert s["sent"] >= 120
        assert s["received"] >= s["sent"] - 100, s  # a few lost during the switch, never most
        assert 0 < s["migration_start_s"] < s["migration_end_s"]
        assert s["interruption_s"] < 1.0, s
        assert s["prepare_time_s"] < 5
        paths = write_all(m, str(tmp_path))
        assert os.path.getsize(paths["png"]) > 10_000
        assert vmbed.d2.names() == ["mvm"]
        assert s["guest_errors"] == [], s["guest_errors"]  # the guest's console stayed clean
    finally:
        for d in (vmbed.d1, vmbed.d2):
            if "mvm" in d.names():
                d.destroy("mvm")


@pytest.mark.qemu
@root
def test_cli_on_its_own_testbed(guest, tmp_path, capsys):  # noqa: F811
    out = str(tmp_path / "cli")
    rc = main(["measure-migration", "--testbed", "--memory", "128", "--before", "0.3", "--after", "0.5",
               "--out", out, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0, data
    [run] = data["runs"]
    assert run["summary"]["status"] == "completed" and run["summary"]["memory_mb"] == 128
    for f in ("migration.csv", "migration.png", "migration.json", "summary.json"):
        assert os.path.exists(os.path.join(out, f))
