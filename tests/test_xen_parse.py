"""xl/xentop parsers on verbatim Xen 4.17.7 outputs (tests/data/xl), plus fuzzing."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tune.errors import DriverError, TuneError
from tune.virt.xlparse import (XENTOP_FLAGS, XL_FLAGS, host_info, invalid_domain,
                               parse_create_error, parse_migration, parse_state, parse_xentop,
                               parse_xl_info, parse_xl_list)

DATA = os.path.join(os.path.dirname(__file__), "data", "xl")


def sample(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as fh:
        return fh.read()


def meta_exit(name):
    line = sample(name)
    return int(line.split("exit_code=")[1].split()[0])


# -- xl list --------------------------------------------------------------------------------
def test_header_has_tabs():
    assert "VCPUs\tState\tTime(s)" in sample("xl-list.running.txt")


def test_xl_list_dom0_only():
    (dom0,) = parse_xl_list(sample("xl-list.dom0-only.txt"))
    assert (dom0.name, dom0.domid, dom0.memory_mb, dom0.vcpus, dom0.state, dom0.cpu_seconds) == \
        ("Domain-0", 0, 512, 1, "running", 5.6)


def test_xl_list_running_and_paused():
    doms = parse_xl_list(sample("xl-list.running.txt"))
    assert [(d.name, d.domid, d.memory_mb, d.state, d.cpu_seconds) for d in doms] == [
        ("Domain-0", 0, 512, "running", 14.2), ("d1", 1, 96, "blocked", 7.3)]
    d1 = parse_xl_list(sample("xl-list.paused.txt"))[1]
    assert (d1.name, d1.state, d1.cpu_seconds) == ("d1", "paused", 7.5)


def test_name_with_spaces_and_long_names():
    text = ("Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
            "a very long domain name that overflows the column 12  2048     4     ----c-     100.0\n")
    (d,) = parse_xl_list(text)
    assert (d.name, d.domid, d.memory_mb, d.vcpus, d.state) == (
        "a very long domain name that overflows the column", 12, 2048, 4, "crashed")


@pytest.mark.parametrize("text", ["", "garbage", "Name ID Mem\nDomain-0 0 512\n",
                                  "Name ID Mem VCPUs\tState\tTime(s)\nDomain-0 0 x 1 r----- 1.0\n",
                                  "Name ID Mem VCPUs\tState\tTime(s)\nDomain-0 0 512 1 q----- 1.0\n",
                                  "Name ID Mem VCPUs\tState\tTime(s)\nd 1 2\n"])
def test_xl_list_garbage(text):
    with pytest.raises(DriverError):
        parse_xl_list(text)


def test_state_flags_orders_differ():
    assert [parse_state(f, XL_FLAGS) for f in ("r-----", "-b----", "--p---", "---s--", "----c-",
                                               "-----d", "------")] == [
        "running", "blocked", "paused", "shutdown", "crashed", "dying", "running"]
    assert [parse_state(f, XENTOP_FLAGS) for f in ("d-----", "-s----", "--b---", "---c--",
                                                   "----p-", "-----r")] == [
        "dying", "shutdown", "blocked", "crashed", "paused", "running"]
    with pytest.raises(DriverError):
        parse_state("--b---", XL_FLAGS)  # xentop's order is not xl list's
    with pytest.raises(DriverError):
        parse_state("r----", XL_FLAGS)


def test_invalid_domain():
    err = sample("xl-list.nonexistent.stderr.txt")
    assert invalid_domain(err) == "nonexistent" and meta_exit("xl-list.nonexistent.meta") == 1
    assert invalid_domain("Parsing config from x\n") is None


# -- xentop ---------------------------------------------------------------------------------
def test_xentop_second_iteration_has_cpu():
    text = sample("xentop-b-d1-i2.running.txt")
    first = parse_xentop(text, iteration=0)
    assert first["d1"].cpu_percent == 0.0 and first["d1"].state == "blocked"
    rows = parse_xentop(text)
    d1, dom0 = rows["d1"], rows["Domain-0"]
    assert (d1.cpu_percent, d1.cpu_seconds, d1.mem_k, d1.maxmem_k, d1.vcpus, d1.state) == \
        (6.2, 7, 98368, 99328, 1, "running")
    assert (dom0.cpu_percent, dom0.state, dom0.mem_k) == (5.1, "running", 524288)
    assert list(rows) == ["d1", "Domain-0"]


def test_xentop_no_limit_and_missing_iteration():
    text = sample("xentop-b-d1-i2.running.txt").splitlines()
    header, row = text[0], text[1]
    cooked = row.replace("     99328       9.5", "  no limit       n/a")
    rows = parse_xentop(header + "\n" + cooked + "\n")
    assert rows["d1"].maxmem_k is None
    with pytest.raises(DriverError):
        parse_xentop(header + "\n", iteration=3)


@pytest.mark.parametrize("text", ["", "d1 --b--- 7 0.0\n", "      NAME  STATE\n",
                                  sample("xentop-b-d1-i2.running.txt").replace("6.2", "x.y")])
def test_xentop_garbage(text):
    with pytest.raises(DriverError):
        parse_xentop(text)


# -- xl info, create, migrate --------------------------------------------------------------
def test_xl_info():
    info = parse_xl_info(sample("xl-info.d1-running.txt"))
    assert info["hw_caps"].count(":") == 7 and info["xen_changeset"] == ""
    h = host_info(info)
    assert (h.name, h.cpus, h.memory_mb, h.free_memory_mb) == ("xA", 1, 1023, 400)
    assert host_info(parse_xl_info(sample("xl-info.txt")), name="dom0-a").free_memory_mb == 498
    with pytest.raises(DriverError):
        host_info({"host": "x"})
    with pytest.raises(DriverError):
        parse_xl_info("no colon here\n")


def test_create_messages():
    assert sample("xl-create.success.stderr.txt").startswith("Parsing config from /etc/xen/d1.cfg")
    assert meta_exit("xl-create.missing-config.meta") == 3
    assert parse_create_error(sample("xl-create.missing-config.stderr.txt")) == \
        "Failed to read config file: /etc/xen/nonexistent.cfg: No such file or directory"


def test_migration_success():
    out = parse_migration(sample("xl-migrate.success.stderr.txt"), 0)
    assert out.ok and out.status == "completed"
    assert out.phases == ["acknowledged", "permission", "started"]
    assert not parse_migration(sample("xl-migrate.success.stderr.txt"), 1).ok


def test_migration_receiver_killed():
    out = parse_migration(sample("xl-migrate.fail-receiver-killed.stderr.txt"),
                          meta_exit("xl-migrate.fail-receiver-killed.meta"))
    assert not out.ok and out.status == "failed" and out.phases == []
    assert out.reason.startswith("Migration failed, resuming at sender.")
    assert "truncated reading ready message" in out.reason


def test_migration_other_failures():
    banner = ("ssh: connect to host h2 port 22: Connection refused\n"
              "libxl: error: libxl_utils.c:505:libxl_read_exactly: file/stream truncated reading "
              "banner from migration receiver stream\n")
    out = parse_migration(banner, 1)
    assert out.status == "failed" and out.reason.startswith("ssh: connect to host h2")
    bad = "migration sender: Target has acknowledged transfer.\n** Migration failed during final handshake **\n"
    assert parse_migration(bad, 1).status == "undefined"
    assert parse_migration("", 1).reason == "xl migrate exited with status 1"


# -- fuzzing: only DriverError, never IndexError/ValueError ---------------------------------
PARSERS = [parse_xl_list, parse_xentop, parse_xl_info,
           lambda t: host_info(parse_xl_info(t)), lambda t: parse_state(t[:6])]
SAMPLES = [sample(n) for n in ("xl-list.running.txt", "xl-list.paused.txt", "xl-list.dom0-only.txt",
                               "xentop-b-d1-i2.running.txt", "xl-info.txt")]


def _only_driver_errors(fn, text):
    try:
        fn(text)
    except DriverError:
        pass
    except TuneError as exc:  # pragma: no cover - would still be acceptable, but say so
        pytest.fail(f"unexpected TuneError subclass {type(exc).__name__}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_random_text_gives_only_driver_errors(text):
    for fn in PARSERS:
        _only_driver_errors(fn, text)
    parse_migration(text, 1)
    invalid_domain(text)
    parse_create_error(text)


@st.composite
def mutated_sample(draw):
    text = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["replace", "delete", "insert", "dropline", "dupline"]))
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        if op == "replace":
            text = text[:i] + draw(st.sampled_from(list("x-\t 0.9\n:%rbp"))) + text[i + 1:]
        elif op == "delete":
            text = text[:i] + text[i + 1:]
        elif op == "insert":
            text = text[:i] + draw(st.text(max_size=5)) + text[i:]
        else:
            lines = text.splitlines(keepends=True)
            j = draw(st.integers(0, len(lines) - 1))
            lines[j:j + 1] = [] if op == "dropline" else [lines[j], lines[j]]
            text = "".join(lines)
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sample())
def test_mutated_samples_give_only_driver_errors(text):
    for fn in PARSERS:
        _only_driver_errors(fn, text)
