"""Migration faults on real hosts (sshd in namespaces, the stand-in ``xl`` that really contacts
the destination over SSH): the destination refuses, dies mid-migration, or its link is cut.

Whatever happens the VM runs on exactly one host, the SR says which (checked against the union
of ``xl list`` on every host), the failure is in the timeline and the status, and when the
policy chose the destination it retries once elsewhere.
"""

import json
import os
import threading
import time

from tune.adl.loader import load_application
from tune.clock import Clock
from tune.manager import Manager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "examples", "xen_attitune", "app.xml")



def manager(tmp_path, bed, vms=2, **vm_attrs):
    """VM1..VMn on h1 (fill), h2 and h3 empty; quiet probes, no consolidator."""
    app = load_application(APP, grid=bed.xen_grid(str(tmp_path)))
    app.components["VM"].initial = vms
    app.components["Probe"].initial = vms
    app.components["Probe"].attributes.update(period="30", threshold="99")
    app.components["VM"].attributes.update(vm_attrs)
    if "Consolidator" in app.components:
        app.components["Consolidator"].initial = 0
    m = Manager(app, state_dir=str(tmp_path / "state"), clock=Clock())
    m.deploy()
    return m



def where(bed):
    """VM name -> the hosts (addresses) whose ``xl list`` shows it, exact names only."""
    found = {}
    for h in bed.hosts:
        for name in bed.xl_domains(h):
            found.setdefault(name, []).append(h.address)
    return found


def assert_sr_matches_hosts(m, bed):
    found = where(bed)
    for vm in m.sr.instances("VM"):
        assert found.get(vm.srname) == [vm.node], (vm.srname, vm.node, found)


def set_xl_config(bed, host, **changes):
    path = os.path.join(host.dir, "opt", "xen", "etc", "fake-xl.json")
    with open(path) as fh:
        cfg = json.load(fh)
    cfg.update(changes)
    with open(path, "w") as fh:
        json.dump(cfg, fh)


def on_first_migration(m, action):
    """Run ``action(destination)`` in a thread when the first migration starts."""
    fired = threading.Event()

    def watch(ev):
        if ev.kind == "migration.start" and not fired.is_set():
            fired.set()
            threading.Thread(target=action, args=(ev.data["destination"],), daemon=True).start()
    m.subscribe(watch)
    return fired


def test_destination_without_memory_refuses_and_the_vm_stays(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    h1, _h2, h3 = bed.hosts
    set_xl_config(bed, h3, total_memory=1024)                 # 1024 MB VM + dom0 cannot fit
    m = manager(tmp_path, bed)
    try:
        run = m.run_diagram("overload", "VM1", h3.address)    # the seed form: destination given
        assert run.status == "failed" and run.error.instance == "VM1"
        assert "VM1" in str(run.error) and h3.address in str(run.error)
        assert sorted(bed.xl_domains(h1)) == ["VM1", "VM2"] and bed.xl_domains(h3) == []
        assert m.sr.instance("VM1").node == h1.address and m.sr.instance("Probe1").node == h1.address
        assert_sr_matches_hosts(m, bed)
        # reported: one failed migration (no retry when the destination was given), in status too
        assert [r.status for r in m.migrations] == ["failed"]
        status = m.status()
        assert status["migrations"][-1]["status"] == "failed" and status["migrations"][-1]["destination"] == h3.address
        assert any(e.kind == "action.failed" and e.data["instance"] == "VM1" for e in m.timeline)
        # the policy knows better: it never picks the host without room
        assert m.choose_destination("VM1") not in (h3.address, h1.address, None)
    finally:
        m.shutdown()
        bed.install_fake_xl(h3)


def _fault_mid_migration(bed, tmp_path, fault, **vm_attrs):
    h1 = bed.hosts[0]
    set_xl_config(bed, h1, migration_mb_per_s=300)            # 1024 MB: a ~3.4 s memory copy
    m = manager(tmp_path, bed, **vm_attrs)
    by_address = {h.address: h for h in bed.hosts}
    victim = {}

    def strike(dest):
        time.sleep(1.0)                                        # mid-way through the copy
        victim["host"] = by_address[dest]
        fault(by_address[dest])

    on_first_migration(m, strike)
    return m, strike, victim


def _check_retried(m, bed, victim):
    h1 = bed.hosts[0]
    failed_to = victim["host"].address
    reports = [(r.status, r.destination) for r in m.migrations]
    assert reports[0] == ("failed", failed_to) and reports[1][0] == "completed", reports
    other = reports[1][1]
    assert other not in (failed_to, h1.address)
    assert m.sr.instance("VM1").node == other and m.sr.instance("Probe1").node == other
    assert_sr_matches_hosts(m, bed)
    retry = next(e for e in m.timeline if e.kind == "migration.retry")
    assert retry.data["failed"] == failed_to and retry.data["destination"] == other
    assert [d["status"] for d in m.status()["migrations"]] == ["failed", "completed"]


def test_destination_dies_mid_migration_vm_stays_then_retry_elsewhere(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    m, _strike, victim = _fault_mid_migration(bed, tmp_path, bed.kill_sshd)
    try:
        run = m.run_diagram("overload", "VM1")                 # the policy chooses
        assert run.status == "completed", run.error
        _check_retried(m, bed, victim)
        assert "VM1" not in bed.xl_domains(victim["host"])
    finally:
        m.shutdown()
        bed.install_fake_xl(bed.hosts[0])


def test_link_cut_mid_migration_times_out_vm_stays_then_retry(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    m, _strike, victim = _fault_mid_migration(bed, tmp_path, bed.link_down, **{"migration-timeout": "6"})
    try:
        run = m.run_diagram("overload", "VM1")
        assert run.status == "completed", run.error
        _check_retried(m, bed, victim)
        # the cut-off receiver holds a paused VM1--incoming, never a second VM1
        assert "VM1" not in bed.xl_domains(victim["host"])
        assert "killed after 6 s" in m.migrations[0].message
    finally:
        m.shutdown()
        bed.install_fake_xl(bed.hosts[0])
        if victim:
            bed.link_up(victim["host"])
            bed.kill_sshd(victim["host"])                      # the stuck receiver goes with it
            bed.start_sshd(victim["host"])


def test_no_retry_when_the_second_destination_also_fails(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    h1, h2, h3 = bed.hosts
    for h in (h2, h3):
        set_xl_config(bed, h, total_memory=1024)               # every destination refuses ...
    m = manager(tmp_path, bed)
    try:
        m.choose_destination = lambda name, exclude=None: next(  # ... but the policy is fooled
            (h.address for h in (h2, h3) if h.address not in (exclude or [])), None)
        run = m.run_diagram("overload", "VM1")
        assert run.status == "failed"
        assert [(r.status, r.destination) for r in m.migrations] == [("failed", h2.address), ("failed", h3.address)]
        assert m.sr.instance("VM1").node == h1.address
        assert_sr_matches_hosts(m, bed)
    finally:
        m.shutdown()
        for h in (h2, h3):
            bed.install_fake_xl(h)
