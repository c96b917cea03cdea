"""Putting instances on their nodes: working directories, legacy archives, the node pipe.

Every host is worked on in parallel (bounded); one failing host never aborts the others: the
result maps each host to success or to its error, and the instances of a failed host are
marked failed in the System Representation so that it says what really runs.
"""

from __future__ import annotations

import logging
import posixpath
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..components.component import Component, Lifecycle
from ..errors import GroupError
from ..events.pipe import PIPE_NAME, create_pipe_command
from ..remote.base import Executor, Shell, quote_command

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager

log = logging.getLogger(__name__)


class PlanOnly(Executor):
    """The executor ``--dry-run`` hands to the deployment code: it only says what would run."""

    def __init__(self, host: str) -> None:
        super().__init__(host)

    def run(self, *a: Any, **k: Any) -> Any:  # pragma: no cover - a dry run never runs
        raise AssertionError("dry run: nothing is executed")

    def put(self, *a: Any, **k: Any) -> None:  # pragma: no cover
        raise AssertionError("dry run: nothing is copied")

    def stream(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise AssertionError("dry run: nothing is started")


def app_dir(manager: "Manager", node_id: str) -> str:
    """The application's folder on a node: ``{dirlocal}/{application}``."""
    node = manager.sr.node(node_id)
    return posixpath.join(node.dirlocal, manager.app.name)


def instance_dir(manager: "Manager", comp: Component) -> str:
    assert comp.node is not None
    return posixpath.join(app_dir(manager, comp.node), comp.srname)


def deploy_commands(manager: "Manager", ex: Executor, node_id: str, comps: Iterable[Component]) -> list[str]:
    """Prepare one node for ``comps``; returns the commands it ran (for ``--dry-run`` as well).

    A few round trips per node whatever the number of instances: one command makes every folder,
    the node pipe and each instance's link to it; each legacy archive is copied once to the node
    and unpacked into every instance folder that needs it by one more command.
    """
    comps = list(comps)
    base = ex.path(app_dir(manager, node_id))
    pipe = posixpath.join(base, PIPE_NAME)
    dirs = [ex.path(c.dir_local) for c in comps]
    parts = [quote_command(["mkdir", "-p", "-m", "0750", base]), create_pipe_command(pipe).line]
    if dirs:
        parts.append(quote_command(["mkdir", "-p", *dirs]))
        parts += [f"ln -sfn ../{PIPE_NAME} {quote_command([posixpath.join(d, PIPE_NAME)])}" for d in dirs]
    prepare = Shell(" && ".join(parts))
    done = [prepare.line]
    if not manager.dry_run:
        ex.run(prepare)
    by_archive: dict[str, list[str]] = {}
    for comp, d in zip(comps, dirs):
        archive = manager.app.resolve(manager.app.components[comp.type].legacy_file)
        if archive:
            by_archive.setdefault(archive, []).append(d)
    for archive, targets in by_archive.items():
        remote = posixpath.join(base, ".legacy-" + posixpath.basename(archive))
        unzip = archive.endswith(".zip")
        unpack = [quote_command(["unzip", "-o", "-q", remote, "-d", d] if unzip else ["tar", "-x", "-f", remote, "-C", d])
                  for d in targets]
        line = " && ".join(unpack + [quote_command(["rm", "-f", remote])])
        done += [f"put {archive} -> {remote}", line]
        if not manager.dry_run:
            ex.put(archive, remote)
            ex.run(Shell(line))
    return done


def deploy(manager: "Manager", comps: list[Component]) -> Mapping[str, Any]:
    """Deploy ``comps`` host by host in parallel; returns host → commands run or the error."""
    from ..remote.group import run_on_hosts

    by_node: dict[str, list[Component]] = {}
    for c in comps:
        if c.node is not None:
            by_node.setdefault(c.node, []).append(c)
    executors = {node_id: manager.executor(node_id) for node_id in by_node}
    for node_id, cs in by_node.items():
        for c in cs:
            manager.notify("deploy.start", instance=c.srname, node=node_id)

    def work(ex: Executor) -> list[str]:
        node_id = next(n for n, e in executors.items() if e is ex)
        return deploy_commands(manager, ex, node_id, by_node[node_id])

    results = run_on_hosts(executors, work, max_workers=manager.max_parallel)
    failed: dict[str, BaseException] = {}
    for node_id, res in results.items():
        if isinstance(res, BaseException):
            failed[node_id] = res
            for c in by_node[node_id]:
                manager.sr.set_state(c.srname, Lifecycle.FAILED, error=f"deployment failed: {res}")
            manager.notify("deploy.failed", node=node_id, error=str(res))
        else:
            manager.notify("deploy.host", node=node_id, instances=[c.srname for c in by_node[node_id]])
    if failed:
        raise GroupError(f"deployment failed on {len(failed)} of {len(results)} host(s)", dict(results))
    return dict(results)


def undeploy_instance(manager: "Manager", comp: Component) -> None:
    if comp.node is None or manager.dry_run:
        return
    ex = manager.executor(comp.node)
    ex.run(["rm", "-rf", "--", ex.path(comp.dir_local)], timeout=60)


def clean_nodes(manager: "Manager", node_ids: Iterable[str]) -> Mapping[str, Any]:
    """Remove the application's folder (pipe included) from each node, in parallel."""
    from ..remote.group import run_on_hosts

    executors = {n: manager.executor(n) for n in node_ids}
    if manager.dry_run or not executors:
        return {}

    def work(ex: Executor) -> None:
        node_id = next(n for n, e in executors.items() if e is ex)
        ex.run(["rm", "-rf", "--", ex.path(app_dir(manager, node_id))], timeout=60)

    return dict(run_on_hosts(executors, work, max_workers=manager.max_parallel))
