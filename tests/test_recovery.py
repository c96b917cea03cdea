"""Journal and recovery: the manager killed with SIGKILL at every step of a migration and of a
Comp++, then resumed; afterwards every VM runs exactly once, nothing is deployed twice, and the
System Representation says what the hosts say.

Each crash run is a real process (this file run as a script): it deploys, arms the crash point
(``configure_crash``, the hook behind ``TUNE_CRASH_AT``), runs one diagram and is killed at the
N-th occurrence of one step.  A normal run first records every step name (the trace); the loop
then crashes at each of them.  The simulated world outlives the process in the state directory
(``tune.virt.simstate``), as the hosts of a real grid would.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
XEN = os.path.join(ROOT, "examples", "xen_attitune", "app.xml")
WEB = os.path.join(HERE, "apps", "web", "app.xml")


# ---- the crash run (this file as a script) -----------------------------------------------------
def _script_main(argv: list[str]) -> None:  # pragma: no cover - runs in the child process
    sys.path.insert(0, ROOT)
    from tune.adl.loader import load_application
    from tune.clock import Clock, SimClock
    from tune.manager import Manager
    from tune.manager.journal import configure_crash

    app_path, state, grid, diagram, *args = argv
    app = load_application(app_path, grid=grid or None)
    if "Probe" in app.components:
        app.components["Probe"].attributes.update(period="1", samples="2")
    m = Manager(app, state_dir=state, clock=Clock() if grid else SimClock(100), control_socket=False)
    if diagram == "--resume":   # recover, then leave without undeploying
        configure_crash(os.environ.get("CRASH") or None, os.environ.get("TRACE") or None)
        print(json.dumps(m.resume()), flush=True)
        os._exit(0)
    if diagram == "--deploy":   # crash points during the deployment itself
        configure_crash(os.environ.get("CRASH") or None, os.environ.get("TRACE") or None)
        m.deploy()
        print(json.dumps({"status": "completed"}), flush=True)
        os._exit(0)
    m.deploy()
    configure_crash(os.environ.get("CRASH") or None, os.environ.get("TRACE") or None)
    run = m.run_diagram(diagram, *args)
    print(json.dumps({"status": run.status, "error": str(run.error) if run.error else None}), flush=True)
    os._exit(0)  # leave everything deployed: the manager "dies" after the diagram


def _zygote_main() -> None:  # pragma: no cover - runs in the zygote process
    """Import tune once, then fork one child per request (each child a fresh manager process)."""
    import time
    import traceback
    import importlib
    sys.path.insert(0, ROOT)
    for name in ("tune.adl.loader", "tune.manager", "tune.policies.placement", "tune.probes.cpu",
                 "tune.testing", "examples.xen_attitune.vm"):
        try:  # preloading is only an optimisation: a child imports what is missing
            importlib.import_module(name)
        except ImportError:
            pass
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                os.environ.update(req["env"])
                for fd, path in ((1, req["out"]), (2, req["err"])):
                    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
                _script_main(req["argv"])
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            os._exit(0)
        deadline = time.monotonic() + req["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = -1
                break
            time.sleep(0.005)
        rc = -os.WTERMSIG(status) if status >= 0 and os.WIFSIGNALED(status) else \
            (os.WEXITSTATUS(status) if status >= 0 else 999)
        print(json.dumps({"rc": rc}), flush=True)


class Zygote:
    """A process that imported tune once and forks a child per crash run: each run saves the
    second of imports a fresh ``python`` pays (the child is still a separate, killable process)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--zygote"], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=dict(os.environ, PYTHONPATH=ROOT))

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        import tempfile
        with tempfile.TemporaryDirectory(prefix="tune-crash-") as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "out": out, "err": err,
                                              "timeout": timeout}) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
            if not answer:
                raise RuntimeError(f"the crash-run zygote died (exit {self.proc.poll()})")
            rc = json.loads(answer)["rc"]
            read = lambda p: open(p).read() if os.path.exists(p) else ""  # noqa: E731
            return subprocess.CompletedProcess(argv, rc, read(out), read(err))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


_ZYGOTES: "queue.Queue[Zygote]" = queue.Queue()
_ALL: list[Zygote] = []


