"""The namespace test bed itself: hosts, faults, clean tear-down, the CLI."""

import os
import subprocess
import sys

import pytest

from tune.testbed import SKIP_REASON, TestBed, testbed_missing_reason

needs_root = pytest.mark.skipif(testbed_missing_reason() is not None,
                                reason=testbed_missing_reason() or "")


def test_skip_reason_when_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert testbed_missing_reason().startswith(SKIP_REASON)


def test_bad_arguments():
    with pytest.raises(ValueError):
        TestBed(0)
    with pytest.raises(ValueError):
        TestBed(2, private_dirs=["/tmp"])
    with pytest.raises(ValueError):
        TestBed(2, prefix="much-too-long")


def test_layout_without_starting():
    bed = TestBed(3, base_dir="/tmp/x", prefix="ab", subnet="10.9.8")
    assert [h.name for h in bed.hosts] == ["h1", "h2", "h3"]
    assert bed.addresses == ["10.9.8.2", "10.9.8.3", "10.9.8.4"]
    assert bed.host("h2").netns == "ab-h2" and bed.host(3).address == "10.9.8.4"
    assert bed.bridge == "br-ab"
    assert "PermitRootLogin prohibit-password" in bed._sshd_config(bed.hosts[0])
    assert "MaxStartups 100:30:200" in bed._sshd_config(bed.hosts[0])


def _ssh(bed, host, line, **kw):
    return subprocess.run(bed.ssh_command(host) + ["-o", "ConnectTimeout=3", line],
                          capture_output=True, text=True, timeout=20, **kw)


@needs_root
@pytest.mark.root
def test_hosts_have_own_hostname_root_and_opt(testbed_hosts):
    bed = testbed_hosts
    for h in bed.hosts:
        r = _ssh(bed, h, "hostname; ls -A /root; cat /etc/hostname >/dev/null; echo $PATH")
        assert r.returncode == 0, r.stderr
        name, entries, path = r.stdout.split("\n", 2)[0], r.stdout.split("\n")[1], r.stdout
        assert name == h.name
        assert entries == ".ssh"
        assert "/opt/xen/bin" in path
    bed.run_in("h1", ["sh", "-c", "echo one > /opt/marker"])
    assert bed.run_in("h2", ["sh", "-c", "cat /opt/marker || echo none"]).stdout == "none\n"
    assert bed.run_in("h1", ["cat", "/opt/marker"]).stdout == "one\n"
    bed.run_in("h1", ["rm", "/opt/marker"])
    for d in ("/var/lib/tune", "/tmp/tune"):  # dirlocal candidates are per host too
        bed.run_in("h2", ["sh", "-c", f"echo two > {d}/marker"])
        assert bed.run_in("h3", ["sh", "-c", f"cat {d}/marker 2>/dev/null || echo none"]).stdout \
            == "none\n"
        assert not os.path.exists(f"{d}/marker")
        bed.run_in("h2", ["rm", f"{d}/marker"])


@needs_root
@pytest.mark.root
def test_hosts_reach_each_other_by_name(testbed_hosts):
    r = _ssh(testbed_hosts, "h1", "ssh h2 hostname")
    assert (r.returncode, r.stdout) == (0, "h2\n"), r.stderr


@needs_root
@pytest.mark.root
def test_kill_and_start_sshd(testbed_hosts):
    bed = testbed_hosts
    pid = bed.host("h2").sshd_pid
    assert pid and open(f"/proc/{pid}/comm").read().strip() == "sshd"
    bed.kill_sshd("h2")
    assert bed.host("h2").sshd_pid is None and not os.path.exists(f"/proc/{pid}")
    r = _ssh(bed, "h2", "true")
    assert r.returncode == 255 and "refused" in r.stderr
    assert _ssh(bed, "h1", "true").returncode == 0
    assert bed.run_in("h2", ["hostname"]).stdout == "h2\n"  # the host lives on
    bed.start_sshd("h2")
    assert _ssh(bed, "h2", "hostname").stdout == "h2\n"


