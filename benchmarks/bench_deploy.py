"""Parallel deployment on real hosts: tune against one host after another and against Ansible.

One command, one table (median of several runs; needs root for the namespace test bed)::

    python benchmarks/bench_deploy.py            # 8 hosts, 3 x 5 MB archives, 3 runs
    python benchmarks/bench_deploy.py --quick    # 2 hosts, 3 x 256 KB archives, 1 run, no Ansible

The test bed: 8 network-namespace hosts with their own sshd (prefix ``bd``, 10.79.0.0/24, so it
never meets the tests' ``tt*`` hosts; a second run at once takes the next free slot, ``bd1`` on
10.79.1.0/24, ...).  The application: three component types ``A``, ``B``, ``C``,
one instance of each per host (round-robin, three slots a host), each with its own legacy
archive — a tar.gz of 5 MB of random (incompressible) bytes made at run time.  Deploying is, per
instance: copy the archive, unpack it in the instance's folder, ``start`` (a wrapper that runs
``sha1sum payload-*.bin > started`` on the node, over SSH).  Every run starts cold: new SSH connections.

Rows:

* **tune, 8 hosts in parallel**: ``Manager(app, max_parallel=8).deploy()`` (connect, prepare each
  node, copy and unpack every archive, relays, then the ``start`` of every instance);
* **tune, --parallel 1**: the same with ``max_parallel=1`` (hosts one after another; the
  ``start`` calls are still concurrent);
* **one host after another (loop)**: the same steps over tune's SSH executor, host by host; the
  slowest host of this loop is the **slowest single host**, the reference of the first goal;
* **Ansible ad-hoc, -f 8**: ``ansible all -i INVENTORY -f 8`` with ``-m shell`` (folders),
  ``-m unarchive`` (one per archive) and ``-m shell`` (start), over the same key and the test
  bed's known-hosts file (``StrictHostKeyChecking=yes``, ``ANSIBLE_HOST_KEY_CHECKING=True``);
  each run has its own ControlPath folder, so Ansible also starts cold and then reuses its
  connections between its commands, as it does by default.  ``ansible-core`` is installed with
  pip when missing (a message says so); if that fails, the row says why.

Goals: tune's total <= 1.3 x the slowest single host; <= 0.5 x Ansible's time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    claim_testbed_slot,
    median,
    print_table,
    quiet_logs,
    verdict,
    workdir,
    write_app,
)

TYPES = ("A", "B", "C")
DIRLOCAL = "/root/tune-bench"  # each test-bed host has its own /root (/tmp is shared)
ANSIBLE_DIR = "/root/ansible-bench"
FORKS = 8
START = "sha1sum payload-{t}.bin > started"

WDL = """<wrapper name="NodeService">
  <method name="start" key="common.NodeCommand" method="start">
    <param value="sha1sum payload-*.bin &gt; started"/>
    <param value="$this.dirLocal"/>
  </method>
  <method name="stop" key="common.NodeCommand" method="stop"/>