def _take_zygote() -> Zygote:
    try:
        return _ZYGOTES.get_nowait()
    except queue.Empty:
        z = Zygote()
        _ALL.append(z)
        atexit.register(z.close)
        return z


def crash_run(app: str, state: str, diagram: str, args: list[str], *, crash: str = "", trace: str = "",
              grid: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """One manager process (forked from a zygote): ``_script_main`` with these arguments."""
    z = _take_zygote()
    try:
        return z.run([app, state, grid, diagram, *args], {"CRASH": crash, "TRACE": trace}, timeout)
    finally:
        _ZYGOTES.put(z)


def crash_points(app: str, state: str, diagram: str, args: list[str], grid: str = "") -> list[str]:
    """Every ``step:n`` a normal run of ``diagram`` goes through (its trace)."""
    trace = state + ".trace"
    proc = crash_run(app, state, diagram, args, trace=trace, grid=grid)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["status"] == "completed"
    with open(trace) as fh:
        return [line.strip() for line in fh if line.strip()]


def run_crashes(app: str, base: str, diagram: str, args: list[str], points: list[str], grid: str = "",
                workers: int = 2) -> Iterator[tuple[str, str]]:
    """One killed process per crash point (``workers`` at once); yields (point, state dir) as each dies,
    so the caller checks the recovery of one while the next ones run."""
    def one(point: str) -> tuple[str, str]:
        state = os.path.join(base, point.replace(":", "-"))
        proc = crash_run(app, state, diagram, args, crash=point, grid=grid)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])
        return point, state

    with ThreadPoolExecutor(workers) as pool:
        for fut in as_completed([pool.submit(one, p) for p in points]):
            yield fut.result()


# ---- what must hold after recovery --------------------------------------------------------------
def instance_dirs(m) -> dict[str, list[str]]:
    """Instance name -> the nodes whose application folder holds its folder (by the hosts)."""
    found: dict[str, list[str]] = {}
    for node in m.sr.nodes():
        ex = m.executor(node.id)
        base = ex.path(os.path.join(node.dirlocal, m.app.name))
        if os.path.isdir(base):
            for name in os.listdir(base):
                if os.path.isdir(os.path.join(base, name)):
                    found.setdefault(name, []).append(node.id)
    return found


def check_journal_closed(m) -> None:
    j = m.journal
    assert j.open_intents(j.live_deployment().seq) == []


def check_xen(m, point: str) -> str:
    """Invariants of the Xen example after recovery; returns where VM1 ended."""
    from tune.components import Lifecycle
    sr, world = m.sr, m.world
    vms = {c.srname: c for c in sr.instances("VM")}
    assert sorted(world.domains) == sorted(vms) == ["VM1", "VM2", "VM3", "VM4"], point
    for name, comp in vms.items():
        dom = world.domains[name]
        assert dom.migrating_to is None and dom.host == comp.node, (point, name, dom, comp.node)
        assert comp.state is Lifecycle.STARTED, (point, name, comp.state)
    for probe in sr.instances("Probe"):
        [vm] = sr.bound(probe.srname, "VM")
        assert probe.node == vm.node and probe.state is Lifecycle.STARTED, (point, probe)
    # per-process wrappers come back: the probes (no host family) and the Consolidator, whose class
    # says tune_recovery = "restart" (its timer lived in the dead manager)
    assert sorted(m.recovery.restarted) == ["Consolidator1", "Probe1", "Probe2", "Probe3", "Probe4"], point
    assert sr.binding_problems() == []
    # nothing deployed twice: one folder per instance, on one node
    dirs = instance_dirs(m)
    assert sorted(dirs) == sorted(c.srname for c in sr.instances()), point
    assert all(len(nodes) == 1 for nodes in dirs.values()), (point, dirs)
    where = vms["VM1"].node
    assert where in ("dom0-a", "dom0-c"), point
    if where == "dom0-c":   # the migration is recorded as completed, by the run or by recovery
        assert any(r.domain == "VM1" and r.ok for r in m.migrations) or \
            any(r.kind == "migrate.done" for r in m.journal.records(m.recovery.deployment)), point
    check_journal_closed(m)
    return where


