"""How fast is the SSH executor?  Compared with OpenSSH (with and without ControlMaster).

Runs on its own namespace test bed (3 hosts, prefix ``bn``, 10.78.250.0/24; needs root) and
prints one table of medians::

    python benchmarks/bench_ssh.py            # 15 repetitions
    python benchmarks/bench_ssh.py --quick    # 5 repetitions

Rows: handshake only; ``run('true')`` on a new connection; on the pooled connection; three
hosts in parallel (new connections, then pooled); the same with OpenSSH's ``ssh`` client,
once per command and through a ControlMaster; fabric's ``Connection.run`` if installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tune.remote import ssh  # noqa: E402
from tune.remote.group import run_on_hosts  # noqa: E402
from tune.remote.ssh import SSHExecutor  # noqa: E402
from tune.testbed import TestBed, testbed_missing_reason  # noqa: E402


def median_ms(fn: Callable[[], object], n: int, setup: Optional[Callable[[], object]] = None) -> tuple[float, float]:
    """Median and min of ``fn`` in milliseconds over ``n`` runs (``setup`` untimed)."""
    times = []
    for _ in range(n):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 repetitions instead of 15")
    parser.add_argument("-n", type=int, default=None, help="repetitions")
    args = parser.parse_args(argv)
    n = args.n or (5 if args.quick else 15)
    reason = testbed_missing_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    work = tempfile.mkdtemp(prefix="tune-bench-")
    bed = TestBed(3, base_dir=os.path.join(work, "bed"), prefix="bn", subnet="10.78.250", xen=False)
    rows: list[tuple[str, float, float]] = []
    with bed:
        kh = os.path.join(work, "known_hosts")
        addrs = bed.addresses

        def executor(addr: str) -> SSHExecutor:
            return SSHExecutor(addr, key_filename=bed.key_path, known_hosts=kh, connect_timeout=5)

        executor(addrs[0]).run(["true"])  # record host keys once
        ssh.close_all()

        def handshake() -> None:
            ex = executor(addrs[0])
            ex.connect()
            ex.close()
        rows.append(("tune ssh: connect (handshake + auth)", *median_ms(handshake, n)))

        def new_run() -> None:
            ex = executor(addrs[0])
            ex.run(["true"])
            ex.close()
        rows.append(("tune ssh: run('true'), new connection", *median_ms(new_run, n)))

        pooled = executor(addrs[0])
        pooled.run(["true"])
        rows.append(("tune ssh: run('true'), pooled connection", *median_ms(
            lambda: pooled.run(["true"]), n)))
        pooled.close()

        def group_new() -> None:
            exs = {a: executor(a) for a in addrs}
            run_on_hosts(exs, lambda ex: ex.run(["true"])).raise_on_failure()
            for ex in exs.values():
                ex.close()
        rows.append(("tune ssh: 3 hosts in parallel, new connections", *median_ms(group_new, n)))

        group = {a: executor(a) for a in addrs}
        run_on_hosts(group, lambda ex: ex.run(["true"])).raise_on_failure()
        rows.append(("tune ssh: 3 hosts in parallel, pooled", *median_ms(
            lambda: run_on_hosts(group, lambda ex: ex.run(["true"])).raise_on_failure(), n)))
        for ex in group.values():
            ex.close()

        base = ["ssh", "-i", bed.key_path, "-o", "IdentitiesOnly=yes", "-o",
                f"UserKnownHostsFile={bed.global_known_hosts}", "-o", "BatchMode=yes"]
        target = f"root@{addrs[0]}"
        rows.append(("OpenSSH ssh: run 'true' (new connection)", *median_ms(
            lambda: subprocess.run(base + [target, "true"], check=True), n)))
        ctl = os.path.join(work, "cm-%C")
        cm = base + ["-o", "ControlMaster=auto", "-o", f"ControlPath={ctl}", "-o",
                     "ControlPersist=60"]
        subprocess.run(cm + [target, "true"], check=True)
        rows.append(("OpenSSH ssh: run 'true' via ControlMaster", *median_ms(
            lambda: subprocess.run(cm + [target, "true"], check=True), n)))
        subprocess.run(cm + ["-O", "exit", target], capture_output=True)

        try:
            import fabric
        except ImportError:  # pragma: no cover
            fabric = None
        if fabric is not None:
            kw = {"key_filename": bed.key_path}

            def fab_new() -> None:
                with fabric.Connection(addrs[0], user="root", connect_kwargs=kw) as c:
                    c.client.load_host_keys(bed.global_known_hosts)
                    c.run("true", hide=True)
            rows.append(("fabric: run('true'), new connection", *median_ms(fab_new, n)))
            conn = fabric.Connection(addrs[0], user="root", connect_kwargs=kw)
            conn.run("true", hide=True)
            rows.append(("fabric: run('true'), reused connection", *median_ms(
                lambda: conn.run("true", hide=True), n)))
            conn.close()
        ssh.close_all()

    width = max(len(r[0]) for r in rows)
    print(f"SSH benchmark on {len(addrs)} namespace hosts, {n} repetitions (milliseconds)")
    print(f"{'case':<{width}}  {'median':>8}  {'min':>8}")
    for name, med, low in rows:
        print(f"{name:<{width}}  {med:8.1f}  {low:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