</wrapper>
"""


def make_archives(folder: str, size: int) -> dict[str, str]:
    """One ``T.tar.gz`` per component type holding ``payload-T.bin`` of ``size`` random bytes."""
    out = {}
    for t in TYPES:
        payload = os.path.join(folder, f"payload-{t}.bin")
        with open(payload, "wb") as fh:
            left = size
            while left > 0:
                chunk = min(left, 1 << 20)
                fh.write(os.urandom(chunk))
                left -= chunk
        path = os.path.join(folder, f"{t}.tar.gz")
        with tarfile.open(path, "w:gz") as tar:
            tar.add(payload, arcname=os.path.basename(payload))
        os.unlink(payload)
        out[t] = path
    return out


def write_deploy_app(folder: str, bed: Any, archives: dict[str, str]) -> str:
    n = len(bed.hosts)
    path = write_app(folder, name="bench-deploy", components=[(t, n, archives[t]) for t in TYPES],
                     nodes=[f"root@{h.address}" for h in bed.hosts for _ in TYPES], protocol="ssh",
                     family_extra=f'user="root" key="{bed.key_path}"', dirlocal=DIRLOCAL, wdl=WDL)
    return path


def clean_hosts(bed: Any) -> None:
    for h in bed.hosts:
        bed.run_in(h, ["rm", "-rf", DIRLOCAL, ANSIBLE_DIR], check=False)


def check_started(bed: Any, base: str) -> None:
    """Every host has every payload unpacked and started (raises otherwise)."""
    for h in bed.hosts:
        out = bed.run_in(h, ["sh", "-c", f"ls {base}/*/started {base}/*/*/started 2>/dev/null | wc -l"],
                         check=False).stdout.strip()
        if int(out or 0) < len(TYPES):
            raise RuntimeError(f"{h.name}: only {out} of {len(TYPES)} instances started under {base}")


CPU: dict[str, list[float]] = {}


def _cpu() -> float:
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def tune_run(app_path: str, state_dir: str, parallel: int) -> float:
    from tune.adl.loader import load_application
    from tune.clock import Clock
    from tune.manager import Manager

    app = load_application(app_path)
    m = Manager(app, clock=Clock(), state_dir=state_dir, max_parallel=parallel, control_socket=False)
    try:
        t0, c0 = time.perf_counter(), _cpu()
        m.deploy()
        elapsed = time.perf_counter() - t0
        CPU.setdefault(f"tune{parallel}", []).append(_cpu() - c0)
        bad = [c.srname for c in m.sr.instances() if c.state.value != "started"]
        if bad:
            raise RuntimeError(f"not started: {bad}")
    finally:
        m.shutdown()  # stop, remove the application's folders, close connections (not timed)
    return elapsed


def loop_run(bed: Any, archives: dict[str, str], known_hosts: str) -> tuple[float, list[float]]:
    """The same steps host by host (new connection each host); returns total and per-host times."""
    from tune.remote.base import Shell
    from tune.remote.ssh import SSHExecutor

    per_host = []
    t0 = time.perf_counter()
    for h in bed.hosts:
        t1 = time.perf_counter()
        with SSHExecutor(h.address, user="root", key_filename=bed.key_path, known_hosts=known_hosts) as ex:
            base = f"{DIRLOCAL}/loop"
            ex.run(["mkdir", "-p", "-m", "0750", base])
            for t in TYPES:
                d = f"{base}/{t}1"
                ex.put_archive(archives[t], d)
            for t in TYPES:
                ex.run(Shell(f"cd {base}/{t}1 && " + START.format(t=t)))
        per_host.append(time.perf_counter() - t1)
    total = time.perf_counter() - t0
    check_started(bed, f"{DIRLOCAL}/loop")
    clean_hosts(bed)
    return total, per_host


def ensure_ansible() -> str | None:
    """``ansible``'s path, installing ansible-core with pip if missing; None if impossible."""
    exe = shutil.which("ansible") or os.path.join(os.path.dirname(sys.executable), "ansible")
    if os.path.exists(exe):
        return exe
    print("bench_deploy: ansible not found: installing ansible-core with pip "
          f"({sys.executable} -m pip install ansible-core) ...", file=sys.stderr)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ansible-core"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"bench_deploy: pip install ansible-core failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    exe = shutil.which("ansible") or os.path.join(os.path.dirname(sys.executable), "ansible")
    return exe if os.path.exists(exe) else None