def check_web(m, point: str) -> list[str]:
    """Invariants of the web tier after a Comp++ (scale) was interrupted; returns the Web names."""
    from tune.components import Lifecycle
    sr = m.sr
    webs = [c.srname for c in sr.instances("Web")]
    assert webs in (["Web1", "Web2"], ["Web1", "Web2", "Web3", "Web4"]), (point, webs)
    dirs = instance_dirs(m)
    assert sorted(dirs) == sorted(c.srname for c in sr.instances()), (point, dirs)
    for c in sr.instances():
        assert dirs[c.srname] == [c.node], (point, c.srname, dirs[c.srname], c.node)
    assert sr.binding_problems() == [], point
    assert [c.srname for c in sr.bound("Balancer1", "Web")] == webs, point
    for name in ("Db1", "Balancer1", "Web1", "Web2"):
        assert sr.instance(name).state is Lifecycle.STARTED, (point, name)
    for name in webs[2:]:
        state = sr.instance(name).state
        assert state in (Lifecycle.STARTED, Lifecycle.STOPPED, Lifecycle.FAILED), (point, name, state)
        if state is Lifecycle.FAILED:
            assert "interrupted" in sr.instance(name).error
    check_journal_closed(m)
    return webs


def resume(app_path: str, state: str, grid: str = "", clock=None):
    from tune.adl.loader import load_application
    from tune.clock import SimClock
    from tune.manager import Manager
    app = load_application(app_path, grid=grid or None)
    m = Manager(app, state_dir=state, clock=clock or SimClock(100), control_socket=False)
    m.resume()
    return m


# ---- the tests ------------------------------------------------------------------------------------
def test_migration_killed_at_every_step_is_recovered(tmp_path):
    points = crash_points(XEN, str(tmp_path / "normal"), "overload", ["VM1", "dom0-c"])
    steps = {p.split(":")[0] for p in points}
    assert {"run.begin", "node.begin", "call.intent", "migrate.intent", "sim.save", "relocate",
            "migrate.done", "call.done", "node.end", "run.end"} <= steps
    outcome = {}
    for point, state in run_crashes(XEN, str(tmp_path), "overload", ["VM1", "dom0-c"], points):
        m = resume(XEN, state)
        try:
            outcome[point] = check_xen(m, point)
            again = m.journal.open_intents(m.recovery.deployment)
            assert again == []
        finally:
            m.shutdown()
        assert m.world.domains == {}   # the stop diagram after recovery stopped every VM once
    # before the driver moved it, VM1 stays on dom0-a; once the world says dom0-c, it is recorded there
    first_move = points.index("sim.save:2")
    assert all(outcome[p] == "dom0-a" for p in points[:first_move]), outcome
    assert all(outcome[p] == "dom0-c" for p in points[first_move:]), outcome


def test_migration_recovery_records_what_the_driver_did(tmp_path):
    """Killed right after the driver completed, before the manager recorded anything."""
    state = str(tmp_path / "s")
    assert crash_run(XEN, state, "overload", ["VM1", "dom0-c"], crash="sim.save:2").returncode == -signal.SIGKILL
    m = resume(XEN, state)
    try:
        rep = m.recovery
        assert rep.actions == ["migration of VM1 dom0-a -> dom0-c: found completed, recorded on dom0-c",
                               "Probe1: placed beside VM1 on dom0-c again"]
        assert rep.interrupted_runs == [{"run": rep.interrupted_runs[0]["run"], "diagram": "overload",
                                         "args": ["VM1", "dom0-c"]}]
        assert [(r.domain, r.source, r.destination, r.status) for r in m.migrations] == \
            [("VM1", "dom0-a", "dom0-c", "completed")]
        kinds = [r.kind for r in m.journal.records(rep.deployment)]
        assert kinds[-1] == "recovery.end" and "migrate.done" in kinds[kinds.index("recovery.begin"):]
        # and it serves again: VM2's restarted probe fires, the overload diagram migrates VM2
        from tune.testing import wait_for
        m.world.set_load("VM2", 95)
        assert wait_for(lambda: any(r.domain == "VM2" and r.ok for r in m.migrations), 20), m.status()
        assert m.sr.instance("VM2").node != "dom0-a" and m.world.domains["VM2"].host == m.sr.instance("VM2").node
        assert m.sr.instance("Probe2").node == m.sr.instance("VM2").node
    finally:
        m.shutdown()


