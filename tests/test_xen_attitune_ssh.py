"""Xen AttiTUNe on real hosts: sshd in network namespaces, the stand-in ``xl`` on each dom0.

The manager deploys over SSH, the probes read ``xentop`` over SSH, the overload diagram runs
``xl migrate``; the test checks where the VM is by asking ``xl list`` on the hosts themselves.
"""

import os

import pytest

from tune.adl.loader import load_application
from tune.cli import main
from tune.clock import Clock
from tune.components import Lifecycle
from tune.errors import GroupError
from tune.manager import Manager
from tune.testing import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "examples", "xen_attitune", "app.xml")
XL = "/opt/xen/bin/xl"




def fast_probes(app):
    app.components["Probe"].attributes.update(period="1", samples="2")
    return app


def test_probe_fires_and_xl_migrates_the_vm(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    app = fast_probes(load_application(APP, grid=bed.xen_grid(str(tmp_path))))
    m = Manager(app, state_dir=str(tmp_path / "state"), clock=Clock())
    try:
        m.deploy()
        h1, h2, h3 = bed.hosts
        assert bed.xl_domains(h1) == ["VM1", "VM2"] and bed.xl_domains(h2) == ["VM3", "VM4"]
        assert bed.xl_domains(h3) == []
        bed.run_in(h1, [XL, "tune-set-load", "VM1", "95"])
        assert wait_for(lambda: any(r.status == "completed" for r in m.migrations), 60), m.status()
        # where it is, by the hosts' own word
        assert bed.xl_domains(h1) == ["VM2"] and bed.xl_domains(h3) == ["VM1"]
        assert m.sr.instance("VM1").node == h3.address and m.sr.instance("Probe1").node == h3.address
        [report] = m.migrations
        assert report.source == h1.address and report.destination == h3.address and report.total_time > 0
        # the manager recorded the host keys it met (accept-new), in its own known-hosts file
        known = open(os.path.join(str(tmp_path / "state"), "known_hosts")).read()
        assert all(h.address in known for h in (h1, h2))
    finally:
        m.shutdown()
    assert all(bed.xl_domains(h) == [] for h in bed.hosts)   # the stop diagram shut them down
    assert bed.run_in(bed.hosts[0], ["test", "-e", "/var/lib/tune/xen-attitune"], check=False).returncode != 0


def test_a_host_down_fails_only_its_instances(testbed_hosts, xen_state, tmp_path, capsys):
    bed = testbed_hosts
    h1, h2, _h3 = bed.hosts
    bed.kill_sshd(h2)
    app = load_application(APP, grid=bed.xen_grid(str(tmp_path), [h1, h2]))
    m = Manager(app, state_dir=str(tmp_path / "state"), clock=Clock())
    try:
        with pytest.raises(GroupError) as err:
            m.deploy()
        results = err.value.results
        assert not isinstance(results[h1.address], BaseException)
        assert isinstance(results[h2.address], BaseException) and h2.address in str(results[h2.address])
        states = {c.srname: c.state for c in m.sr.instances()}
        assert states["VM3"] is Lifecycle.FAILED and states["VM4"] is Lifecycle.FAILED
        assert states["VM1"] is not Lifecycle.FAILED
    finally:
        m.shutdown()
    # the CLI: exit 1 and a per-host summary
    code = main(["deploy", APP, "--grid", bed.xen_grid(str(tmp_path), [h1, h2]), "--state-dir",
                 str(tmp_path / "state2"), "--no-scenario", "--duration", "1"])
    err_text = capsys.readouterr().err
    assert code == 1
    assert f"{h2.address}: FAILED" in err_text and f"{h1.address}: ok" in err_text


def test_a_line_in_a_remote_node_pipe_reaches_the_manager_over_ssh(testbed_hosts, xen_state, tmp_path):
    bed = testbed_hosts
    app = load_application(APP, grid=bed.xen_grid(str(tmp_path)))
    app.components["Probe"].attributes.update(period="3600")   # only the pipe may trigger it
    m = Manager(app, state_dir=str(tmp_path / "state"), clock=Clock())
    try:
        m.deploy()
        h1, h2, h3 = bed.hosts
        pipe = "/var/lib/tune/xen-attitune/tune.pipe"
        # a program on h2 (not the manager) writes the seed's form, naming the destination
        bed.run_in(h2, ["sh", "-c", f"printf 'overload;VM3;{h3.address}\\n' > {pipe}"])
        assert wait_for(lambda: any(r.status == "completed" for r in m.migrations), 60), m.status()
        assert bed.xl_domains(h2) == ["VM4"] and bed.xl_domains(h3) == ["VM3"]
        received = [e for e in m.timeline if e.kind == "event.received"]
        assert received and received[0].data["source"] == f"pipe:{h2.address}"
        # no port was opened for it: the relay is a command on the manager's SSH connection
        listening = bed.run_in(h2, ["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"]).stdout
        ports = {int(line.split()[1].rsplit(":", 1)[1], 16) for line in listening.splitlines()[1:]
                 if line.split() and line.split()[3] == "0A"}
        assert ports <= {22}
    finally:
        m.shutdown()
