"""SSHExecutor against real sshd hosts in network namespaces (needs root; skips otherwise).

The host keys, the faults (sshd killed, link down, wrong key, hanging command) and the
bounded parallel connects are exercised for real.  Each test gets a fresh known-hosts file
and a clean connection pool.
"""

import json
import logging
import os
import subprocess
import tarfile
import threading
import time

import pytest

from tune.errors import (CommandFailed, CommandTimeout, GroupError, HostKeyError, HostUnreachable,
                         UsageError)
from tune.remote import executor_for, quote_command
from tune.remote.base import Shell
from tune.remote.group import run_on_hosts
from tune.remote.local import LocalExecutor
from tune.remote import hostkeys, ssh
from tune.remote.ssh import AuthenticationFailed, SSHExecutor
from tune.testbed import testbed_missing_reason

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(testbed_missing_reason() is not None,
                                 reason=testbed_missing_reason() or "")]

HOSTILE = ['"; rm -rf /tmp/tune-x; echo "', "$(touch /tmp/tune-pwned)", "`touch /tmp/tune-pwned`",
           "a\nb", "line1\n$(touch /tmp/tune-pwned)", "'", '"', "'\"'\"'", "-rf", "--help",
           "héllo ✓ 日本", "", " ", "*", "~", "$HOME", "\\", "a b", ";", "|", "&&", "> /tmp/tune-pwned",
           "\t", "%s", "!!"]
DUMP_ARGV = ["python3", "-c", "import json,sys; print(json.dumps(sys.argv[1:]))"]


@pytest.fixture
def make(testbed_hosts, tmp_path):
    """Factory of executors to the test hosts with a per-test known-hosts file."""
    made = []
    ssh.close_all()
    ssh.set_max_parallel_connects(10)

    def factory(host="h1", **kw):
        h = testbed_hosts.host(host)
        opts = dict(key_filename=testbed_hosts.key_path, known_hosts=str(tmp_path / "known_hosts"),
                    connect_timeout=2, retries=1, backoff=0.05)
        opts.update(kw)
        ex = SSHExecutor(h.address, **opts)
        made.append(ex)
        return ex

    yield factory
    for ex in made:
        ex.close()
    ssh.close_all()
    ssh.set_max_parallel_connects(10)


def test_registry_gives_ssh(testbed_hosts, tmp_path):
    ex = executor_for("ssh", testbed_hosts.hosts[0].address, key_filename=testbed_hosts.key_path,
                      known_hosts=str(tmp_path / "kh"))
    assert isinstance(ex, SSHExecutor)
    assert ex.run(["hostname"]).stdout == "h1\n"
    ex.close()


def test_bad_policy_name():
    with pytest.raises(UsageError):
        SSHExecutor("x", host_key_policy="yes")


def test_run_basics(make):
    ex = make("h2")
    r = ex.run(Shell("echo out; echo err >&2"))
    assert (r.exit_status, r.stdout, r.stderr, r.host) == (0, "out\n", "err\n", ex.host)
    with pytest.raises(CommandFailed) as info:
        ex.run(Shell("echo o; echo e >&2; exit 7"))
    assert (info.value.exit_status, info.value.stdout, info.value.stderr) == (7, "o\n", "e\n")
    assert info.value.host == ex.host and "exit 7" in info.value.command
    assert ex.run(["false"], check=False).exit_status == 1
    assert ex.run(["cat"], input="in put\n").stdout == "in put\n"
    assert ex.run(Shell('printf %s "$V"'), env={"V": "a b $(x)"}).stdout == "a b $(x)"
    assert ex.run(Shell("echo err >&2; exit 3"), timeout=5, check=False).stderr == "err\n"


def test_connection_is_pooled_and_shared(make):
    ssh.connect_stats(reset=True)
    a, b = make("h1"), make("h1")
    for _ in range(3):
        assert a.run(["true"]).ok and b.run(["true"]).ok
    assert ssh.connect_stats()["total"] == 1
    a.close()
    assert b.run(["hostname"]).stdout == "h1\n"  # b still holds the connection