def test_migration_killed_before_the_driver_stays_on_the_source(tmp_path):
    state = str(tmp_path / "s")
    assert crash_run(XEN, state, "overload", ["VM1", "dom0-c"], crash="migrate.intent").returncode == -signal.SIGKILL
    m = resume(XEN, state)
    try:
        assert m.sr.instance("VM1").node == "dom0-a" and m.world.domains["VM1"].host == "dom0-a"
        [report] = m.migrations
        assert report.status == "failed" and "interrupted by a manager crash" in report.message
        # the world was saved mid-migration? then recovery rolled it back; either way not migrating
        assert m.world.domains["VM1"].migrating_to is None
    finally:
        m.shutdown()


def test_an_unreachable_host_leaves_the_migration_open_until_it_answers(tmp_path, monkeypatch):
    from tune.errors import DriverError
    from tune.virt.sim import SimDriver
    state = str(tmp_path / "s")
    assert crash_run(XEN, state, "overload", ["VM1", "dom0-c"], crash="sim.save:2").returncode == -signal.SIGKILL
    real_list = SimDriver.list

    def down(self):
        if self.host == "dom0-c":
            raise DriverError("connection refused", host=self.host)
        return real_list(self)

    monkeypatch.setattr(SimDriver, "list", down)
    m = resume(XEN, state)
    try:
        rep = m.recovery
        assert rep.actions == [] and m.migrations == []
        assert rep.problems == [
            "node dom0-c: cannot list its domains (dom0-c: connection refused); its instances are left as the "
            "journal says",
            "migration of VM1 dom0-a -> dom0-c: VM1 is on no reachable host and dom0-c cannot be asked; left open "
            "for the next resume",
            "VM1: on no reachable host, and dom0-c cannot be asked: left as the journal says"]
        assert m.sr.instance("VM1").node == "dom0-a"      # as the journal says: not moved on a guess
        assert [r.kind for r in m.journal.open_intents(rep.deployment)] == ["migrate.intent"]
    finally:
        m._shut = True   # leave without undeploying: the host answers again, another manager resumes
        m.journal.close()
        m.bus.stop()
        for relay in m._relays:
            relay.stop()
    monkeypatch.setattr(SimDriver, "list", real_list)
    m = resume(XEN, state)
    try:
        assert m.recovery.actions[0] == "migration of VM1 dom0-a -> dom0-c: found completed, recorded on dom0-c"
        check_xen(m, "answers again")
    finally:
        m.shutdown()


def test_comp_plus_plus_killed_at_every_step_is_recovered(tmp_path):
    points = crash_points(WEB, str(tmp_path / "normal"), "scale", [])
    steps = {p.split(":")[0] for p in points}
    assert {"create.intent", "create.placed", "create.done", "call.intent"} <= steps
    outcome = {}
    for point, state in run_crashes(WEB, str(tmp_path), "scale", [], points):
        m = resume(WEB, state)
        try:
            outcome[point] = check_web(m, point)
        finally:
            m.shutdown()
    done = points.index("create.done:1")
    # before create.done the Comp++ is compensated; from it on, its instances stay
    assert all(len(outcome[p]) == 2 for p in points[:done]), outcome
    assert all(len(outcome[p]) == 4 for p in points[done:]), outcome


def test_comp_plus_plus_half_done_is_compensated_exactly(tmp_path):
    state = str(tmp_path / "s")
    assert crash_run(WEB, state, "scale", [], crash="create.placed").returncode == -signal.SIGKILL
    m = resume(WEB, state)
    try:
        assert [c.srname for c in m.sr.instances("Web")] == ["Web1", "Web2"]
        assert any("Comp++ Web: dropped Web3 from the SR" == a for a in m.recovery.actions)
        assert "Web3" not in instance_dirs(m) and "Web4" not in instance_dirs(m)
        # names are never reused: the next Comp++ makes Web5 and Web6
        run = m.run_diagram("scale")
        assert run.status == "completed", run.error
        assert [c.srname for c in m.sr.instances("Web")] == ["Web1", "Web2", "Web5", "Web6"]
        check_web_dirs = instance_dirs(m)
        assert check_web_dirs["Web5"] == [m.sr.instance("Web5").node]
    finally:
        m.shutdown()


