"""The ``xl``/``xentop`` parsers on hostile output: only TuneError subclasses, bounded time.

``tests/test_xen_parse.py`` fuzzes ``xl list``/``xentop`` with short random and mutated text;
here every parser (``xl info``, ``host_info``, ``xl create`` and ``xl migrate`` messages
included) gets random text and bytes, and very large inputs must finish within a time bound.
"""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tune.errors import TuneError
from tune.virt.xlparse import (XENTOP_FLAGS, XL_FLAGS, host_info, invalid_domain, parse_create_error,
                               parse_migration, parse_state, parse_xentop, parse_xl_info, parse_xl_list)

BOUND = settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
PIECES = ["Name", "ID", "Mem", "VCPUs\tState\tTime(s)", "Domain-0", "r-----", "--b---", "NAME", "STATE",
          "CPU(%)", "nr_cpus", "total_memory", "free_memory", ":", "\t", " ", "\n", "-1", "0", "4096",
          "1e9", "nan", "Migration successful.", "Migration failed", " is an invalid domain identifier (rc=-6)",
          "libxl: error:", "migration sender: Target reports", "Failed to read config file", "\r", "\x00"]
outputs = st.one_of(st.text(max_size=2000),
                    st.lists(st.sampled_from(PIECES) | st.text(max_size=12), max_size=200).map("".join),
                    st.binary(max_size=2000).map(lambda b: b.decode("utf-8", errors="replace")))


def only_tune_errors(fn, *args):
    try:
        return fn(*args)
    except TuneError:
        return None


@BOUND
@given(outputs)
def test_table_parsers_raise_only_tune_errors(text):
    only_tune_errors(parse_xl_list, text)
    only_tune_errors(parse_xentop, text)
    only_tune_errors(parse_xentop, text, 1)
    info = only_tune_errors(parse_xl_info, text)
    if info is not None:
        only_tune_errors(host_info, info)


@BOUND
@given(outputs, st.integers(min_value=-300, max_value=300))
def test_message_parsers_never_raise(text, status):
    outcome = parse_migration(text, status)
    assert outcome.status in ("completed", "failed", "undefined") and isinstance(outcome.reason, str)
    assert outcome.ok == (outcome.status == "completed")
    assert outcome.ok is False or status == 0
    assert isinstance(parse_create_error(text), str)
    name = invalid_domain(text)
    assert name is None or isinstance(name, str)


@BOUND
@given(st.dictionaries(st.sampled_from(["nr_cpus", "total_memory", "free_memory", "host", "x"]),
                       st.text(max_size=30)))
def test_host_info_on_any_dict(info):
    only_tune_errors(host_info, info)


@BOUND
@given(st.text(max_size=8), st.sampled_from([XL_FLAGS, XENTOP_FLAGS]))
def test_state_flags(flags, order):
    state = only_tune_errors(parse_state, flags, order)
    assert state is None or state in ("running", "blocked", "paused", "shutdown", "crashed", "dying")


HUGE = {
    "one 8 MB line": "x" * (8 << 20),
    "200k short lines": "Domain-0 0 512 1 r----- 5.6\n" * 200_000,
    "header then 100k garbage lines": "Name ID Mem VCPUs\tState\tTime(s)\n" + "a b c d e f g\n" * 100_000,
    "invalid-domain bait": (" is an invalid domain identifier (rc=" * 50_000) + "\n",
    "migration stderr of 100k lines": "libxl: error: x\n" * 50_000 + "Migration failed\n" * 50_000,
    "xl info 100k keys": "".join(f"k{i} : {i}\n" for i in range(100_000)),
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_outputs_are_parsed_or_refused_quickly(name):
    text = HUGE[name]
    for fn, args in ((parse_xl_list, ()), (parse_xentop, ()), (parse_xl_info, ()),
                     (parse_migration, (1,)), (parse_create_error, ()), (invalid_domain, ())):
        t0 = time.monotonic()
        only_tune_errors(fn, text, *args)
        elapsed = time.monotonic() - t0
        assert elapsed < 3.0, f"{fn.__name__} on {name}: {elapsed:.2f} s"
