#!/usr/bin/python3
"""Stand-in for Xen's ``xl`` and ``xentop`` on the namespace test hosts.

Xen cannot run on the CI machines, so the ``xen`` driver is tested over real SSH against this
script.  It is one self-contained python3 file (standard library only) installed as
``/opt/xen/bin/xl`` in each test host's private ``/opt``, with ``xentop`` a symlink to it; the
test bed puts ``/opt/xen/bin`` first in sshd's ``PATH``.

It prints exactly what Xen 4.17.7's tools print in the samples under
``tests/data/xl/`` (column widths, the TABs in the ``xl list`` header, stderr messages, exit
codes).  Domain state lives in a directory shared by every host (as NFS holds the disks):
``STATE_DIR/domains/NAME.json`` records the domain's host, domid, memory, vCPUs, state and CPU
load; every change holds an ``fcntl`` lock on ``STATE_DIR/.lock``.

Configuration: ``/opt/xen/etc/fake-xl.json`` (written by the test bed) or the environment::

    {"state_dir": "/tmp/tune-testbed/xenstate", "host": "h1",
     "total_memory": 4096, "nr_cpus": 4, "dom0_mem": 512, "migration_mb_per_s": 2000}

Supported: ``xl list [NAME]``, ``xl create CFG`` (``name``, ``memory``, ``vcpus``), ``xl shutdown
[-w] NAME``, ``xl destroy NAME``, ``xl pause|unpause NAME``, ``xl info``, ``xl migrate [-s SSHCMD]
NAME HOST`` and ``xl migrate-receive``, ``xentop -b [-d SEC] [-i N]``.

``xl migrate`` works as real xl does: it runs ``sh -c "exec SSHCMD HOST xl migrate-receive"``
(``SSHCMD`` defaults to ``ssh``; with ``-s ""`` HOST itself is the command) and speaks a small
handshake over that pipe (banner, domain config, "ready", "GO", report) with the messages of
``tools/xl/xl_migrate.c``, so a dead destination sshd or a receiver killed mid-way make the
migration fail the real way and the domain stays on the source.  Messages on paths that were
not sampled (banner failure, duplicate names) follow xl's source and are marked below.

Test-bed-only extensions (not in real xl; used to drive CPU probes):

- ``xl tune-set-load NAME PCT``: the domain's CPU use (percent of one CPU) that ``xentop``
  reports from now on and that ``xl list``'s ``Time(s)`` integrates;
- ``xl tune-dump``: the shared state as JSON.
"""

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

CONFIG_FILE = "/opt/xen/etc/fake-xl.json"
BANNER = b"xl migration receiver ready, send binary domain data.\n"
READY = b"domain received, ready to unpause\0"
GO = b"domain is yours, you are cleared to unpause\0"
REPORT = b"my copy unpause results are as follows\0"
SAVE_INFO = "(info 0x3/0x0/838)"
LOAD_INFO = "(new xl fmt info 0x3/0x0/838)"
LIST_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
XENTOP_HEADER = ("      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS "
                 "NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID")
INFO_STATIC = [
    ("release", "6.1.0-56-amd64"),
    ("version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"),
    ("machine", "x86_64"),
]