def test_comp_minus_minus_killed_at_every_step_is_completed_or_not_started(tmp_path):
    points = crash_points(WEB, str(tmp_path / "normal"), "shrink", ["Web2"])
    assert "remove.intent:1" in points and "remove.done:1" in points
    removed_from = points.index("remove.intent:1")
    for point, state in run_crashes(WEB, str(tmp_path), "shrink", ["Web2"], points):
        m = resume(WEB, state)
        try:
            webs = [c.srname for c in m.sr.instances("Web")]
            dirs = instance_dirs(m)
            assert sorted(dirs) == sorted(c.srname for c in m.sr.instances()), (point, dirs)
            assert m.sr.binding_problems() == [] and [c.srname for c in m.sr.bound("Balancer1", "Web")] == webs
            if points.index(point) >= removed_from:      # the Comp-- began: it is completed
                assert webs == ["Web1"], point
            else:                                        # it never began: nothing changed
                assert webs == ["Web1", "Web2"], point
            check_journal_closed(m)
        finally:
            m.shutdown()


def test_comp_minus_minus_half_done_is_completed(tmp_path):
    state = str(tmp_path / "s")
    proc = crash_run(WEB, state, "shrink", ["Web2"], crash="call.done:1")   # after stop, before undeploy
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    m = resume(WEB, state)
    try:
        assert not m.sr.has_instance("Web2")
        assert "Web2" not in instance_dirs(m)
        assert [c.srname for c in m.sr.bound("Balancer1", "Web")] == ["Web1"]
        assert m.recovery.actions == ["Comp-- Web2: removal completed"]
        check_journal_closed(m)
    finally:
        m.shutdown()


def test_comp_minus_minus_of_a_vm_is_completed_by_its_hypervisor(tmp_path):
    """A VM's Comp-- (its probe first) killed before stop, during stop, after the domain went."""
    import shutil
    app_dir = tmp_path / "xen"
    shutil.copytree(os.path.dirname(XEN), app_dir)
    (app_dir / "diagrams" / "retire.xml").write_text(
        '<diagram name="retire"><initial id="i"/><action id="probe">$arg.Probe--</action>'
        '<action id="vm">$arg--</action><final id="end"/><transition from="i" to="probe"/>'
        '<transition from="probe" to="vm"/><transition from="vm" to="end"/></diagram>')
    text = (app_dir / "app.xml").read_text()
    (app_dir / "app.xml").write_text(text.replace(
        "</application>", '  <diagram event="retire" file="diagrams/retire.xml"/>\n</application>'))
    app = str(app_dir / "app.xml")
    points = ["remove.intent:2", "call.intent:2", "sim.save:1", "call.done:2"]
    for point, state in run_crashes(app, str(tmp_path), "retire", ["VM1"], points):
        m = resume(app, state)
        try:
            assert not m.sr.has_instance("VM1") and not m.sr.has_instance("Probe1"), point
            assert sorted(m.world.domains) == ["VM2", "VM3", "VM4"], point
            assert m.recovery.problems == [], (point, m.recovery.problems)
            dirs = instance_dirs(m)
            assert sorted(dirs) == sorted(c.srname for c in m.sr.instances()), (point, dirs)
            assert m.sr.binding_problems() == []
            check_journal_closed(m)
        finally:
            m.shutdown()