@needs_root
@pytest.mark.root
def test_link_down_partitions(testbed_hosts):
    bed = testbed_hosts
    bed.link_down("h3")
    assert not bed.link_is_up("h3")
    r = subprocess.run(["ping", "-c", "1", "-W", "1", bed.host("h3").address], capture_output=True)
    assert r.returncode != 0
    bed.link_up("h3")
    assert bed.link_is_up("h3")
    assert _ssh(bed, "h3", "hostname").stdout == "h3\n"


@needs_root
@pytest.mark.root
def test_regenerate_host_key(testbed_hosts):
    bed = testbed_hosts
    old = bed.host("h1").host_key_line()
    new = bed.regenerate_host_key("h1")
    assert new != old
    scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", bed.host("h1").address],
                          capture_output=True, text=True, timeout=10).stdout
    assert new.split()[1] in scan
    # the hosts' own clients were told: h2 still reaches h1
    assert _ssh(bed, "h2", "ssh h1 hostname").stdout == "h1\n"


@needs_root
@pytest.mark.root
def test_install(testbed_hosts, tmp_path):
    src = tmp_path / "tool"
    src.write_text("#!/bin/sh\necho tool on $(hostname)\n")
    testbed_hosts.install("h2", str(src), "/opt/t/tool")
    assert _ssh(testbed_hosts, "h2", "/opt/t/tool").stdout == "tool on h2\n"


def _zombies_under(pid):
    out = subprocess.run(["ps", "-eo", "pid,ppid,stat"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:]
            if line.split()[1] == str(pid) and line.split()[2].startswith("Z")]


@needs_root
@pytest.mark.root
def test_up_down_is_clean_and_survives_leftovers(tmp_path):
    # leftovers of a "crashed" run: a namespace and the bridge already exist
    # zombies other libraries left under this process before (libvirt's client ssh) are not ours
    before = set(_zombies_under(os.getpid()))
    subprocess.run(["ip", "netns", "add", "tz-h1"], check=True)
    subprocess.run(["ip", "link", "add", "br-tz", "type", "bridge"], check=True)
    bed = TestBed(2, base_dir=str(tmp_path / "bed"), prefix="tz", subnet="10.78.200", xen=False)
    with bed:
        assert _ssh(bed, "h2", "hostname").stdout == "h2\n"
        # an open session when the listener dies: its process must be reaped too
        sess = subprocess.Popen(bed.ssh_command("h1") + ["sleep 30"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        import time
        time.sleep(0.5)
        bed.kill_sshd("h1")
        sess.wait(timeout=10)
        pids = [p for h in bed.hosts for p in (h.pid, h.sshd.pid if h.sshd else None) if p]
    assert subprocess.run(["ip", "netns", "list"], capture_output=True,
                          text=True).stdout.count("tz-h") == 0
    assert not os.path.exists("/sys/class/net/br-tz")
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")
    assert set(_zombies_under(os.getpid())) - before == set()
    bed.down()  # idempotent


@needs_root
@pytest.mark.root
def test_cli_up_status_down(tmp_path):
    base = str(tmp_path / "cli")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [sys.executable, "-m", "tune.testbed", "--base-dir", base, "--prefix", "tq",
           "--subnet", "10.78.201"]
    up = subprocess.run(cmd + ["up", "2"], capture_output=True, text=True, env=env, timeout=60)
    try:
        assert up.returncode == 0, up.stderr
        assert "10.78.201.3" in up.stdout and "ssh -i" in up.stdout
        st = subprocess.run(cmd + ["status"], capture_output=True, text=True, env=env, timeout=30)
        assert "sshd up" in st.stdout and "running" in st.stdout
    finally:
        # down from another process, without repeating the prefix
        down = subprocess.run([sys.executable, "-m", "tune.testbed", "--base-dir", base, "down"],
                              capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "tq-h" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout
    assert not os.path.exists("/sys/class/net/br-tq")