def err(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# -- configuration and shared state -------------------------------------------------------
def load_config():
    cfg = {}
    path = os.environ.get("TUNE_FAKE_XL_CONFIG", CONFIG_FILE)
    try:
        with open(path) as fh:
            cfg = json.load(fh)
    except (OSError, ValueError):
        pass
    cfg.setdefault("state_dir", os.environ.get("TUNE_FAKE_XL_STATE", "/tmp/tune-testbed/xenstate"))
    cfg.setdefault("host", os.environ.get("TUNE_FAKE_XL_HOST", socket.gethostname()))
    cfg.setdefault("total_memory", 4096)
    cfg.setdefault("nr_cpus", 4)
    cfg.setdefault("dom0_mem", 512)
    cfg.setdefault("dom0_load", 5.1)
    cfg.setdefault("migration_mb_per_s", 2000.0)
    return cfg


CFG = load_config()
HOST = CFG["host"]
STATE = CFG["state_dir"]
DOMS = os.path.join(STATE, "domains")


class Locked:
    """The state directory's lock: every read-modify-write of domain files happens under it."""

    def __enter__(self):
        os.makedirs(DOMS, exist_ok=True)
        self.fd = os.open(os.path.join(STATE, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _path(name):
    return os.path.join(DOMS, name.replace("/", "_") + ".json")


def read_dom(name):
    try:
        with open(_path(name)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def write_dom(dom):
    tmp = _path(dom["name"]) + ".tmp%d" % os.getpid()
    with open(tmp, "w") as fh:
        json.dump(dom, fh)
    os.replace(tmp, _path(dom["name"]))


def remove_dom(name):
    try:
        os.unlink(_path(name))
    except FileNotFoundError:
        pass


def all_doms():
    out = []
    try:
        names = sorted(os.listdir(DOMS))
    except FileNotFoundError:
        return out
    for fn in names:
        if fn.endswith(".json"):
            dom = read_dom(fn[:-5])
            if dom is not None:
                out.append(dom)
    return out


def host_doms(host=None):
    host = host or HOST
    return sorted((d for d in all_doms() if d.get("host") == host), key=lambda d: d["domid"])


def host_record():
    """Per-host data (boot time, next domid), created on first use."""
    path = os.path.join(STATE, "hosts", HOST + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        rec = {"boot": time.time(), "next_domid": 1}
        with open(path, "w") as fh:
            json.dump(rec, fh)
        return rec


def next_domid():
    path = os.path.join(STATE, "hosts", HOST + ".json")
    rec = host_record()
    domid = rec["next_domid"]
    rec["next_domid"] = domid + 1
    with open(path, "w") as fh:
        json.dump(rec, fh)
    return domid


def rename_dom(old, new):
    dom = read_dom(old)
    if dom is None:
        return None
    dom["name"] = new
    write_dom(dom)
    remove_dom(old)
    return dom


def cpu_seconds(dom, now=None):
    now = now or time.time()
    return dom.get("cpu_base", 0.0) + dom.get("load", 0.0) / 100.0 * max(0.0, now - dom.get("load_since", now))


def set_load(dom, pct, now=None):
    now = now or time.time()
    dom["cpu_base"] = cpu_seconds(dom, now)
    dom["load_since"] = now
    dom["load"] = float(pct)


def dom0():
    rec = host_record()
    up = max(0.0, time.time() - rec["boot"])
    return {"name": "Domain-0", "domid": 0, "memory": CFG["dom0_mem"], "vcpus": 1, "state": "running",
            "load": CFG["dom0_load"], "cpu_base": 5.0 + up * CFG["dom0_load"] / 100.0,
            "load_since": time.time(), "dom0": True}


def free_memory():
    used = sum(d["memory"] + 2 for d in host_doms())
    return CFG["total_memory"] - CFG["dom0_mem"] - 13 - used


def invalid(name):
    err("%s is an invalid domain identifier (rc=-6)" % name)
    return 1


def find_local(name):
    dom = read_dom(name)
    if dom is None or dom.get("host") != HOST:
        return None
    return dom


# -- xl list / info ------------------------------------------------------------------------
def xl_flags(dom):
    """``xl list`` order: r b p s c d."""
    state = dom.get("state", "running")
    flags = ["-"] * 6
    if state == "running":
        if dom.get("dom0") or dom.get("load", 0.0) >= 1.0:
            flags[0] = "r"
        else:
            flags[1] = "b"
    elif state == "paused":
        flags[2] = "p"
    elif state == "shutdown":
        flags[3] = "s"
    elif state == "crashed":
        flags[4] = "c"
    elif state == "dying":
        flags[5] = "d"
    return "".join(flags)


def list_line(dom):
    return "%-40s %5d %5d %5d     %s  %8.1f" % (dom["name"], dom["domid"], dom["memory"], dom["vcpus"],
                                             xl_flags(dom), cpu_seconds(dom))


def cmd_list(args):
    names = [a for a in args if not a.startswith("-")]
    if len(names) != len(args):
        err("fake xl: options of 'xl list' are not supported")
        return 2
    with Locked():
        if names:
            doms = []
            for name in names:
                dom = dom0() if name in ("Domain-0", "0") else find_local(name)
                if dom is None:
                    return invalid(name)
                doms.append(dom)
        else:
            doms = [dom0()] + host_doms()
    out = [LIST_HEADER] + [list_line(d) for d in doms]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def cmd_info(args):
    with Locked():
        free = free_memory()
    rows = [("host", HOST)] + INFO_STATIC + [
        ("nr_cpus", str(CFG["nr_cpus"])), ("max_cpu_id", str(CFG["nr_cpus"] - 1)),
        ("nr_nodes", "1"), ("cores_per_socket", str(CFG["nr_cpus"])), ("threads_per_core", "1"),
        ("cpu_mhz", "2596.136"),
        ("hw_caps", "0fcbf3fd:f6d8320b:e4500800:00000075:00000005:01884329:00000204:00000000"),
        ("virt_caps", "pv hvm hap gnttab-v1 gnttab-v2"),
        ("total_memory", str(CFG["total_memory"])), ("free_memory", str(free)),
        ("sharing_freed_memory", "0"), ("sharing_used_memory", "0"), ("outstanding_claims", "0"),
        ("free_cpus", "0"), ("xen_major", "4"), ("xen_minor", "17"), ("xen_extra", ".7"),
        ("xen_version", "4.17.7"),
        ("xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 "),
        ("xen_scheduler", "credit2"), ("xen_pagesize", "4096"),
        ("platform_params", "virt_start=0xffff800000000000"), ("xen_changeset", ""),
        ("xen_commandline", "console=com1 dom0_mem=%dM,max:%dM" % (CFG["dom0_mem"], CFG["dom0_mem"])),
        ("cc_compiler", "x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0"),
        ("cc_compile_by", "pkg-xen-devel"), ("cc_compile_domain", "lists.alioth.debian.org"),
        ("cc_compile_date", "Wed Nov  4 16:52:28 UTC 2026"),
        ("build_id", "151b373fd64b321593bf987fd923cd10dabadac4"), ("xend_config_format", "4")]
    sys.stdout.write("".join("%-23s: %s\n" % row for row in rows))
    return 0


# -- create / shutdown / destroy / pause ---------------------------------------------------
_CFG_LINE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*(#.*)?$')


def parse_config(text):
    """The few keys of an xl config file the stand-in needs."""
    values = {}
    for line in text.splitlines():
        m = _CFG_LINE.match(line)
        if not m:
            continue
        key, raw = m.group(1), m.group(2)
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            values[key] = raw[1:-1]
        else:
            values[key] = raw
    return values


def cmd_create(args):
    paths = [a for a in args if not a.startswith("-")]
    if len(paths) != 1:
        err("fake xl: usage: xl create CONFIG")
        return 2
    path = paths[0]
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        err("Failed to read config file: %s: %s" % (path, exc.strerror))
        return 3
    err("Parsing config from %s" % path)
    conf = parse_config(text)
    name = conf.get("name")
    try:
        memory = int(conf.get("memory", "128"))
        vcpus = int(conf.get("vcpus", "1"))
    except ValueError:
        err("%s: config parsing error near `%s': syntax error" % (path, conf.get("memory")))  # unsampled
        return 3
    if not name:
        err("Domain name must be specified.")  # unsampled, from xl's source
        return 3
    with Locked():
        if read_dom(name) is not None:
            # unsampled; libxl refuses a second domain of the same name
            err("libxl: error: libxl_create.c:1234:libxl__domain_make: Domain %s:"
                "domain with name \"%s\" already exists" % (name, name))
            return 3
        if memory + 2 > free_memory():
            err("libxl: error: libxl_create.c:1250:domcreate_launch_dm: Domain %s:"
                "failed to free memory for the domain" % name)  # unsampled (out of memory)
            return 3
        dom = {"name": name, "domid": next_domid(), "host": HOST, "memory": memory, "vcpus": vcpus,
               "state": "running", "config": path, "created": time.time()}
        set_load(dom, 0.0)
        dom["cpu_base"] = 0.1
        write_dom(dom)
    return 0


def cmd_shutdown(args):
    wait = "-w" in args or "--wait" in args
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        err("fake xl: usage: xl shutdown [-w] DOMAIN")
        return 2
    with Locked():
        dom = find_local(names[0])
        if dom is None:
            return invalid(names[0])
        err("Shutting down domain %d" % dom["domid"])
        remove_dom(dom["name"])
    if wait:
        err("Waiting for 1 domains")
        time.sleep(0.05)
        err("Domain %d has been shut down, reason code 0" % dom["domid"])
    return 0


def cmd_destroy(args):
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        err("fake xl: usage: xl destroy DOMAIN")
        return 2
    with Locked():
        dom = find_local(names[0])
        if dom is None:
            return invalid(names[0])
        remove_dom(dom["name"])
    return 0


def cmd_pause(args, paused):
    if len(args) != 1:
        err("fake xl: usage: xl pause|unpause DOMAIN")
        return 2
    with Locked():
        dom = find_local(args[0])
        if dom is None:
            return invalid(args[0])
        dom["state"] = "paused" if paused else "running"
        write_dom(dom)
    return 0


# -- migration -----------------------------------------------------------------------------
def read_exactly(fd, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = os.read(fd, n - len(buf))
        except OSError:
            chunk = b""
        if not chunk:
            return None
        buf += chunk
    return buf


def read_line(fd, limit=1 << 20):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk or len(buf) > limit:
            return None
        buf += chunk
    return buf


def truncated(stream, what):
    err("libxl: error: libxl_utils.c:505:libxl_read_exactly: file/stream truncated reading %s from %s"
        % (what, stream))


def child_report(child):
    """``migration_child_report``: wait up to 2 s for the transport command, report its status."""
    try:
        status = child.wait(timeout=2)
    except subprocess.TimeoutExpired:
        err("migration child [%d] not exiting, no longer waiting (exit status will be unreported)"
            % child.pid)
        return
    if status > 0:  # unsampled, from libxl_report_child_exitstatus
        err("libxl: info: libxl_exec.c:117:libxl_report_child_exitstatus: migration target process "
            "[%d] exited with error status %d" % (child.pid, status))
    elif status < 0:
        err("libxl: info: libxl_exec.c:117:libxl_report_child_exitstatus: migration target process "
            "[%d] died due to fatal signal %s" % (child.pid, signal.Signals(-status).name))


def cmd_migrate(args):
    ssh_command = "ssh"
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-s" and i + 1 < len(args):
            ssh_command = args[i + 1]
            i += 2
            continue
        if a == "-C" and i + 1 < len(args):  # a config file for the receiver: not needed here
            i += 2
            continue
        if a.startswith("-s") and len(a) > 2:
            ssh_command = a[2:]
        elif a in ("-e", "--debug", "-p", "--live"):
            pass
        elif a.startswith("-"):
            err("fake xl: unsupported migrate option %s" % a)
            return 2
        else:
            rest.append(a)
        i += 1
    if len(rest) != 2:
        err("'xl migrate' requires at least 2 arguments.\n")  # from xl's help path
        return 2
    name, host = rest
    with Locked():
        dom = find_local(name)
    if dom is None:
        return invalid(name)
    rune = host if ssh_command == "" else "exec %s %s xl migrate-receive" % (ssh_command, host)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    child = subprocess.Popen(["sh", "-c", rune], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    send_fd, recv_fd = child.stdin.fileno(), child.stdout.fileno()

    def fail_before_suspend():
        child.stdin.close()
        child_report(child)
        return 1

    banner = read_exactly(recv_fd, len(BANNER))
    if banner is None:
        truncated("migration receiver stream", "banner")
        return fail_before_suspend()
    if banner != BANNER:
        err("migration receiver stream contained unexpected data instead of banner")
        err("(command run was: %s )" % rune)
        return fail_before_suspend()
    err("Saving to migration stream new xl format %s" % SAVE_INFO)
    record = dict(dom)
    record["source"] = HOST
    try:
        os.write(send_fd, json.dumps(record).encode() + b"\n")
    except OSError:
        pass
    err("xc: info: Saving domain %d, type x86 HVM" % dom["domid"])
    # the memory copy: its duration scales with the domain's memory
    time.sleep(dom["memory"] / float(CFG["migration_mb_per_s"]))
    try:
        os.write(send_fd, b"END\n")
    except OSError:
        pass

    def failed_resume():
        child.stdin.close()
        child_report(child)
        err("Migration failed, resuming at sender.")
        with Locked():
            if read_dom(name + "--migratedaway") is not None:
                rename_dom(name + "--migratedaway", name)
        return 1

    ready = read_exactly(recv_fd, len(READY))
    if ready is None:
        truncated("migration receiver stream", "ready message")
        return failed_resume()
    if ready != READY:
        err("migration receiver stream contained unexpected data instead of ready message")
        err("(command run was: %s )" % rune)
        return failed_resume()
    err("migration sender: Target has acknowledged transfer.")
    with Locked():
        rename_dom(name, name + "--migratedaway")
    err("migration sender: Giving target permission to start.")
    try:
        os.write(send_fd, GO)
        report = read_exactly(recv_fd, len(REPORT))
        status = read_exactly(recv_fd, 1) if report == REPORT else None
    except OSError:
        report = status = None
    if report != REPORT or status is None:
        err("** Migration failed during final handshake **\n"
            "Domain state is now undefined !\n"
            "Please CHECK AT BOTH ENDS for running instances, before renaming and\n"
            " resuming at most one instance.  Two simultaneous instances of the domain\n"
            " would probably result in SEVERE DATA LOSS and it is now your\n"
            " responsibility to avoid that.  Sorry.")
        child.stdin.close()
        child_report(child)
        return 1
    if status != b"\0":
        err("migration sender: Target reports startup failure (status code %d)." % status[0])
        err("migration sender: Trying to resume at our end.")
        with Locked():
            rename_dom(name + "--migratedaway", name)
        err("migration sender: Resumed OK.")
        err("Migration failed due to problems at target.")
        child.stdin.close()
        child_report(child)
        return 1
    err("migration sender: Target reports successful startup.")
    with Locked():
        remove_dom(name + "--migratedaway")
    err("Migration successful.")
    child.stdin.close()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0


def cmd_migrate_receive(args):
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    rfd, wfd = 0, 1
    err("migration target: Ready to receive domain.")
    os.write(wfd, BANNER)
    line = read_line(rfd)
    if line is None:
        truncated("migration stream", "header")
        return 1
    try:
        record = json.loads(line.decode())
    except ValueError:
        err("migration target: Domain creation failed (code -3).")
        return 1
    err("Loading new save file <incoming migration stream> %s" % LOAD_INFO)
    err(" Savefile contains xl domain config in JSON format")
    err("Parsing config from <saved>")
    err("xc: info: Found x86 HVM domain from Xen 4.17")
    err("xc: info: Restoring domain")
    name = record["name"]
    incoming = name + "--incoming"
    with Locked():
        if record["memory"] + 2 > free_memory():
            err("migration target: Domain creation failed (code -3).")  # unsampled
            return 1
        dom = {"name": incoming, "domid": next_domid(), "host": HOST, "memory": record["memory"],
               "vcpus": record["vcpus"], "state": "paused", "config": record.get("config"),
               "created": record.get("created", time.time()), "cpu_base": cpu_seconds(record),
               "load": record.get("load", 0.0), "load_since": time.time()}
        write_dom(dom)

    def abandon(what):
        truncated("migration stream", what)
        with Locked():
            remove_dom(incoming)
        return 1

    if read_line(rfd) != b"END\n":
        return abandon("domain data")
    err("xc: info: Restore successful")
    err("xc: info: XenStore: mfn 0xfeffc, dom 0, evt 1")
    err("xc: info: Console: mfn 0xfefff, dom 0, evt 2")
    err("migration target: Transfer complete, requesting permission to start domain.")
    try:
        os.write(wfd, READY)
    except OSError:
        with Locked():
            remove_dom(incoming)
        return 1
    if read_exactly(rfd, len(GO)) != GO:
        return abandon("GO message")
    err("migration target: Got permission, starting domain.")
    with Locked():
        dom = rename_dom(incoming, name)
        if dom is not None:
            dom["state"] = "running"
            write_dom(dom)
    err("migration target: Domain started successsfully.")  # sic: xl's spelling
    try:
        os.write(wfd, REPORT + b"\0")
    except OSError:
        return 1
    return 0


# -- xentop --------------------------------------------------------------------------------
def top_flags(dom):
    """``xentop`` order: d s b c p r (differs from ``xl list``)."""
    state = dom.get("state", "running")
    flags = ["-"] * 6
    if state == "dying":
        flags[0] = "d"
    elif state == "shutdown":
        flags[1] = "s"
    elif state == "crashed":
        flags[3] = "c"
    elif state == "paused":
        flags[4] = "p"
    elif dom.get("dom0") or dom.get("load", 0.0) >= 1.0:
        flags[5] = "r"
    elif dom.get("first"):
        flags[2] = "b"
    return "".join(flags)


def top_line(dom, pct):
    total_k = CFG["total_memory"] * 1024
    if dom.get("dom0"):
        mem_k = maxmem_k = dom["memory"] * 1024
    else:
        mem_k, maxmem_k = dom["memory"] * 1024 + 64, (dom["memory"] + 1) * 1024
    return ("%10s %s %10d %6.1f %10d %6.1f %10d %9.1f %5d %4d %8d %8d %4d %8d %8d %8d %10d %10d %4d"
            % (dom["name"], top_flags(dom), int(cpu_seconds(dom)), pct, mem_k, 100.0 * mem_k / total_k,
               maxmem_k, 100.0 * maxmem_k / total_k, dom["vcpus"], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))


def cmd_xentop(args):
    batch, delay, iterations = False, 3.0, None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-b", "--batch"):
            batch = True
        elif a in ("-d", "--delay") and i + 1 < len(args):
            delay = float(args[i + 1])
            i += 1
        elif a in ("-i", "--iterations") and i + 1 < len(args):
            iterations = int(args[i + 1])
            i += 1
        elif a.startswith("-d") and len(a) > 2:
            delay = float(a[2:])
        elif a.startswith("-i") and len(a) > 2:
            iterations = int(a[2:])
        i += 1
    if not batch:
        err("fake xentop: only batch mode (-b) is supported")
        return 2
    n = 0
    while iterations is None or n < iterations:
        if n:
            time.sleep(delay)
        with Locked():
            doms = [dom0()] + host_doms()
        doms.sort(key=lambda d: d["name"].lower())
        lines = [XENTOP_HEADER]
        for dom in doms:
            if n == 0:
                dom["first"] = True
            pct = 0.0 if n == 0 else min(dom.get("load", 0.0), 100.0 * dom["vcpus"])
            if dom.get("state") == "paused":
                pct = 0.0
            lines.append(top_line(dom, pct))
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        n += 1
    return 0


# -- test-bed-only extensions ---------------------------------------------------------------
def cmd_set_load(args):
    if len(args) != 2:
        err("usage: xl tune-set-load DOMAIN PERCENT   (test-bed-only extension)")
        return 2
    try:
        pct = float(args[1])
    except ValueError:
        err("tune-set-load: bad percentage %r" % args[1])
        return 2
    with Locked():
        dom = find_local(args[0])
        if dom is None:
            return invalid(args[0])
        set_load(dom, pct)
        write_dom(dom)
    return 0


def cmd_dump(args):
    with Locked():
        sys.stdout.write(json.dumps(all_doms(), indent=1, sort_keys=True) + "\n")
    return 0


COMMANDS = {
    "list": cmd_list, "create": cmd_create, "shutdown": cmd_shutdown, "destroy": cmd_destroy,
    "pause": lambda a: cmd_pause(a, True), "unpause": lambda a: cmd_pause(a, False),
    "info": cmd_info, "migrate": cmd_migrate, "migrate-receive": cmd_migrate_receive,
    "tune-set-load": cmd_set_load, "tune-dump": cmd_dump,
}


def main(argv):
    prog = os.path.basename(argv[0])
    if prog == "xentop":
        return cmd_xentop(argv[1:])
    args = argv[1:]
    while args and args[0] in ("-v", "-N", "-f", "-t"):  # global xl options
        args = args[1:]
    if not args:
        err("Usage xl [-vfNtT] <subcommand> [args]")
        return 1
    fn = COMMANDS.get(args[0])
    if fn is None:
        err("command not implemented")
        return 1
    return fn(args[1:])


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
