"""Wrapper classes of the tutorial's web tier.  Everything runs through the node's executor
(quoted argument lists), so the same code works on local, simulated and SSH nodes."""

from __future__ import annotations

import shlex
from typing import Any, Union

from tune.errors import TuneError
from tune.remote.base import Shell

WAIT_FOR_PORT = (
    "import socket, sys, time\n"
    "for _ in range(100):\n"
    "    try:\n"
    "        socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close(); sys.exit(0)\n"
    "    except OSError:\n"
    "        time.sleep(0.05)\n"
    "sys.exit(1)\n")


def _index(name: str) -> int:
    digits = name[len(name.rstrip("0123456789")):]
    return int(digits) if digits else 0


class WebServer:
    """A static web server (python3 -m http.server) watched by a small shell watchdog."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def start(self, name: str, dirlocal: str, base_port: str) -> None:
        port = int(base_port) + _index(name)
        ex = self.ctx.executor
        q = shlex.quote
        # the watchdog is the server's parent: it reaps it and, unless we stop it on purpose,
        # reports its death through the node pipe
        watchdog = (f"python3 -m http.server {port} --bind 127.0.0.1 --directory site >web.log 2>&1 & "
                    f"echo $! >web.pid; wait $!; [ -e stopping ] || printf 'web-down;%s\\n' {q(name)} >tune.pipe")
        ex.run(Shell(f"cd {q(ex.path(dirlocal))} && rm -f stopping && "
                     f"nohup sh -c {q(watchdog)} >/dev/null 2>&1 &"))
        if not ex.run(["python3", "-c", WAIT_FOR_PORT, str(port)], check=False).ok:
            raise TuneError(f"{name}: the web server did not answer on port {port}")
        self.ctx.sr.set_attribute(name, "port", str(port))

    def stop(self, dirlocal: str) -> None:
        ex = self.ctx.executor
        d = shlex.quote(ex.path(dirlocal))
        ex.run(Shell(f"cd {d} && touch stopping && if [ -e web.pid ]; then kill $(cat web.pid) 2>/dev/null; "
                     f"rm -f web.pid; fi; true"))


class Balancer:
    """Keeps the upstream list of a load balancer (an nginx-style upstreams.conf)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def configure(self, dirlocal: str, names: Union[str, list, None], ports: Union[str, list, None]) -> None:
        names = names if isinstance(names, list) else [names] if names else []
        ports = ports if isinstance(ports, list) else [ports] if ports else []
        lines = [f"server 127.0.0.1:{p};  # {n}" for n, p in zip(names, ports) if p]
        ex = self.ctx.executor
        path = ex.path(dirlocal.rstrip("/") + "/upstreams.conf")
        ex.run(["sh", "-c", 'cat > "$1"', "sh", path], input="\n".join(lines) + "\n")
