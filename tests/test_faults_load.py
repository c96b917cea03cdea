"""``benchmarks/bench_load.py --quick`` runs, prints its table and every event is accounted for."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_load_quick():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_load.py"), "--quick",
                           "--duration", "3"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "## Load (bench_load.py)" in out
    assert out.count("| holds |") == 2 and "BROKEN" not in out
    assert "dropped by overflow / handler errors" in out and "| 0 / 0 |" in out