def test_deployment_killed_at_its_steps_is_finished(tmp_path):
    """Killed at every step of deploying and starting the Xen example: resumed, every VM
    runs exactly once, probes run beside their VM, nothing is deployed twice."""
    from tune.components import Lifecycle
    trace = crash_points(XEN, str(tmp_path / "normal"), "--deploy", [])
    points = trace   # sim.save:1 comes before deploy.begin: nothing to resume there
    assert points[:2] == ["sim.save:1", "deploy.begin:1"]
    for point, state in run_crashes(XEN, str(tmp_path), "--deploy", [], points):
        from tune.adl.loader import load_application
        from tune.clock import SimClock
        from tune.manager import Manager
        # a restart with the same state directory: deploy() resumes when the journal says so
        m = Manager(load_application(XEN), state_dir=state, clock=SimClock(100), control_socket=False)
        m.deploy()
        assert (m.recovery is None) == (point == "sim.save:1"), point
        try:
            sr, world = m.sr, m.world
            assert sorted(world.domains) == ["VM1", "VM2", "VM3", "VM4"], (point, sorted(world.domains))
            for vm in sr.instances("VM"):
                assert world.domains[vm.srname].host == vm.node and vm.state is Lifecycle.STARTED, (point, vm)
            for probe in sr.instances("Probe"):
                assert probe.state is Lifecycle.STARTED, (point, probe)
            cons = sr.instance("Consolidator1")
            assert cons.state is Lifecycle.STARTED or "interrupted" in (cons.error or ""), (point, cons)
            dirs = instance_dirs(m)
            assert sorted(dirs) == sorted(c.srname for c in sr.instances()), (point, dirs)
            assert all(len(v) == 1 for v in dirs.values()), (point, dirs)
            check_journal_closed(m)
        finally:
            m.shutdown()


def test_a_crash_during_recovery_is_recovered_and_resume_is_idempotent(tmp_path):
    state = str(tmp_path / "s")
    assert crash_run(XEN, state, "overload", ["VM1", "dom0-c"], crash="sim.save:2").returncode == -signal.SIGKILL
    # the recovering manager is killed in turn, right after it recorded VM1 on dom0-c
    proc = crash_run(XEN, state, "--resume", [], crash="relocate:1")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # a third manager recovers, and survives (then leaves without undeploying)
    proc = crash_run(XEN, state, "--resume", [])
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = resume(XEN, state)   # a fourth finds nothing left to do
    try:
        assert check_xen(m, "idempotent") == "dom0-c"
        assert m.recovery.actions == [] and m.recovery.problems == [] and m.recovery.interrupted_runs == []
        assert [r.status for r in m.migrations] == []
        done = [r for r in m.journal.records(m.recovery.deployment) if r.kind == "migrate.done"]
        assert len(done) == 1 and done[0].data["destination"] == "dom0-c"
    finally:
        m.shutdown()


def test_simulated_host_power_follows_the_world(tmp_path):
    state = str(tmp_path / "s")
    assert crash_run(XEN, state, "--deploy", []).returncode == 0
    path = os.path.join(state, "simworld.json")
    world = json.load(open(path))
    world["hosts"]["dom0-c"]["powered"] = False   # the empty host switched off, not yet in the SR
    json.dump(world, open(path, "w"))
    m = resume(XEN, state)
    try:
        assert m.recovery.actions == ["node dom0-c: powered off, the journal said up"]
        assert [(n.id, n.state) for n in m.sr.nodes("dom0")] == [("dom0-a", "up"), ("dom0-b", "up"),
                                                                  ("dom0-c", "off")]
    finally:
        m.shutdown()


def test_the_simulated_world_is_fresh_for_a_fresh_deployment(tmp_path):
    from tune.adl.loader import load_application
    from tune.clock import SimClock
    from tune.manager import Manager
    state = str(tmp_path / "s")
    m = Manager(load_application(XEN), state_dir=state, clock=SimClock(100), control_socket=False)
    m.deploy()
    with m.world.lock:
        m.world.hosts["dom0-c"].powered = False      # saved: a resume would find it off
    assert '"powered": false' in open(os.path.join(state, "simworld.json")).read()
    m.shutdown()                                     # clean: nothing to resume
    m = Manager(load_application(XEN), state_dir=state, clock=SimClock(100), control_socket=False)
    m.deploy()
    try:
        assert m.recovery is None and m.world.hosts["dom0-c"].powered
        assert sorted(m.world.domains) == ["VM1", "VM2", "VM3", "VM4"]
    finally:
        m.shutdown()


