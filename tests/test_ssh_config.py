"""~/.ssh/config honoured by the SSH executor: aliases, users, ports, keys, ProxyJump."""

import os

import pytest

from tune.remote.ssh import SSHExecutor


def _config(tmp_path, text):
    p = tmp_path / "ssh_config"
    p.write_text(text)
    return str(p)


def test_alias_fills_what_the_nodefile_did_not_say(tmp_path):
    cfg = _config(tmp_path, "Host web1\n  HostName 192.0.2.10\n  User deploy\n  Port 2222\n")
    ex = SSHExecutor("web1", ssh_config=cfg, known_hosts=str(tmp_path / "kh"))
    assert (ex.address, ex.user, ex.port, ex.proxyjumps) == ("192.0.2.10", "deploy", 2222, [])
    ex.close()
    # explicit values (nodefile user@host:port) win over the configuration
    ex = SSHExecutor("web1", user="root", port=22, ssh_config=cfg, known_hosts=str(tmp_path / "kh"))
    assert (ex.address, ex.user, ex.port) == ("192.0.2.10", "root", 22)
    ex.close()


def test_no_config_file_means_plain_defaults(tmp_path):
    ex = SSHExecutor("somehost", ssh_config=str(tmp_path / "none"), known_hosts=str(tmp_path / "kh"))
    assert (ex.address, ex.user, ex.port) == ("somehost", "root", 22)
    ex.close()


@pytest.mark.root
def test_proxyjump_goes_through_the_jump_host(testbed_hosts, tmp_path):
    bed = testbed_hosts
    h1, h2, _ = bed.hosts
    cfg = _config(tmp_path, f"Host behind\n  HostName {h2.address}\n  User root\n  ProxyJump root@{h1.address}\n"
                            f"  IdentityFile {bed.key_path}\n"
                            f"Host {h1.address}\n  IdentityFile {bed.key_path}\n")
    log = os.path.join(h2.dir, "sshd.log")
    before = open(log).read() if os.path.exists(log) else ""
    ex = SSHExecutor("behind", ssh_config=cfg, known_hosts=str(tmp_path / "kh"))
    try:
        assert ex.run(["hostname"]).stdout.strip() == "h2"
    finally:
        ex.close()
    after = open(log).read()[len(before):] if os.path.exists(log) else ""
    # h2 saw the connection come from h1 (the jump host), not from the manager's bridge address
    assert f"Accepted publickey for root from {h1.address}" in after
    known = open(tmp_path / "kh").read()
    assert h1.address in known and h2.address in known
