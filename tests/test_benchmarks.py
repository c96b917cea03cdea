"""The benchmarks run: each script with ``--quick`` exits 0 and prints its table.

Benchmarks are not timed tests: no figure is checked here, only that the command works
(the numbers are in docs/benchmarks.md).  The namespace benchmark needs root; it is skipped
with the reason otherwise.
"""

import os
import subprocess
import sys

import pytest

from tune import (
    testbed,  # the module: a function named test* imported here would be collected
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")

CASES = [
    ("bench_reaction.py", "## Reaction latency (bench_reaction.py)", "| arrival ", False),
    ("bench_throughput.py", "## Event throughput (bench_throughput.py)", "| case ", False),
    ("bench_scale.py", "## Deployment scale on the simulated grid (bench_scale.py)", "| application ", False),
    ("bench_deploy.py", "## Parallel deployment on namespace hosts (bench_deploy.py)", "| how ", True),
]


@pytest.mark.parametrize("script,title,header,needs_root", CASES, ids=[c[0] for c in CASES])
def test_benchmark_runs_quick_and_prints_its_table(script, title, header, needs_root, tmp_path):
    if needs_root:
        reason = testbed.testbed_missing_reason()
        if reason:
            pytest.skip(reason)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), "--quick"], capture_output=True,
                          text=True, timeout=300, env=env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert title in out, out
    assert "machine: " in out and "date: " in out
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(header))
    assert lines[i + 1].startswith("|-"), out  # the header's rule, then at least one row
    assert lines[i + 2].startswith("| "), out
