"""Host-key policies and the manager's known-hosts file, without a network."""

import logging
import os
import subprocess
import threading

import paramiko
import pytest

from tune.errors import HostKeyError, UsageError
from tune.remote import hostkeys
from tune.remote.hostkeys import KnownHosts, TunePolicy, fingerprint, host_key_name


@pytest.fixture
def keys(tmp_path):
    out = []
    for i in range(2):
        path = tmp_path / f"k{i}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        out.append((paramiko.Ed25519Key.from_private_key_file(str(path)), str(path) + ".pub"))
    return out


def test_fingerprint_matches_ssh_keygen(keys):
    key, pub = keys[0]
    expected = subprocess.run(["ssh-keygen", "-lf", pub], capture_output=True, text=True).stdout.split()[1]
    assert fingerprint(key) == expected


def test_host_key_name():
    assert host_key_name("h", 22) == "h" and host_key_name("h", 2222) == "[h]:2222"


def test_known_hosts_add_is_atomic_0600_and_openssh_readable(tmp_path, keys):
    kh = KnownHosts(str(tmp_path / "sub" / "known_hosts"))
    assert kh.lookup("h1") == {}
    kh.add("h1", keys[0][0])
    kh.add("[h2]:2222", keys[1][0])
    assert os.stat(kh.path).st_mode & 0o777 == 0o600
    assert kh.lookup("h1")["ssh-ed25519"] == keys[0][0]
    out = subprocess.run(["ssh-keygen", "-F", "[h2]:2222", "-f", kh.path], capture_output=True, text=True)
    assert out.returncode == 0
    assert not [f for f in os.listdir(tmp_path / "sub") if ".tmp" in f]


def test_concurrent_adds_lose_nothing(tmp_path, keys):
    kh = KnownHosts(str(tmp_path / "kh"))
    threads = [threading.Thread(target=kh.add, args=(f"host{i}", keys[i % 2][0])) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(kh.lookup(f"host{i}") for i in range(20))


def test_policies(tmp_path, keys, caplog):
    kh = KnownHosts(str(tmp_path / "kh"))
    key, other = keys[0][0], keys[1][0]
    with pytest.raises(HostKeyError) as info:
        TunePolicy("strict", kh, "h1").missing_host_key(None, "h1", key)
    assert "strict" in str(info.value) and fingerprint(key) in str(info.value)
    TunePolicy("accept-new", kh, "h1").missing_host_key(None, "h1", key)
    assert kh.lookup("h1")
    # a known host reaching the policy (key type unknown to paramiko's check) is a change
    with pytest.raises(HostKeyError) as info:
        TunePolicy("accept-new", kh, "h1").missing_host_key(None, "h1", other)
    assert fingerprint(key) in str(info.value) and fingerprint(other) in str(info.value)
    hostkeys._warned_insecure.clear()
    with caplog.at_level(logging.WARNING, logger="tune.remote.hostkeys"):
        for _ in range(3):
            TunePolicy("insecure", kh, "h9").missing_host_key(None, "h9", key)
    assert len([r for r in caplog.records if "NOT checked" in r.getMessage()]) == 1
    assert not kh.lookup("h9")
    with pytest.raises(UsageError):
        TunePolicy("trust-me", kh, "h1")


def test_bad_host_key_exception_becomes_host_key_error(tmp_path, keys):
    exc = paramiko.BadHostKeyException("h1", keys[1][0], keys[0][0])
    err = hostkeys.changed_key_error("h1", exc, KnownHosts(str(tmp_path / "kh")))
    assert isinstance(err, HostKeyError) and err.host == "h1"
    assert f"expected ssh-ed25519 {fingerprint(keys[0][0])}" in str(err)
    assert f"offered ssh-ed25519 {fingerprint(keys[1][0])}" in str(err)


def test_default_known_hosts_is_ours_not_the_users(monkeypatch):
    monkeypatch.delenv("TUNE_KNOWN_HOSTS", raising=False)
    assert hostkeys.default_known_hosts().endswith(os.path.join("tune", "known_hosts"))
    monkeypatch.setenv("TUNE_KNOWN_HOSTS", "/x/kh")
    assert hostkeys.default_known_hosts() == "/x/kh"