def ansible_run(ansible: str, bed: Any, archives: dict[str, str], work: str, run: int) -> float:
    inventory = os.path.join(work, "inventory.ini")
    with open(inventory, "w") as fh:
        fh.write("[bench]\n")
        fh.writelines(f"{h.address} ansible_user=root ansible_ssh_private_key_file={bed.key_path} "
                     "ansible_python_interpreter=/usr/bin/python3\n" for h in bed.hosts)
    cp_dir = os.path.join(work, f"ansible-cp-{run}")
    os.makedirs(cp_dir, exist_ok=True)
    env = dict(os.environ,
               ANSIBLE_HOST_KEY_CHECKING="True",
               ANSIBLE_SSH_ARGS=(f"-o UserKnownHostsFile={bed.global_known_hosts} -o StrictHostKeyChecking=yes "
                                 "-o ControlMaster=auto -o ControlPersist=30s"),
               ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir,
               ANSIBLE_LOCAL_TEMP=os.path.join(work, "ansible-tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="minimal",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3")
    base = ANSIBLE_DIR

    log_path = os.path.join(work, f"ansible-{run}.log")

    def adhoc(module: str, arg: str) -> None:
        # output to a file, not a pipe: the ControlPersist master inherits it and would keep a
        # pipe open (subprocess would then wait for the master to exit, 30 s later)
        with open(log_path, "a") as log:
            proc = subprocess.run([ansible, "all", "-i", inventory, "-f", str(FORKS), "-m", module, "-a", arg],
                                  env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=600, check=False)
        if proc.returncode != 0:
            with open(log_path) as fh:
                raise RuntimeError(f"ansible -m {module} failed ({proc.returncode}):\n{fh.read()[-3000:]}")

    t0 = time.perf_counter()
    adhoc("shell", "mkdir -p -m 0750 " + " ".join(f"{base}/{t}1" for t in TYPES))
    for t in TYPES:
        adhoc("unarchive", f"src={archives[t]} dest={base}/{t}1")
    adhoc("shell", " && ".join(f"(cd {base}/{t}1 && {START.format(t=t)})" for t in TYPES))
    elapsed = time.perf_counter() - t0
    check_started(bed, base)
    for sock in os.listdir(cp_dir):  # end Ansible's control masters now rather than in 30 s
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={os.path.join(cp_dir, sock)}", "x"],
                       capture_output=True, timeout=10, check=False)
    clean_hosts(bed)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 hosts, 256 KB archives, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3)")
    parser.add_argument("--hosts", type=int, default=None, help="test-bed hosts (default 8)")
    parser.add_argument("--mb", type=float, default=None, help="archive size in MB (default 5)")
    parser.add_argument("--no-ansible", action="store_true", help="skip the Ansible row")
    parser.add_argument("--ansible", action="store_true", help="run the Ansible row even with --quick")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    n_hosts = args.hosts or (2 if args.quick else 8)
    size = int((args.mb if args.mb is not None else (0.25 if args.quick else 5)) * 1024 * 1024)
    headers = ["how", "hosts", "instances", "MB copied", "total s", "vs slowest host", "vs Ansible", "goal", "met?"]
    title = "Parallel deployment on namespace hosts (bench_deploy.py)"

    from tune.testbed import TestBed, testbed_missing_reason

    reason = testbed_missing_reason()
    if reason:
        print_table(title, headers, [["(all rows)", "-", "-", "-", "-", "-", "-", "-", f"skipped: {reason}"]], runs=0)
        return 0
    quiet_logs()
    work = workdir("deploy")
    archives = make_archives(work, size)
    mb = sum(os.path.getsize(a) for a in archives.values()) * n_hosts / 2**20
    skip_ansible = args.no_ansible or (args.quick and not args.ansible)
    ansible = None if skip_ansible else ensure_ansible()
    prefix, subnet, _lock = claim_testbed_slot("bd", 0)
    bed = TestBed(n_hosts, base_dir=os.path.join(work, "bed"), prefix=prefix, subnet=subnet, xen=False)
    res: dict[str, list[float]] = {"par": [], "seq": [], "loop": [], "slowest": [], "ansible": []}
    with bed:
        app = write_deploy_app(os.path.join(work, "app"), bed, archives)
        clean_hosts(bed)
        for r in range(runs):
            res["par"].append(tune_run(app, os.path.join(work, f"state-par-{r}"), n_hosts))
            res["seq"].append(tune_run(app, os.path.join(work, f"state-seq-{r}"), 1))
            total, per_host = loop_run(bed, archives, os.path.join(work, f"known-loop-{r}"))
            res["loop"].append(total)
            res["slowest"].append(max(per_host))
            if ansible:
                res["ansible"].append(ansible_run(ansible, bed, archives, work, r))
            print(f"  run {r + 1}: tune {res['par'][-1]:.2f} s, --parallel 1 {res['seq'][-1]:.2f} s, loop "
                  f"{total:.2f} s (slowest host {max(per_host):.2f} s)"
                  + (f", ansible {res['ansible'][-1]:.2f} s" if ansible else ""), file=sys.stderr)
    slowest = median(res["slowest"])
    ans = median(res["ansible"]) if res["ansible"] else None
    inst = n_hosts * len(TYPES)

    def row(label: str, t: float, goal: str = "", ok: str = "") -> list[Any]:
        return [label, n_hosts, inst, mb, t, f"{t / slowest:.2f}x", f"{t / ans:.2f}x" if ans else "-", goal, ok]

    par = median(res["par"])
    goals = f"<= 1.3x slowest host{', <= 0.5x Ansible' if ans else ''}"
    ok = par <= 1.3 * slowest and (ans is None or par <= 0.5 * ans)
    cpu = median(CPU.get(f"tune{n_hosts}", [0.0]))
    rows = [row(f"tune, {n_hosts} hosts in parallel", par, goals, verdict(ok)
                + ("" if par <= 1.3 * slowest else f" (slowest host: {par / slowest:.2f}x)")
                + ("" if ans is None or par <= 0.5 * ans else f" (Ansible: {par / ans:.2f}x)")),
            row("tune, --parallel 1", median(res["seq"])),
            row("one host after another (loop)", median(res["loop"])),
            row("slowest single host (of the loop)", slowest, "reference")]
    if ans is not None:
        rows.append(row(f"Ansible ad-hoc, -f {FORKS}", ans, "reference"))
    elif skip_ansible:
        rows.append(["Ansible ad-hoc", n_hosts, inst, mb, "-", "-", "-", "-",
                     "skipped: " + ("--no-ansible" if args.no_ansible else "--quick (add --ansible)")])
    else:
        rows.append(["Ansible ad-hoc", n_hosts, inst, mb, "-", "-", "-", "-", "skipped: ansible-core unavailable"])
    print_table(title, headers, rows, runs=runs,
                notes=[(f"archives: 3 x {size / 2**20:g} MB of random bytes, tar.gz; total s: wall-clock from the "
                       "first connection to the last start (tune: Manager.deploy())."),
                       (f"CPU time of the manager's process during the parallel deploy: {cpu:.2f} s for {par:.2f} s of "
                       f"wall-clock on {os.cpu_count()} cores (the hosts' sshd use the same cores).")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
