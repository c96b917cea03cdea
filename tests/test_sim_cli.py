"""``tune simulate`` end to end on small days (the full-size runs are in docs/simulator.md)."""

from __future__ import annotations

import json

import pytest

from tune.cli import main
from tune.sim.traces import synthetic_day, write_day


@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("days") / "20990101"
    write_day(synthetic_day(40, steps=288, seed=2), str(folder))
    return str(folder)


def test_simulate_json(small_day, capsys):
    assert main(["simulate", "--day", small_day, "--hosts", "40", "--policy", "lr-mmt-1.2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["policy"] == "lr-mmt-1.2" and data["n_vms"] == 40 and data["energy_kwh"] > 0
    assert data["cloudsim"] is None  # no reference for a synthetic day


def test_simulate_compare_table_and_plot(small_day, tmp_path, capsys):
    png = tmp_path / "day.png"
    rc = main(["simulate", "--compare", "--policies", "thr-mmt-0.8,lr-mmt-1.2,steady", "--day", small_day,
               "--day", small_day, "--hosts", "40", "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "steady vs lr-mmt-1.2" in out and out.count("20990101") >= 6
    assert png.stat().st_size > 1000


def test_simulate_errors(tmp_path, capsys):
    assert main(["simulate", "--policy", "nope-mmt-1"]) == 2
    assert "known:" in capsys.readouterr().err
    assert main(["simulate", "--day", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
