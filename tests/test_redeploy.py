"""Deploying again in the same state directory after a clean undeployment starts afresh."""

import json
import os

from tune.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XEN = os.path.join(ROOT, "examples", "xen_attitune", "app.xml")


def test_second_run_in_the_same_state_dir_does_the_same(tmp_path, capsys):
    state = str(tmp_path / "s")
    runs = []
    for _ in range(2):
        assert main(["deploy", XEN, "--speed", "200", "--state-dir", state, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        runs.append([(m["domain"], m["source"], m["destination"], m["status"]) for m in out["migrations"]])
    # the first run ended with dom0-c switched off; the second must not inherit that
    assert runs[0] == runs[1] == [("VM1", "dom0-a", "dom0-c", "completed"), ("VM1", "dom0-c", "dom0-a", "completed")]
