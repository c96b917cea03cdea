"""Security over SSH on the namespace hosts: every remote command the deployer builds is quoted
(hostile values arrive as one literal argument), and a host whose key changed is refused by the
manager (its instances fail, the other hosts deploy, nothing runs on it).

The executor-level host-key cases (accept-new records then refuses a changed key, strict
refuses unknown hosts, insecure warns once per host) are in ``test_ssh.py``.
"""

import os

import pytest
from test_health_ssh import web_over_ssh

from tune.adl.loader import load_application
from tune.clock import Clock
from tune.components import Lifecycle
from tune.errors import GroupError
from tune.manager import Manager
from tune.testing import CALLS, wait_for

#: a working directory no shell may interpret: spaces, ;, $(), backquotes, quotes, a newline
HOSTILE_DIR = "/var/lib/tune/a b;$(touch /tmp/tune/PWNED1)\n`touch /tmp/tune/PWNED2`|\"q'*"


def exists_on(bed, host, path):
    return bed.run_in(host, ["test", "-e", path], check=False).returncode == 0


def test_hostile_working_directory_arrives_literally(testbed_hosts, tmp_path):
    bed = testbed_hosts
    app = web_over_ssh(tmp_path, bed, timeout=0)
    app.families["cluster"].dirlocal = HOSTILE_DIR
    m = Manager(app, state_dir=str(tmp_path / "state"), clock=Clock())
    CALLS.reset()
    try:
        m.deploy()
        h1 = bed.hosts[0]
        base = f"{HOSTILE_DIR}/webtier"
        # the folders, the pipe (a FIFO) and the unpacked legacy archive are where the literal path says
        assert bed.run_in(h1, ["test", "-p", f"{base}/tune.pipe"], check=False).returncode == 0
        web = m.sr.instance("Web1")
        assert web.dir_local == f"{base}/Web1"
        assert exists_on(bed, web.node and next(h for h in bed.hosts if h.address == web.node), web.dir_local)
        # the relay reads that pipe: an event written there arrives
        bed.run_in(h1, ["sh", "-c", 'printf "noise;x\\n" > "$1"', "sh", f"{base}/tune.pipe"])
        assert wait_for(lambda: m.bus.counters["unknown"] >= 1, 10)
        for h in bed.hosts:
            assert not exists_on(bed, h, "/tmp/tune/PWNED1") and not exists_on(bed, h, "/tmp/tune/PWNED2")
    finally:
        m.shutdown()
        CALLS.reset()
    for h in bed.hosts:                                   # undeploy removed exactly that folder
        assert not exists_on(bed, h, f"{HOSTILE_DIR}/webtier")
        bed.run_in(h, ["rm", "-rf", "--", HOSTILE_DIR])


def test_changed_host_key_is_refused_by_the_manager(testbed_hosts, tmp_path):
    bed = testbed_hosts
    h1 = bed.hosts[0]
    state = tmp_path / "state"
    m = Manager(web_over_ssh(tmp_path, bed, timeout=0), state_dir=str(state), clock=Clock())
    try:
        m.deploy()                                        # accept-new records the three keys
    finally:
        m.shutdown()
    bed.regenerate_host_key(h1)                           # h1 now shows another key
    m = Manager(load_application(str(tmp_path / "app" / "app.xml")), state_dir=str(state), clock=Clock())
    try:
        with pytest.raises(GroupError) as err:
            m.deploy()
        res = err.value.results
        assert isinstance(res[h1.address], BaseException)
        assert "host key" in str(res[h1.address]).lower()
        assert all(not isinstance(res[h.address], BaseException) for h in bed.hosts[1:] if h.address in res)
        on_h1 = [c for c in m.sr.instances() if c.node == h1.address]
        assert on_h1 and all(c.state is Lifecycle.FAILED for c in on_h1)
        assert not exists_on(bed, h1, "/var/lib/tune/webtier")   # nothing ran there
        known = open(os.path.join(state, "known_hosts")).read()
        assert known.count(h1.address) == 1                # the old key was kept, not replaced
    finally:
        m.shutdown()