def test_concurrent_commands_on_one_connection(make):
    ex = make("h3")
    res = run_on_hosts({str(i): ex for i in range(12)},
                       lambda e: e.run(["sh", "-c", "sleep 0.2; hostname"]).stdout)
    assert res.ok and set(res.succeeded.values()) == {"h3\n"}


@pytest.mark.parametrize("kind", ["local", "ssh"])
def test_hostile_arguments_arrive_literally(kind, make, tmp_path):
    for path in ("/tmp/tune-pwned",):
        if os.path.exists(path):
            os.unlink(path)
    os.makedirs("/tmp/tune-x", exist_ok=True)
    ex = LocalExecutor() if kind == "local" else make("h1")
    r = ex.run(DUMP_ARGV + HOSTILE)
    assert json.loads(r.stdout) == HOSTILE
    # through printf in a Shell built from quoted pieces, too
    line = Shell("printf '%s\\0' " + quote_command(HOSTILE))
    assert ex.run(line).stdout.split("\0")[:-1] == HOSTILE
    assert not os.path.exists("/tmp/tune-pwned")  # /tmp is shared with the namespace hosts
    assert os.path.isdir("/tmp/tune-x")
    os.rmdir("/tmp/tune-x")


def test_put_and_put_archive(make, testbed_hosts, tmp_path):
    ex = make("h2")
    src = tmp_path / "f.txt"
    src.write_text("payload\n")
    ex.put(str(src), "/root/f.txt", mode=0o640)
    out = testbed_hosts.run_in("h2", ["stat", "-c", "%a %s", "/root/f.txt"]).stdout
    assert out == "640 8\n"
    assert testbed_hosts.run_in("h1", ["sh", "-c", "test -e /root/f.txt || echo absent"]).stdout \
        == "absent\n"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "run.sh").write_text("echo hi\n")
    arc = tmp_path / "pkg.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(tmp_path / "pkg", arcname="pkg")
    ex.put_archive(str(arc), "/opt/legacy")
    assert ex.run(["sh", "/opt/legacy/pkg/run.sh"]).stdout == "hi\n"
    with pytest.raises(Exception) as info:
        ex.put(str(src), "/nonexistent-dir/f")
    assert info.value.host == ex.host
    testbed_hosts.run_in("h2", ["rm", "-rf", "/root/f.txt", "/opt/legacy"])


def test_stream_lines_and_close_kills(make, testbed_hosts):
    ex = make("h1")
    with ex.stream(Shell("for i in 1 2 3; do echo $i; sleep 0.05; done; echo e >&2")) as s:
        assert list(s.lines()) == ["1", "2", "3", "e"]
    s = ex.stream(["sh", "-c", "echo start; exec sleep 31.7"])
    assert next(s.lines()) == "start"
    s.close()
    for _ in range(50):
        left = testbed_hosts.run_in("h1", ["sh", "-c", "pgrep -f 'sleep 31[.]7' || true"]).stdout
        if not left:
            break
        time.sleep(0.05)
    assert left == ""
    assert ex.run(["true"]).ok  # the connection survives a closed stream


def test_hanging_command_times_out_and_is_killed(make, testbed_hosts):
    ex = make("h2")
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        ex.run(["sh", "-c", "sleep 32.3; echo never"], timeout=1)
    assert time.monotonic() - t0 < 4
    assert info.value.host == ex.host and "sleep 32.3" in info.value.command
    time.sleep(0.3)
    assert testbed_hosts.run_in("h2", ["sh", "-c", "pgrep -f 'sleep 32[.]3' || true"]).stdout == ""
    assert ex.run(["hostname"], timeout=5).stdout == "h2\n"
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout):
        make("h2", command_timeout=0.5).run(["sleep", "5"])
    assert time.monotonic() - t0 < 3


