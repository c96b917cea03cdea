"""The QMP client against a real QEMU (``-machine none``: no guest, starts in milliseconds)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

from tune.errors import DriverError
from tune.virt.qemu import qemu_missing_reason
from tune.virt.qmp import QMPClient, QMPError

pytestmark = pytest.mark.skipif(qemu_missing_reason() is not None, reason=str(qemu_missing_reason()))


@pytest.fixture
def qemu_none(tmp_path):
    """A QEMU with no machine, QMP on a unix socket; killed and reaped at teardown."""
    sock = str(tmp_path / "q.qmp")
    proc = subprocess.Popen(["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
                             "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield sock, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_greeting_capabilities_and_commands(qemu_none):
    sock, _ = qemu_none
    with QMPClient(sock) as q:
        assert q.greeting["QMP"]["version"]["qemu"]["major"] >= 4
        assert q.execute("query-status")["status"] in ("running", "prelaunch", "paused")
        assert "query-migrate" in {c["name"] for c in q.execute("query-commands")}
        # keyword form
        q.cmd("migrate-set-parameters", **{"downtime-limit": 123})
        assert q.cmd("query-migrate-parameters")["downtime-limit"] == 123


def test_error_reply_is_qmp_error_and_connection_survives(qemu_none):
    sock, _ = qemu_none
    with QMPClient(sock) as q:
        with pytest.raises(QMPError) as info:
            q.execute("no-such-command")
        assert info.value.error_class == "CommandNotFound"
        assert isinstance(info.value, DriverError)
        with pytest.raises(QMPError):
            q.execute("migrate-set-parameters", {"downtime-limit": "not a number"})
        assert q.execute("query-status")  # still usable


def test_events_are_buffered(qemu_none):
    sock, _ = qemu_none
    with QMPClient(sock) as q:
        q.execute("stop")
        q.execute("query-status")
        ev = q.wait_event("STOP", timeout=5)
        assert ev["event"] == "STOP" and "timestamp" in ev
        q.execute("cont")
        q.execute("query-status")
        assert [e["event"] for e in q.events("RESUME")] == ["RESUME"]
        assert q.events("RESUME") == []
        with pytest.raises(DriverError, match="no QMP event"):
            q.wait_event("SHUTDOWN", timeout=0.2)


def test_quit_then_connection_lost_is_driver_error(qemu_none):
    sock, proc = qemu_none
    q = QMPClient(sock)
    q.execute("quit")
    proc.wait(10)
    with pytest.raises(DriverError):
        q.execute("query-status")
    q.close()


def test_no_socket_is_driver_error(tmp_path):
    t = time.monotonic()
    with pytest.raises(DriverError, match="cannot connect"):
        QMPClient(str(tmp_path / "missing.qmp"), connect_timeout=0.3)
    assert time.monotonic() - t < 3


def test_silent_server_times_out(tmp_path):
    """A peer that accepts but never greets: the client gives up after its timeout."""
    path = str(tmp_path / "silent.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    conns = []
    t = threading.Thread(target=lambda: conns.append(srv.accept()[0]), daemon=True)
    t.start()
    try:
        start = time.monotonic()
        with pytest.raises(DriverError, match="timeout"):
            QMPClient(path, timeout=0.3)
        assert time.monotonic() - start < 3
    finally:
        t.join(2)
        for c in conns:
            c.close()
        srv.close()


def test_not_qmp_peer(tmp_path):
    path = str(tmp_path / "http.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def serve() -> None:
        c, _ = srv.accept()
        c.sendall(b'{"hello": 1}\n')
        time.sleep(0.5)
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with pytest.raises(DriverError, match="not a QMP greeting"):
            QMPClient(path, timeout=2)
    finally:
        t.join(2)
        srv.close()


def test_qemu_socket_file_is_unix(qemu_none):
    sock, _ = qemu_none
    deadline = time.monotonic() + 5
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.01)
    QMPClient(sock).close()
    QMPClient(sock).close()  # one client at a time, again after the first closed


def test_driver_through_a_non_local_executor(tmp_path):
    """The executor path (as over SSH) with a local executor in disguise: -daemonize, files
    with cat, QMP through the helper run as a command."""
    from tune.remote.local import LocalExecutor
    from tune.virt.base import DomainSpec
    from tune.virt.qemu import QemuDriver

    class Elsewhere(LocalExecutor):
        protocol = "elsewhere"

    import ctypes
    # PR_SET_CHILD_SUBREAPER: the daemonized QEMU becomes our child when its parent exits, so
    # it can be reaped below (PID 1 here does not reap)
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    d = QemuDriver("hz", executor=Elsewhere("hz"), run_dir=str(tmp_path / "run"), machine="none")
    assert d._access.remote
    d.create(DomainSpec("m", memory_mb=16, extra={"net": "none", "qemu_args": ["-S"]}))
    try:
        [dom] = d.list()
        assert (dom.name, dom.state) == ("m", "paused") and dom.cpu_percent is not None
        assert d.status("m") == "prelaunch"
        with pytest.raises(QMPError, match="CommandNotFound"):
            d._qmp("m").execute("no-such-command")
        assert d.set_migration_parameters("m", downtime_limit_ms=77)["downtime-limit"] == 77
        assert d.info().cpus >= 1
        again = QemuDriver("hz", executor=Elsewhere("hz"), run_dir=str(tmp_path / "run"), machine="none")
        assert again.names() == ["m"]
    finally:
        pid = d._pid("m")
        d.destroy("m")
    assert d.names() == []
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    assert not os.path.exists(f"/proc/{pid}")


def test_stale_files_with_a_recycled_pid_are_not_a_vm(tmp_path):
    """A pid file naming some other process (pid reused after QEMU died): the VM is gone, and
    nobody kills the innocent process."""
    from tune.errors import DomainNotFound
    from tune.virt.qemu import QemuDriver

    run = tmp_path / "run"
    d = QemuDriver("hy", run_dir=str(run))
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (run / "ghost.json").write_text('{"name": "ghost", "memory_mb": 64, "vcpus": 1}')
        (run / "ghost.pid").write_text(f"{bystander.pid}\n")
        with pytest.raises(DomainNotFound):
            d.shutdown("ghost")
        (run / "ghost.json").write_text('{"name": "ghost", "memory_mb": 64, "vcpus": 1}')
        (run / "ghost.pid").write_text(f"{bystander.pid}\n")
        d.destroy("ghost")
        (run / "ghost.json").write_text('{"name": "ghost", "memory_mb": 64, "vcpus": 1}')
        assert d.names() == [] and not (run / "ghost.json").exists()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
