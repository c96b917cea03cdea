"""LocalExecutor: small exact cases (argv quoting, exit codes, timeouts, streams, put)."""

import json
import sys
import time

import pytest

from tune.errors import CommandFailed, CommandTimeout, ExecutorError
from tune.remote import executor_for
from tune.remote.base import Shell
from tune.remote.local import LocalExecutor

HOSTILE = ['"; rm -rf /tmp/x; echo "', "$(touch /tmp/pwned)", "`id`", "a\nb", "'", '"', "-rf",
           "héllo ✓", "", " ", "*", "~", "$HOME", "\\", "a b"]


@pytest.fixture
def ex():
    return LocalExecutor()


def test_registry_gives_local():
    assert isinstance(executor_for("local", "localhost"), LocalExecutor)


def test_run_captures_stdout_stderr_and_status(ex):
    r = ex.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
    assert (r.exit_status, r.stdout, r.stderr, r.host) == (0, "out\n", "err\n", "localhost")
    assert r.ok and r.duration > 0


def test_argv_elements_arrive_literally(ex, tmp_path):
    r = ex.run([sys.executable, "-c", "import json,sys; print(json.dumps(sys.argv[1:]))", *HOSTILE])
    assert json.loads(r.stdout) == HOSTILE


def test_shell_runs_under_sh(ex):
    assert ex.run(Shell("echo a | tr a b")).stdout == "b\n"


def test_plain_string_is_refused(ex):
    with pytest.raises(TypeError):
        ex.run("echo hi")  # type: ignore[arg-type]


def test_check_raises_command_failed_with_data(ex):
    with pytest.raises(CommandFailed) as info:
        ex.run(Shell("echo o; echo e >&2; exit 3"))
    err = info.value
    assert (err.exit_status, err.stdout, err.stderr, err.host) == (3, "o\n", "e\n", "localhost")
    assert "exit 3" in err.command


def test_no_check_returns_failure(ex):
    r = ex.run(["false"], check=False)
    assert r.exit_status == 1 and r.failed


def test_missing_program_is_127(ex):
    assert ex.run(["/nonexistent/prog"], check=False).exit_status == 127
    with pytest.raises(CommandFailed) as info:
        ex.run(["/nonexistent/prog"])
    assert info.value.exit_status == 127


def test_input_and_env(ex):
    assert ex.run(["cat"], input="abc").stdout == "abc"
    assert ex.run(Shell('printf %s "$TUNE_X"'), env={"TUNE_X": "v w"}).stdout == "v w"


def test_timeout_kills_the_process_group(ex, tmp_path):
    marker = tmp_path / "child.pid"
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        ex.run(Shell(f"sleep 30 & echo $! > {marker}; wait"), timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert info.value.host == "localhost" and "sleep 30" in info.value.command
    child = int(marker.read_text())
    for _ in range(50):  # the background child was in the group: it is dead too
        if not _running(child):
            break
        time.sleep(0.02)
    else:
        pytest.fail("background child survived the timeout")


def _running(pid):
    """Alive and not a zombie (orphans may stay zombies where PID 1 does not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_default_command_timeout():
    with pytest.raises(CommandTimeout):
        LocalExecutor(command_timeout=0.2).run(["sleep", "5"])


def test_stream_yields_lines_as_they_come(ex):
    s = ex.stream([sys.executable, "-u", "-c",
                   "import time\nfor i in range(3): print(i); time.sleep(0.05)"])
    assert list(s.lines()) == ["0", "1", "2"]
    s.close()


def test_stream_close_kills_a_long_command(ex):
    t0 = time.monotonic()
    with ex.stream(Shell("echo start; exec sleep 30")) as s:
        it = s.lines()
        assert next(it) == "start"
    assert time.monotonic() - t0 < 5


def test_put_copies_with_mode(ex, tmp_path):
    src = tmp_path / "a"
    src.write_text("data")
    ex.put(str(src), str(tmp_path / "b"), mode=0o600)
    assert (tmp_path / "b").read_text() == "data"
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ExecutorError):
        ex.put(str(tmp_path / "missing"), str(tmp_path / "c"))


def test_put_archive_unpacks(ex, tmp_path):
    import tarfile
    (tmp_path / "f.txt").write_text("x")
    arc = tmp_path / "a.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(tmp_path / "f.txt", arcname="f.txt")
    ex.put_archive(str(arc), str(tmp_path / "out"))
    assert (tmp_path / "out" / "f.txt").read_text() == "x"


def test_alive(ex):
    assert ex.alive()
