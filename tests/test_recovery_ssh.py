"""Recovery on real hosts: sshd in network namespaces, the stand-in ``xl`` keeping its domains in
a shared state directory (so "reality" outlives the manager by construction).

The manager (a separate process) deploys the Xen example over SSH and runs the overload diagram
(``xl migrate VM1`` to the third host); it is killed with SIGKILL at every step a normal run
journals; a new manager resumes over SSH.  Afterwards ``xl list`` on the hosts, the instance
folders on the hosts, and the System Representation agree; every VM runs exactly once.
Skipped (with the test bed's reason) when not root or without sshd.
"""

from __future__ import annotations

import signal

from test_recovery import XEN, crash_points, crash_run, resume

from tune.clock import Clock
from tune.components import Lifecycle





def folders_on(bed, host) -> list[str]:
    res = bed.run_in(host, ["ls", "-1", "/var/lib/tune/xen-attitune"], check=False)
    return sorted(n for n in res.stdout.split() if n != "tune.pipe") if res.returncode == 0 else []


def test_migration_over_ssh_killed_at_every_step_is_recovered(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    h1, _h2, h3 = bed.hosts
    grid = bed.xen_grid(str(tmp_path))
    args = ["VM1", h3.address]
    trace = crash_points(XEN, str(tmp_path / "normal"), "overload", args, grid=grid)
    # the first occurrence of every step name (each run costs a deployment over SSH)
    points = [p for p in trace if p.endswith(":1")]
    assert points == ["run.begin:1", "node.begin:1", "call.intent:1", "migrate.intent:1", "relocate:1",
                      "migrate.done:1", "call.done:1", "node.end:1", "run.end:1"]
    outcome = {}
    for point in ["normal"] + points:
        state = str(tmp_path / point.replace(":", "-"))
        if point != "normal":   # the normal run is checked too (it left everything deployed)
            proc = crash_run(XEN, state, "overload", args, crash=point, grid=grid)
            assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        m = resume(XEN, state, grid=grid, clock=Clock())
        try:
            by_host = {h.address: bed.xl_domains(h) for h in bed.hosts}
            everywhere = sorted(d for ds in by_host.values() for d in ds)
            assert everywhere == ["VM1", "VM2", "VM3", "VM4"], (point, by_host)     # each VM exactly once
            for vm in m.sr.instances("VM"):
                assert vm.srname in by_host[vm.node], (point, vm.srname, vm.node, by_host)   # SR == xl list
                assert vm.state is Lifecycle.STARTED
            for probe in m.sr.instances("Probe"):
                [vm] = m.sr.bound(probe.srname, "VM")
                assert probe.node == vm.node and probe.state is Lifecycle.STARTED
            folders = [f for h in bed.hosts for f in folders_on(bed, h)]
            assert sorted(folders) == sorted(c.srname for c in m.sr.instances() if c.type != "Consolidator"), \
                (point, folders)                                                  # nothing deployed twice
            assert m.journal.open_intents(m.recovery.deployment) == []
            outcome[point] = m.sr.instance("VM1").node
        finally:
            m.shutdown()
        assert all(bed.xl_domains(h) == [] for h in bed.hosts), point
    moved = points.index("relocate:1")   # the first record written after xl migrate returned
    assert all(outcome[p] == h1.address for p in points[:moved]), outcome
    assert all(outcome[p] == h3.address for p in points[moved:] + ["normal"]), outcome
