"""Node failure and repair on real hosts: sshd in network namespaces, the web tier over SSH.

A host's sshd is killed (a crash: every process of the host dies) or its link is cut (a
partition: packets dropped); the heartbeats notice, the lost instances are redeployed on the
other hosts, and when the host comes back its leftovers are removed and it is used again.
"""

import os
import shutil
import time

import pytest

from tune.adl.loader import load_application
from tune.clock import Clock
from tune.components import Lifecycle
from tune.manager import Manager
from tune.testing import CALLS, wait_for

HERE = os.path.dirname(__file__)
WEB_DIR = os.path.join(HERE, "apps", "web")
TIMEOUT = 2.0          # heartbeat timeout used here (the default is 5 s)
BOUND = 20.0           # detection + redeploy + start, generous for a loaded 2-core CI machine


def web_over_ssh(tmp_path, bed, timeout=TIMEOUT):
    """The web tier of tests/apps/web on the test-bed hosts, two slots each, over SSH."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    for name in ("service.wdl", "start.xml", "site.tar.gz"):
        shutil.copy(os.path.join(WEB_DIR, name), app_dir / name)
    (app_dir / "nodes").write_text("".join(f"root@{h.address}\nroot@{h.address}\n" for h in bed.hosts))
    comps = "".join(
        f'<component name="{n}" wrapper="service.wdl" host-family="cluster" initial="{k}"{legacy}>'
        f'<attribute name="sleep" value="0"/><attribute name="fail" value=""/></component>'
        for n, k, legacy in (("Balancer", 1, ""), ("Web", 2, ' legacyFile="site.tar.gz"'), ("Db", 1, "")))
    (app_dir / "app.xml").write_text(
        f'<application name="webtier">'
        f'<family name="cluster" nodefile="nodes" protocol="ssh" key="{bed.key_path}" dirlocal="/var/lib/tune">'
        f'<attribute name="heartbeat-timeout" value="{timeout}"/></family>{comps}'
        f'<binding from="Balancer" to="Web" from-multiplicity="1" to-multiplicity="*"/>'
        f'<binding from="Web" to="Db" from-multiplicity="*" to-multiplicity="1"/>'
        f'<diagram event="start" file="start.xml"/></application>')
    return load_application(str(app_dir / "app.xml"))


def exists_on(bed, host, path):
    return bed.run_in(host, ["test", "-e", path], check=False).returncode == 0


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.reset()
    yield
    CALLS.reset()


@pytest.mark.parametrize("fault", ["sshd-killed", "link-down"])
def test_lost_host_is_repaired_then_cleaned_when_back(testbed_hosts, tmp_path, fault):
    bed = testbed_hosts
    h1, h2, h3 = bed.hosts
    m = Manager(web_over_ssh(tmp_path, bed), state_dir=str(tmp_path / "state"), clock=Clock())
    try:
        m.deploy()
        assert {c.srname: c.node for c in m.sr.instances()} == {
            "Balancer1": h1.address, "Web1": h2.address, "Web2": h3.address, "Db1": h1.address}
        count = len(m.sr.instances())
        old_dir = "/var/lib/tune/webtier/Web1"
        assert exists_on(bed, h2, old_dir + "/index.html") or exists_on(bed, h2, old_dir)
        t0 = time.monotonic()
        if fault == "sshd-killed":
            bed.kill_sshd(h2)
        else:
            bed.link_down(h2)
        assert wait_for(lambda: m.sr.node(h2.address).state == "down", TIMEOUT + 5), m.status()["health"]
        detected = time.monotonic() - t0
        assert detected <= TIMEOUT + min(1.0, TIMEOUT / 4) + 2.0, detected  # + slack for a loaded CI machine
        assert wait_for(lambda: m.sr.has_instance("Web3") and m.sr.instance("Web3").state is Lifecycle.STARTED,
                        BOUND), m.status()
        repaired = time.monotonic() - t0
        assert not m.sr.has_instance("Web1") and len(m.sr.instances()) == count
        web3 = m.sr.instance("Web3")
        assert web3.node == h3.address and [p.srname for p in m.sr.bound("Web3")] == ["Balancer1", "Db1"]
        assert exists_on(bed, h3, "/var/lib/tune/webtier/Web3")          # really deployed there
        down = next(e for e in m.timeline if e.kind == "node.down")
        assert down.data["node"] == h2.address and down.data["instances"] == ["Web1"]
        # the host comes back: marked up, its leftovers removed, nothing counted twice
        if fault == "sshd-killed":
            bed.start_sshd(h2)
        else:
            bed.link_up(h2)
        assert wait_for(lambda: m.sr.node(h2.address).state == "up", 30), m.status()["health"]
        assert not exists_on(bed, h2, old_dir)
        assert len(m.sr.instances()) == count and m.sr.binding_problems() == []
        assert sorted(c.srname for c in m.sr.instances("Web")) == ["Web2", "Web3"]
        assert next(e for e in m.timeline if e.kind == "node.up").data["cleaned"] == ["Web1"]
        # and it is used again: the next instance goes to the free slots of h2
        new = m.create_instances("Web", 1)
        assert new[0].node == h2.address and exists_on(bed, h2, f"/var/lib/tune/webtier/{new[0].srname}")
        print(f"{fault}: detected in {detected:.2f} s, repaired in {repaired:.2f} s")
    finally:
        m.shutdown()


def test_lost_dom0_vms_are_recreated_elsewhere_and_destroyed_when_it_returns(testbed_hosts, xen_state, tmp_path):
    """Xen AttiTUNe: the VMs of a crashed dom0 come back on another one with their probes;
    when the dom0 returns, its old domains are destroyed: every VM once in the union of xl list."""
    bed = testbed_hosts
    h1, h2, h3 = bed.hosts
    xl = "/opt/xen/bin/xl"
    root = os.path.dirname(HERE)
    nodes = tmp_path / "nodes"
    nodes.write_text("".join(f"root@{h.address}\nroot@{h.address}\n" for h in bed.hosts))
    grid = tmp_path / "grid.xml"
    grid.write_text(f'<grid><family name="dom0" nodefile="{nodes}" protocol="ssh" driver="xen" key="{bed.key_path}" '
                    f'dirlocal="/var/lib/tune" allocation="fill"><attribute name="heartbeat-timeout" value="{TIMEOUT}"/>'
                    f'</family></grid>')
    app = load_application(os.path.join(root, "examples", "xen_attitune", "app.xml"), grid=str(grid))
    app.components["Probe"].attributes.update(period="30", threshold="99")
    if "Consolidator" in app.components:
        app.components["Consolidator"].initial = 0

    def names(host):
        out = bed.run_in(host, [xl, "list"]).stdout
        return sorted(line.split()[0] for line in out.splitlines()[1:] if line.strip() and not line.startswith("Domain-0"))

    def placement_matches():
        found = {}
        for h in bed.hosts:
            for n in names(h):
                found.setdefault(n, []).append(h.address)
        return all(found.get(vm.srname) == [vm.node] for vm in m.sr.instances("VM")) and \
            sorted(found) == sorted(vm.srname for vm in m.sr.instances("VM"))

    m = Manager(app, state_dir=str(tmp_path / "state"), clock=Clock())
    try:
        m.deploy()
        assert names(h2) == ["VM3", "VM4"] and names(h3) == []
        bed.kill_sshd(h2)
        assert wait_for(lambda: m.sr.count("VM") == 4 and not m.sr.has_instance("VM3")
                        and all(v.state is Lifecycle.STARTED for v in m.sr.instances("VM")), BOUND), m.status()
        assert names(h3) == ["VM5", "VM6"]                               # recreated there by xl create
        assert {p.srname: [v.srname for v in m.sr.bound(p.srname, "VM")] for p in m.sr.instances("Probe")} == {
            "Probe1": ["VM1"], "Probe2": ["VM2"], "Probe5": ["VM5"], "Probe6": ["VM6"]}
        assert all(p.node == m.sr.bound(p.srname, "VM")[0].node for p in m.sr.instances("Probe"))
        assert names(h2) == ["VM3", "VM4"]                               # the dead host still has them
        bed.start_sshd(h2)
        assert wait_for(lambda: m.sr.node(h2.address).state == "up", 30), m.status()["health"]
        assert names(h2) == [] and placement_matches()                   # destroyed: each VM once
    finally:
        m.shutdown()
