"""The manager on the embedded simulated grid: allocation, binding, deployment, diagrams, events."""

import json
import os
import stat
import time

import pytest

from tune.adl.loader import load_application
from tune.clock import SimClock
from tune.components import Lifecycle
from tune.errors import MultiplicityError, ValidationError
from tune.events.control import request
from tune.manager import Manager
from tune.testing import CALLS, sim_manager, wait_for

HERE = os.path.dirname(__file__)
WEB = os.path.join(HERE, "apps", "web", "app.xml")
XEN = os.path.join(os.path.dirname(HERE), "examples", "xen_attitune", "app.xml")


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.reset()
    yield
    CALLS.reset()


def test_plan_places_and_binds_the_example_exactly(tmp_path):
    m = Manager(load_application(XEN), clock=SimClock(100), state_dir=str(tmp_path / "s"))
    sr = m.plan()
    assert sr.placement() == {"VM1": "dom0-a", "VM2": "dom0-a", "VM3": "dom0-b", "VM4": "dom0-b",
                              "Probe1": "dom0-a", "Probe2": "dom0-a", "Probe3": "dom0-b", "Probe4": "dom0-b",
                              "Consolidator1": "tune-manager"}
    assert {p.srname: [v.srname for v in sr.bound(p.srname, "VM")] for p in sr.instances("Probe")} == {
        "Probe1": ["VM1"], "Probe2": ["VM2"], "Probe3": ["VM3"], "Probe4": ["VM4"]}
    assert sr.binding_problems() == []
    # probes sit beside their VM without taking a VM slot
    assert sr.free_slots("dom0-a") == 0 and sr.free_slots("dom0-c") == 2
    assert sr.instance("VM3").dir_local == "/var/lib/tune/xen-attitune/VM3"
    m.shutdown()


def test_plan_binds_star_and_one(tmp_path):
    m = Manager(load_application(WEB), clock=SimClock(100), state_dir=str(tmp_path / "s"))
    sr = m.plan()
    assert [c.srname for c in sr.bound("Balancer1", "Web")] == ["Web1", "Web2"]
    assert [c.srname for c in sr.bound("Web1", "Db")] == ["Db1"]
    assert [c.srname for c in sr.bound("Db1", "Web")] == ["Web1", "Web2"]
    assert sr.placement() == {"Balancer1": "n1", "Db1": "n1", "Web1": "n2", "Web2": "n3"}
    m.shutdown()


