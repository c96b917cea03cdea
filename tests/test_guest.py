"""The test guest: built from Debian packages, cached, and its stream checker."""

from __future__ import annotations

import doctest
import gzip
import os
import shutil
import subprocess
import time

import pytest

import tune.testbed.guest as guest_mod
from test_qemu_fixtures import guest  # noqa: F401 - fixture
from tune.testbed.guest import VIRTIO_NET_MODULES, Guest, StreamClient, build_guest


def _newc_names(data: bytes) -> list[tuple[str, int]]:
    """(name, mode) of every entry of a newc archive."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += (4 - pos % 4) % 4
        pos += size
        pos += (4 - pos % 4) % 4
        if name == "TRAILER!!!":
            return out
        out.append((name, mode))


def test_doctests():
    assert doctest.testmod(guest_mod).failed == 0


def test_cmdline_options():
    g = Guest("/k", "/i")
    line = g.cmdline("10.0.0.5/24", gateway="10.0.0.1", burn=True, stream_port=9000, control_port=9001)
    assert line.split()[3:] == ["guestip=10.0.0.5/24", "gw=10.0.0.1", "burn=1", "streamport=9000",
                                "ctlport=9001"]


def test_build_is_cached_and_complete(guest: Guest):  # noqa: F811
    assert os.path.getsize(guest.kernel) > 1_000_000
    t = time.monotonic()
    again = build_guest(os.path.dirname(guest.kernel))
    assert again == guest and time.monotonic() - t < 2
    with open(guest.initrd, "rb") as fh:
        entries = dict(_newc_names(gzip.decompress(fh.read())))
    for m in VIRTIO_NET_MODULES + ("evdev", "button"):
        assert f"lib/modules/{m}.ko" in entries
    for path in ("init", "bin/busybox", "bin/tune-stream", "bin/tune-ctl", "bin/tune-burn", "bin/tune-dirty"):
        assert entries[path] & 0o111, path
    assert entries["dev/console"] & 0o170000 == 0o020000
    # the init script loads the modules in TESTBED.md's order
    with open(os.path.join(os.path.dirname(guest_mod.__file__), "guest", "init.sh")) as fh:
        assert " ".join(VIRTIO_NET_MODULES) in fh.read()


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
def test_initrd_reads_with_cpio(guest: Guest):  # noqa: F811
    with open(guest.initrd, "rb") as fh:
        data = gzip.decompress(fh.read())
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=data, capture_output=True, check=True).stdout
    assert b"lib/modules/virtio_net.ko" in listing and b"init" in listing


def test_initrd_rebuilt_when_missing(guest: Guest, tmp_path):  # noqa: F811
    out = tmp_path / "g"
    out.mkdir()
    d = os.path.dirname(guest.kernel)
    shutil.copy(guest.kernel, out)
    shutil.copytree(os.path.join(d, "modules"), out / "modules")
    built = build_guest(str(out))  # kernel and modules found: only the initramfs is written
    assert os.path.basename(built.initrd) == os.path.basename(guest.initrd)
    with open(built.initrd, "rb") as a, open(guest.initrd, "rb") as b:
        assert gzip.decompress(a.read()) == gzip.decompress(b.read())


def test_stream_report_finds_gaps_and_repeats():
    c = StreamClient.__new__(StreamClient)
    c._lines = [(0.0, 0), (0.01, 1), (0.02, 1), (0.03, 4), (0.04, 5)]
    c._error = None
    r = c.report()
    assert (r.received, r.first, r.last, r.gaps, r.repeats) == (5, 0, 5, [(2, 4)], 1)
    assert not r.continuous
    c._lines = [(0.0, 7), (0.01, 8)]
    assert c.report().continuous


def test_module_entry_point(guest: Guest, capsys):  # noqa: F811
    assert guest_mod.main([os.path.dirname(guest.kernel)]) == 0
    assert capsys.readouterr().out.split() == ["kernel", guest.kernel, "initrd", guest.initrd]


def test_console_errors():
    from tune.testbed.guest import console_errors
    ok = "GUEST-UP ip=10.0.0.5/24 dirty= burn= uptime=2.1\nGUEST-POWEROFF\n[ 2.5] reboot: Power down\n"
    assert console_errors(ok) == []
    bad = ok + "[ 39.0] virtio_net virtio0: output.0:id 4 is not a head!\n[ 44.0] BUG: Bad page state in process cat\n"
    assert len(console_errors(bad)) == 2