def test_a_second_manager_on_a_live_state_dir_is_refused_before_touching_anything(tmp_path):
    from tune.adl.loader import load_application
    from tune.clock import SimClock
    from tune.errors import ManagerError
    from tune.manager import Manager
    state = str(tmp_path / "s")
    m = Manager(load_application(XEN), state_dir=state, clock=SimClock(100), control_socket=False)
    m.deploy()
    try:
        before = (m.sr.to_dict(), sorted((n, d.host) for n, d in m.world.domains.items()))
        for how in ("deploy", "resume"):
            other = Manager(load_application(XEN), state_dir=state, clock=SimClock(100), control_socket=False)
            with pytest.raises(ManagerError) as err:
                getattr(other, how)()
            assert f"a manager is already running on {state} (pid {os.getpid()})" == str(err.value)
            other.shutdown()
        assert (m.sr.to_dict(), sorted((n, d.host) for n, d in m.world.domains.items())) == before
        assert m.journal.live_deployment() is not None
    finally:
        m.shutdown()


def test_recovery_policy_attribute_wrapper_class_and_default():
    from tune.adl.loader import load_application
    from tune.components import Component
    from tune.manager import Manager
    from tune.manager.recovery import recovery_policy
    import tune.testing
    app = load_application(WEB)
    m = Manager(app, control_socket=False, journal=False)
    web = Component("Web1", "Web")
    assert recovery_policy(m, web) == "keep"                        # has a host family
    tune.testing.RecordingService.tune_recovery = "restart"          # the wrapper class says so
    try:
        assert recovery_policy(m, web) == "restart"
        app.components["Web"].attributes["recovery"] = "keep"        # the component wins
        assert recovery_policy(m, web) == "keep"
    finally:
        del tune.testing.RecordingService.tune_recovery
    xen = load_application(XEN)
    mx = Manager(xen, control_socket=False, journal=False)
    assert recovery_policy(mx, Component("Probe1", "Probe")) == "restart"   # no host family
    assert recovery_policy(mx, Component("VM1", "VM")) == "keep"


def test_nothing_to_resume_is_a_clear_error(tmp_path):
    from tune.errors import UsageError
    with pytest.raises(UsageError) as err:
        resume(WEB, str(tmp_path / "empty"))
    assert "nothing to resume" in str(err.value)


def test_secrets_never_reach_the_journal_and_come_back_on_resume(tmp_path):
    state = str(tmp_path / "s")
    assert crash_run(WEB, state, "scale", []).returncode == 0
    raw = open(os.path.join(state, "journal.sqlite"), "rb").read()
    wal = os.path.join(state, "journal.sqlite-wal")
    raw += open(wal, "rb").read() if os.path.exists(wal) else b""
    assert b"hunter2" not in raw and b"password" in raw
    m = resume(WEB, state)
    try:
        assert m.sr.instance("Web1").attributes["password"] == "hunter2"
    finally:
        m.shutdown()


# ---- the CLI ------------------------------------------------------------------------------------
def test_cli_deploy_resume_help_and_recovery(tmp_path):
    from tune.cli import main
    import io
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(["deploy", "--help"])
    assert "--resume" in buf.getvalue() and "journal" in buf.getvalue()
    state = str(tmp_path / "s")
    # the manager, run by the CLI, is killed when the scenario's overload starts VM1's migration
    env = dict(os.environ, TUNE_CRASH_AT="migrate.intent", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "tune", "deploy", XEN, "--state-dir", state, "--speed", "100",
                           "--duration", "200"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    env.pop("TUNE_CRASH_AT")
    proc = subprocess.run([sys.executable, "-m", "tune", "deploy", "--json", XEN, "--state-dir", state,
                           "--resume", "--speed", "100", "--duration", "5"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    rec = data["recovery"]
    assert rec["interrupted_runs"][0]["diagram"] == "overload"
    assert rec["actions"][0].startswith("migration of VM1 dom0-a -> ") and "not completed" in rec["actions"][0]
    assert data["final_placement"]["VM1"] == "dom0-a"
    # a second --resume finds nothing to resume (the resumed manager undeployed cleanly)
    proc = subprocess.run([sys.executable, "-m", "tune", "deploy", XEN, "--state-dir", state, "--resume"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nothing to resume" in proc.stderr


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--zygote"]:
        _zygote_main()
    else:
        _script_main(sys.argv[1:])
