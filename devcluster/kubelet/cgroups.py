"""Per-container cgroups: how the kubelet finds, and kills, every process of a pod.

A real kubelet puts each pod in a cgroup of its own and each container in a
child cgroup, so stopping a container reaches every process it started, however
it detached itself. devcluster does the same on this machine: the kubelet owns
``<hierarchy>/devcluster-<pid>-<n>/`` and a container's processes live in
``<pod uid>/<container>/`` below it. A process joins its cgroup before it
execs (see ``devcluster.kubelet.process``), so children that call ``setsid()``
or double-fork stay in it. The hierarchy is cgroup v2 where it is writable (its
``cgroup.kill`` kills a whole cgroup at once), else a v1 hierarchy (``pids``,
``freezer``), whose processes are killed one by one until none is left.

Where no hierarchy is writable (devcluster does not run as root) ``CgroupTree``
has no root and containers are tracked by their session instead (a log line says
so once): processes that start a session of their own escape then. Directories
go with their pod, and those left by a devcluster that died are swept (their
processes killed) when the next one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PREFIX = "devcluster-"
_V1_HIERARCHIES = ("pids", "freezer", "systemd")
_COUNTER = itertools.count(1)


def _cgroup2_mounts() -> list[Path]:
    found: list[Path] = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                found.append(Path(fields[1]))
    return found


def _candidates() -> list[Path]:
    """Hierarchies to try, best first: cgroup v2, then v1 ``pids`` and friends."""
    v1 = [Path("/sys/fs/cgroup") / name for name in _V1_HIERARCHIES]
    return _cgroup2_mounts() + [p for p in v1 if (p / "cgroup.procs").exists()]


def _usable(hierarchy: Path) -> bool:
    probe = hierarchy / f"{_PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError:
        return False
    return True


class Cgroup:
    """One container's cgroup directory.

    Args:
        path: its directory (made by ``CgroupTree.container``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def procs_file(self) -> str:
        """The file a process writes ``0`` to in order to join this cgroup."""
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        """Return the processes in this cgroup and below it."""
        found: list[int] = []
        for procs in self.path.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(p) for p in procs.read_text().split())
        return found

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (``cgroup.kill`` when there is one)."""
        killer = self.path / "cgroup.kill"
        if killer.exists():
            with contextlib.suppress(OSError):
                killer.write_text("1")
                return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    async def wait_empty(self, timeout: float) -> bool:
        """Wait until no process is left (killed ones leave within moments)."""
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def remove(self) -> bool:
        """Remove the (empty) directories; False if processes are still there."""
        for directory, _subdirs, _files in os.walk(self.path, topdown=False):
            if directory != str(self.path):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


class CgroupTree:
    """The kubelet's cgroup directory, with a cgroup per pod and per container.

    Args:
        root: the kubelet's own directory in a writable hierarchy, or None to
            track containers by session.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @classmethod
    def create(cls) -> CgroupTree:
        """Find a writable hierarchy, sweep stale directories, make our own."""
        for hierarchy in _candidates():
            if not _usable(hierarchy):
                continue
            sweep(hierarchy)
            root = hierarchy / f"{_PREFIX}{os.getpid()}-{next(_COUNTER)}"
            root.mkdir(exist_ok=True)
            log.info("kubelet: pod processes are tracked in cgroup %s", root)
            return cls(root)
        log.warning(
            "kubelet: no writable cgroup hierarchy (devcluster is not root?); pod "
            "processes are tracked by session, so processes that call setsid() "
            "outlive their pod"
        )
        return cls(None)

    def container(self, pod_uid: str, name: str) -> Cgroup | None:
        """Return the cgroup of a pod's container (made if missing), or None."""
        if self.root is None:
            return None
        path = self.root / pod_uid / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("kubelet: cannot make cgroup %s: %s", path, exc)
            return None
        return Cgroup(path)

    def kill_pod(self, pod_uid: str) -> None:
        """SIGKILL whatever is left of a pod's processes."""
        if self.root is not None and (self.root / pod_uid).exists():
            Cgroup(self.root / pod_uid).kill()

    def remove_pod(self, pod_uid: str) -> bool:
        """Remove a pod's cgroups; False while processes remain."""
        if self.root is None:
            return True
        return Cgroup(self.root / pod_uid).remove()

    def close(self) -> None:
        """Kill what is left and remove the kubelet's directory."""
        if self.root is None or not self.root.exists():
            return
        _clear(self.root)


def _clear(root: Path) -> None:
    """Kill every process under ``root`` and remove its directories."""
    group = Cgroup(root)
    for _ in range(100):
        group.kill()
        if group.remove():
            return
        time.sleep(0.01)  # SIGKILLed tasks leave the cgroup within moments
    log.warning("kubelet: cgroup %s still has processes; left in place", root)


def sweep(hierarchy: Path) -> None:
    """Remove directories of devclusters that died, killing their processes."""
    for entry in hierarchy.glob(f"{_PREFIX}*"):
        pid_text = entry.name[len(_PREFIX) :].split("-")[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        log.info("kubelet: sweeping stale cgroup %s", entry)
        _clear(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