# -- host keys ------------------------------------------------------------------------------
def test_accept_new_records_then_refuses_a_changed_key(make, testbed_hosts, tmp_path):
    kh = tmp_path / "known_hosts"
    h = testbed_hosts.host("h3")
    assert make("h3").run(["true"]).ok
    assert oct(kh.stat().st_mode & 0o777) == "0o600"
    assert kh.read_text().split() == [h.address] + h.host_key_line().split()
    old_fp = subprocess.run(["ssh-keygen", "-lf", h.host_key_path + ".pub"], capture_output=True,
                            text=True).stdout.split()[1]
    testbed_hosts.regenerate_host_key("h3")
    new_fp = subprocess.run(["ssh-keygen", "-lf", h.host_key_path + ".pub"], capture_output=True,
                            text=True).stdout.split()[1]
    ssh.close_all()
    before = kh.read_text()
    with pytest.raises(HostKeyError) as info:
        make("h3").run(["true"])
    msg = str(info.value)
    assert info.value.host == h.address and "changed" in msg
    assert old_fp in msg and new_fp in msg  # expected and offered, OpenSSH fingerprints
    assert kh.read_text() == before  # not overwritten


def test_strict_refuses_unknown_then_accepts_known(make, testbed_hosts, tmp_path):
    with pytest.raises(HostKeyError) as info:
        make("h1", host_key_policy="strict").run(["true"])
    assert "strict" in str(info.value)
    assert not (tmp_path / "known_hosts").exists()
    make("h1").run(["true"])  # accept-new records it
    ssh.close_all()
    assert make("h1", host_key_policy="strict").run(["hostname"]).stdout == "h1\n"


def test_insecure_warns_once_per_host(make, caplog):
    hostkeys._warned_insecure.clear()
    with caplog.at_level(logging.WARNING, logger="tune.remote.hostkeys"):
        make("h2", host_key_policy="insecure").run(["true"])
        ssh.close_all()
        make("h2", host_key_policy="insecure").run(["true"])
    warnings = [r for r in caplog.records if "NOT checked" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_wrong_client_key_is_a_clear_error_not_retried(make, tmp_path):
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ssh.connect_stats(reset=True)
    t0 = time.monotonic()
    with pytest.raises(AuthenticationFailed) as info:
        make("h1", key_filename=str(key), retries=3, backoff=1).run(["true"])
    assert "key refused" in str(info.value) and isinstance(info.value, HostUnreachable)
    assert ssh.connect_stats()["total"] == 1 and time.monotonic() - t0 < 1


# -- faults ---------------------------------------------------------------------------------
def test_host_down_before_connect_fails_only_that_host(make, testbed_hosts):
    testbed_hosts.kill_sshd("h2")
    exs = {h.name: make(h.name, retries=2, backoff=0.05) for h in testbed_hosts.hosts}
    res = run_on_hosts(exs, lambda ex: ex.run(["hostname"]).stdout.strip())
    assert res.succeeded == {"h1": "h1", "h3": "h3"}
    assert isinstance(res["h2"], HostUnreachable) and "refused" in str(res["h2"])
    assert res["h2"].host == testbed_hosts.host("h2").address
    with pytest.raises(GroupError) as info:
        res.raise_on_failure()
    assert list(info.value.failed) == ["h2"]


def test_partitioned_host_before_connect(make, testbed_hosts):
    testbed_hosts.link_down("h3")
    t0 = time.monotonic()
    with pytest.raises(HostUnreachable) as info:
        make("h3", connect_timeout=0.5, retries=1, backoff=0.1).run(["true"])
    assert time.monotonic() - t0 < 3
    assert info.value.command == "true"


def test_sshd_killed_mid_way(make, testbed_hosts):
    ex = make("h1")
    assert ex.run(["true"]).ok
    errors = []

    def long_running():
        try:
            ex.run(["sleep", "20"], timeout=10)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=long_running)
    t.start()
    time.sleep(0.3)
    testbed_hosts.kill_sshd("h1")
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], HostUnreachable), errors
    with pytest.raises(HostUnreachable):
        ex.run(["true"])  # reconnect is refused
    assert not ex.alive(timeout=1)
    assert make("h2").run(["true"]).ok  # the others are fine
    testbed_hosts.start_sshd("h1")
    assert ex.run(["hostname"]).stdout == "h1\n"  # and the executor reconnects