def test_deploy_unpacks_legacy_file_and_creates_pipe(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        web1 = m.sr.instance("Web1")
        ex = m.executor(web1.node)
        site = os.path.join(ex.path(web1.dir_local), "www", "index.html")
        assert open(site).read() == "<h1>hello</h1>\n"
        pipe = os.path.join(ex.path(web1.dir_local), "tune.pipe")
        assert stat.S_ISFIFO(os.stat(pipe).st_mode)
        assert all(c.state is Lifecycle.STARTED for c in m.sr.instances())
        started = [c.instance for c in CALLS.of("start")]
        assert started[0] == "Db1" and sorted(started[1:]) == ["Balancer1", "Web1", "Web2"]
        root = ex.path("/srv/tune/webtier")
    # undeployment cleaned the node
    assert not os.path.exists(root)


def test_fork_branches_overlap_in_a_real_manager(tmp_path):
    app = load_application(WEB)
    for name in ("Web", "Balancer"):
        app.components[name].attributes["sleep"] = "0.3"
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"))
    try:
        t0 = time.monotonic()
        m.deploy()
        elapsed = time.monotonic() - t0
    finally:
        m.shutdown()
    web = CALLS.of("start", "Web1")[0]
    web2 = CALLS.of("start", "Web2")[0]
    lb = CALLS.of("start", "Balancer1")[0]
    db = CALLS.of("start", "Db1")[0]
    # the fork's two branches, and the two instances of Web, ran at the same time
    assert web.overlaps(lb) and web2.overlaps(lb) and web.overlaps(web2)
    # the action before the fork ended before any branch started
    assert db.ended <= min(web.started, web2.started, lb.started)
    assert elapsed < 0.6 + 0.5  # three 0.3 s calls concurrently, not 0.9 s in a row


def test_scale_up_creates_binds_deploys_and_starts(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        run = m.run_diagram("scale")
        assert run.status == "completed", run.error
        assert [c.srname for c in m.sr.instances("Web")] == ["Web1", "Web2", "Web3", "Web4"]
        assert [c.srname for c in run.new] == ["Web3", "Web4"]
        assert {c.srname: c.state for c in run.new} == {"Web3": Lifecycle.STARTED, "Web4": Lifecycle.STARTED}
        assert [c.srname for c in m.sr.bound("Balancer1", "Web")] == ["Web1", "Web2", "Web3", "Web4"]
        assert [c.srname for c in m.sr.bound("Web3", "Db")] == ["Db1"]
        assert m.sr.binding_problems() == []
        cfg = CALLS.of("configure", "Balancer1")
        assert cfg and cfg[-1].args == ("Balancer1", "Web3,Web4")
        # Web3's archive really is on its node
        web3 = m.sr.instance("Web3")
        assert os.path.exists(os.path.join(m.executor(web3.node).path(web3.dir_local), "www", "index.html"))


def test_scale_guard_stops_growth(tmp_path):
    from dataclasses import replace
    app = load_application(WEB)
    fam = app.families["cluster"]
    fam.nodes = [replace(n, slots=4) for n in fam.nodes]  # 12 slots
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"))
    try:
        m.deploy()
        assert [m.run_diagram("scale").status for _ in range(3)] == ["completed"] * 3
        assert m.sr.count("Web") == 6   # 2 -> 4 -> 6, then "Web.count < 5" is false: else -> end
        chosen = [t.detail for t in m.runs[-1].trace if t.kind == "choice"]
        assert chosen == ["[else] -> end"]
    finally:
        m.shutdown()


def test_scale_up_without_room_adds_nothing(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        m.run_diagram("scale")          # 4 web + lb + db = 6 slots: full
        before = m.sr.to_dict()
        run = m.run_diagram("scale")    # guard true (4 < 5) but no slot for 2 more
        assert run.status == "failed" and "no free slot" in str(run.error)
        after = m.sr.to_dict()
        assert after["instances"] == before["instances"] and after["bindings"] == before["bindings"]


def test_remove_stops_unbinds_undeploys_and_frees_the_slot(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        web2 = m.sr.instance("Web2")
        folder = m.executor(web2.node).path(web2.dir_local)
        assert os.path.isdir(folder)
        free_before = m.sr.free_slots(web2.node)
        run = m.run_diagram("shrink", "Web2")
        assert run.status == "completed", run.error
        assert not m.sr.has_instance("Web2")
        assert [c.srname for c in m.sr.bound("Balancer1", "Web")] == ["Web1"]
        assert not os.path.exists(folder)
        assert m.sr.free_slots("n3") == free_before + 1
        assert [c.instance for c in CALLS.of("stop")] == ["Web2"]


def test_assignment_then_call_sees_the_new_value(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        run = m.run_diagram("configure", "Web1")
        assert run.status == "completed"
        assert m.sr.instance("Web1").attributes["port"] == "9090"
        assert CALLS.of("configure", "Web1")[0].args == ("Web1", "Web1")


def test_failure_cancels_branch_reports_and_compensates(tmp_path):
    app = load_application(WEB)
    app.components["Web"].attributes["fail"] = "configure"
    app.components["Db"].attributes["sleep"] = "0.2"
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"))
    try:
        m.deploy()
        run = m.run_diagram("broken", "Web1")
        assert run.status == "failed"
        assert run.error.diagram == "broken" and run.error.node == "bad" and run.error.instance == "Web1"
        assert "failed on purpose" in str(run.error)
        # the other branch finished; what came after the join never ran
        assert [c.instance for c in CALLS.of("configure")] == ["Web1", "Db1"] or \
            sorted(c.instance for c in CALLS.of("configure")) == ["Db1", "Web1"]
        assert not CALLS.of("configure", "Balancer1")
        assert [n.status for n in run.trace if n.node == "after"] == ["skipped"]
        # the compensation diagram ran, and a failed configure leaves Web1 started (it still runs)
        assert [c.args for c in CALLS.of("log")] == [("compensated",)]
        assert m.sr.instance("Web1").state is Lifecycle.STARTED
        assert "failed on purpose" in m.sr.instance("Web1").error
    finally:
        m.shutdown()


def test_failing_start_marks_instance_failed(tmp_path):
    app = load_application(WEB)
    app.components["Balancer"].attributes["fail"] = "start"
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"))
    try:
        with pytest.raises(Exception) as err:
            m.deploy()
        assert "Balancer1" in str(err.value)
        assert m.sr.instance("Balancer1").state is Lifecycle.FAILED
        assert m.sr.instance("Db1").state is Lifecycle.STARTED
    finally:
        m.shutdown()


def test_action_on_zero_instances_is_a_logged_no_op(tmp_path, caplog):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        run = m.run_diagram("ghost")
        assert run.status == "completed"
        assert "Ghost has no instance" in caplog.text


def test_impossible_multiplicities_refuse_deployment_before_anything(tmp_path):
    app = load_application(WEB)
    app.bindings[1].from_multiplicity = app.bindings[1].from_multiplicity.parse("1")  # one Web per Db
    m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / "s"))
    with pytest.raises(MultiplicityError) as err:
        m.deploy()
    assert "Web->Db" in str(err.value)
    assert not os.path.exists(str(tmp_path / "s" / "simgrid"))
    m.shutdown()


def test_events_unknown_rejected_coalesced_and_queued(tmp_path):
    app = load_application(WEB)
    app.components["Web"].attributes["sleep"] = "0.3"
    for policy, expect in (("coalesce", {"coalesced": 1, "handled": 1}), ("queue", {"queued": 1, "handled": 2})):
        CALLS.reset()
        m = Manager(app, clock=SimClock(100), state_dir=str(tmp_path / policy), event_policy=policy)
        try:
            m.deploy()
            m.emit("nosuchevent", "Web1")
            m.emit("configure", "Web9")     # no such instance
            m.emit("configure", "Web1")
            m.emit("configure", "Web1")     # while the first still runs
            assert wait_for(lambda: m.bus.counters["handled"] == expect["handled"], 10)
            time.sleep(0.1)
            counters = dict(m.bus.counters)
            assert counters["unknown"] == 1 and counters["rejected"] == 1
            for k, v in expect.items():
                assert counters[k] == v, (policy, counters)
            assert counters["received"] == 4
        finally:
            m.shutdown()


def test_control_socket_is_private_and_answers(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        sock = os.path.join(m.state_dir, "manager.sock")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(m.state_dir).st_mode) == 0o700
        status = request(m.state_dir, {"op": "status"})["status"]
        assert {i["srname"] for i in status["instances"]} == {"Balancer1", "Db1", "Web1", "Web2"}
        web = next(i for i in status["instances"] if i["srname"] == "Web1")
        assert web["attributes"]["password"] == "***"   # secrets are redacted
        assert request(m.state_dir, {"op": "event", "name": "configure", "args": ["Web2"]})["ok"]
        assert wait_for(lambda: CALLS.of("configure", "Web2"), 5)
        bad = None
        try:
            request(m.state_dir, {"op": "event", "name": "x; rm -rf /", "args": []})
        except Exception as exc:  # noqa: BLE001
            bad = exc
        assert bad is not None and "bad event name" in str(bad)


def test_node_pipe_lines_become_events(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        web1 = m.sr.instance("Web1")
        pipe = os.path.join(m.executor(web1.node).path(web1.dir_local), "tune.pipe")
        with open(pipe, "w") as fh:
            fh.write("configure;Web1\n")
            fh.write("\x01bad\n")
        assert wait_for(lambda: CALLS.of("configure", "Web1"), 5)
        assert wait_for(lambda: any(r.bad_lines == 1 for r in m._relays), 5)


def test_sr_snapshot_round_trips(tmp_path):
    from tune.components import SystemRepresentation
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        data = json.load(open(os.path.join(m.state_dir, "sr.json")))
        again = SystemRepresentation.from_dict(data)
        assert again.to_dict() == m.sr.to_dict()
        assert data["instances"][0]["attributes"] != {} and "hunter2" not in json.dumps(data)


def test_unknown_diagram_and_validation(tmp_path):
    from tune.errors import UsageError
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        with pytest.raises(UsageError):
            m.run_diagram("nope")
    with pytest.raises(ValidationError) as err:
        load_application(str(tmp_path / "missing.xml"))
    assert err.value.exit_code == 2 and "no such file" in str(err.value)


def test_events_arriving_while_stopping_start_nothing(tmp_path):
    with sim_manager(WEB, state_dir=str(tmp_path / "s")) as m:
        m.request_stop()
        m.emit("configure", "Web1")
        assert wait_for(lambda: m.bus.counters["rejected"] == 1, 5)
        assert not CALLS.of("configure")
        assert [e.data["error"] for e in m.timeline if e.kind == "event.rejected"] == ["the manager is stopping"]


def test_a_late_emit_after_shutdown_does_not_revive_the_dispatcher(tmp_path):
    m = Manager(load_application(WEB), clock=SimClock(100), state_dir=str(tmp_path / "s"))
    m.deploy()
    m.shutdown()
    m.emit("configure", "Web1")          # a probe or timer thread firing once more
    assert m.bus._thread is None and m.bus.counters["dropped_closed"] == 1
    assert not CALLS.of("configure")
