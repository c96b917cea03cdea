"""The CLI's runtime commands, run for real: the main job, dry runs, a live manager."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tune.cli import main
from tune.testing import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XEN = os.path.join(ROOT, "examples", "xen_attitune", "app.xml")
UML = os.path.join(ROOT, "examples", "xen_attitune", "xen_attitune.uml")
WEB = os.path.join(ROOT, "tests", "apps", "web", "app.xml")


def test_main_job_migrates_vm1_to_the_empty_host(tmp_path, capsys):
    code = main(["deploy", XEN, "--speed", "200", "--state-dir", str(tmp_path / "s"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    # VM1 escaped to the empty dom0-c when busy, and was packed back onto dom0-a once idle
    assert out["final_placement"] == {"VM1": "dom0-a", "VM2": "dom0-a", "VM3": "dom0-b", "VM4": "dom0-b",
                                      "Probe1": "dom0-a", "Probe2": "dom0-a", "Probe3": "dom0-b", "Probe4": "dom0-b",
                                      "Consolidator1": "tune-manager"}
    mig, back = out["migrations"]
    assert (mig["domain"], mig["source"], mig["destination"], mig["status"]) == ("VM1", "dom0-a", "dom0-c", "completed")
    assert (back["domain"], back["source"], back["destination"]) == ("VM1", "dom0-c", "dom0-a")
    rounds = [e for e in out["timeline"] if e["kind"] == "consolidation.round"]
    assert [r["powered_off"] for r in rounds] == [[], ["dom0-c"]]
    # 1024 MB over 1 Gbit/s with VM1 dirtying memory: a few pre-copy rounds, a short downtime
    assert 8.0 < mig["total_time"] < 15.0 and 0.0 < mig["downtime"] < 0.5
    kinds = [e["kind"] for e in out["timeline"]]
    for k in ("deploy.done", "diagram.start", "probe.reading", "event.dispatch", "migration.start",
              "migration.end", "scenario.end", "undeploy.done"):
        assert k in kinds, k
    assert kinds.index("migration.start") < kinds.index("migration.end") < kinds.index("undeploy.done")
    assert out["events"]["handled"] >= 1 and "simulated time" in out["clock"]


def test_main_job_human_output_as_a_fresh_user_sees_it(tmp_path):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "tune", "deploy", XEN, "--speed", "200"], capture_output=True,
                       text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "simulated time, 200x faster than real time" in r.stdout
    assert "Probe1: VM1 at 86.4% CPU  -> threshold crossed, probe fires" in r.stdout
    assert "migrated VM1 dom0-a -> dom0-c in" in r.stdout
    assert "migrating VM1 dom0-c -> dom0-a (consolidation)" in r.stdout
    assert "host dom0-c switched off" in r.stdout
    assert "VM1            dom0-a" in r.stdout and "Traceback" not in r.stderr


def test_uml_model_runs_the_same_scenario(tmp_path, capsys):
    code = main(["deploy", UML, "--speed", "200", "--state-dir", str(tmp_path / "s"), "--json",
                 "--scenario", os.path.join(ROOT, "examples", "xen_attitune", "scenario.yaml")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [m["destination"] for m in out["migrations"]] == ["dom0-c", "dom0-a"]


def test_dry_run_touches_nothing(tmp_path, capsys):
    state = tmp_path / "s"
    code = main(["deploy", WEB, "--dry-run", "--json", "--state-dir", str(state)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and not state.exists()
    assert out["placement"] == {"Balancer1": "n1", "Db1": "n1", "Web1": "n2", "Web2": "n3"}
    assert ["Balancer1", "Web1"] in out["bindings"]
    assert any("site.tar.gz" in c for c in out["commands"]["n2"])


def test_validation_error_exit_code_and_no_traceback(tmp_path, capsys):
    bad = tmp_path / "app.xml"
    bad.write_text("<application name='x'><component name='A' host-family='nope'/></application>")
    assert main(["deploy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1: component A: unknown host-family 'nope'" in err and "Traceback" not in err


def test_event_status_undeploy_against_a_running_manager(tmp_path, capsys):
    state = str(tmp_path / "s")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("code", main(
        ["deploy", WEB, "--state-dir", state, "-q", "--duration", "3600"])))
    t.start()
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(state, "manager.sock")) and
                        os.path.exists(os.path.join(state, "sr.json")), 20)
        time.sleep(0.3)
        assert main(["status", "--state-dir", state, "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert sorted(i["srname"] for i in status["instances"]) == ["Balancer1", "Db1", "Web1", "Web2"]
        assert main(["event", "configure", "Web1", "--state-dir", state]) == 0
        assert "sent 'configure Web1'" in capsys.readouterr().out
        assert main(["event", "bad name!", "--state-dir", state]) == 2
        assert main(["status", "--state-dir", state]) == 0
        table = capsys.readouterr().out
        assert "Web1" in table and "started" in table
        assert main(["undeploy", "--state-dir", state, "--timeout", "30"]) == 0
        t.join(30)
        assert result.get("code") == 0
    finally:
        if t.is_alive():
            main(["undeploy", "--state-dir", state])
            t.join(10)


def test_no_manager_is_a_clear_runtime_error(tmp_path, capsys):
    assert main(["status", "--state-dir", str(tmp_path / "none")]) == 1
    assert "no manager running" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for cmd in ("deploy", "undeploy", "status", "event", "validate", "draw", "simulate", "measure-migration"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 130)])
def test_signal_stops_early_and_undeploys_cleanly(tmp_path, sig, code):
    import signal
    state = tmp_path / "s"
    p = subprocess.Popen([sys.executable, "-m", "tune", "deploy", XEN, "--speed", "5", "--state-dir", str(state)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert wait_for(lambda: (state / "sr.json").exists(), 30)
        time.sleep(0.5)
        p.send_signal(getattr(signal, sig))
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == code, err
    assert "undeployed;" in out and "interrupted: undeployed cleanly" in err and "Traceback" not in err
    assert not (state / "manager.sock").exists()
    assert not (state / "simgrid" / "dom0-a" / "var" / "lib" / "tune" / "xen-attitune").exists()