def test_link_down_mid_way(make, testbed_hosts):
    ex, other = make("h2"), make("h3")
    assert ex.run(["true"]).ok and other.run(["true"]).ok
    testbed_hosts.link_down("h2")
    t0 = time.monotonic()
    with pytest.raises((CommandTimeout, HostUnreachable)):
        ex.run(["true"], timeout=1)
    assert time.monotonic() - t0 < 3
    assert not ex.alive(timeout=0.5)
    assert other.run(["hostname"]).stdout == "h3\n"


def test_parallel_connects_are_bounded(make, testbed_hosts):
    ssh.set_max_parallel_connects(1)
    ssh.connect_stats(reset=True)
    exs = {h.name: make(h.name) for h in testbed_hosts.hosts}
    res = run_on_hosts(exs, lambda ex: ex.run(["hostname"]).stdout)
    assert res.ok
    stats = ssh.connect_stats()
    assert stats["peak"] == 1 and stats["total"] == 3
    ssh.close_all()
    ssh.set_max_parallel_connects(10)
    ssh.connect_stats(reset=True)
    assert run_on_hosts(exs, lambda ex: ex.run(["true"]).ok).ok
    assert 1 <= ssh.connect_stats()["peak"] <= 3


def test_alive(make):
    ex = make("h1")
    assert ex.alive(timeout=2)


def test_the_connect_limit_keeps_sshd_maxstartups_happy(tmp_path):
    """Why the semaphore: with MaxStartups 2:100:2, sshd drops connections beyond two
    unauthenticated ones; ten simultaneous connects fail unless the limit holds them back."""
    from tune.testbed import TestBed
    bed = TestBed(1, base_dir=str(tmp_path / "bed"), prefix="tm", subnet="10.78.202", xen=False,
                  max_startups="2:100:2")

    def burst(retries=0):
        ssh.close_all()
        # distinct known-hosts files: ten separate pooled connections to the same host
        exs = {str(i): SSHExecutor(bed.hosts[0].address, key_filename=bed.key_path,
                                   known_hosts=str(tmp_path / f"kh{i}"), connect_timeout=5,
                                   retries=retries, backoff=0.05, host_key_policy="insecure")
               for i in range(10)}
        res = run_on_hosts(exs, lambda ex: ex.run(["true"]).ok, max_workers=10)
        for ex in exs.values():
            ex.close()
        return res

    with bed:
        try:
            ssh.set_max_parallel_connects(10)
            failures = [burst().failed for _ in range(3)]
            assert any(failures), "sshd should have dropped some of 10 simultaneous connects"
            assert all(isinstance(e, HostUnreachable) for f in failures for e in f.values())
            # sshd counts a connection until its child reports the login, a moment after the
            # client sees it: stay below MaxStartups' start, and let the retries absorb the rest
            ssh.set_max_parallel_connects(1)
            assert burst(retries=2).ok
        finally:
            ssh.set_max_parallel_connects(10)
            ssh.close_all()


def test_stream_reports_a_lost_host(make, testbed_hosts):
    ex = make("h3")
    s = ex.stream(Shell("echo up; sleep 30"))
    it = s.lines()
    assert next(it) == "up"
    testbed_hosts.kill_sshd("h3")
    with pytest.raises(HostUnreachable):
        list(it)
    s.close()
