"""A container as a local process: its env, command line, log file, and its end.

What a container runtime does for devcluster's kubelet: the first container's
``command + args`` (with ``$(VAR)`` expanded, container paths and ``0.0.0.0``
rewritten, see ``devcluster.kubelet.podspec``) starts as a process in its own
session, in its working directory, with the container env on top of a small base
env and its output appended to the container log. Stopping signals the process
group: SIGTERM, the grace period, then SIGKILL. In ``sim`` mode, and for
containers with neither command nor args (e.g. ``pause`` placeholders), nothing
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from devcluster.kubelet import podspec
from devcluster.kubelet.pod import PodRun
from devcluster.kubelet.volumes import home_dir, mounts

SIM_ANNOTATION = "devcluster.io/kubelet-mode"
"""Pod annotation overriding ``config.kubelet_mode`` for one pod (run|sim)."""


def mode_of(pod: dict[str, Any], default: str) -> str:
    """Return ``run`` or ``sim`` for a pod (its annotation, else ``default``)."""
    annotations = pod["metadata"].get("annotations") or {}
    return str(annotations.get(SIM_ANNOTATION) or default)


def base_env(run: PodRun, home: str) -> dict[str, str]:
    """Return the environment every pod process starts from."""
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )
    tmp = run.pod_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": path,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": home,
        "TMPDIR": str(tmp),
        "HOSTNAME": run.name,
        "DEVCLUSTER_POD_IP": run.ip,
        "PYTHONUNBUFFERED": "1",
    }


async def spawn(
    run: PodRun, pod: dict[str, Any], dirs: dict[str, Path], default_mode: str
) -> tuple[list[str], asyncio.subprocess.Process | None, int | None]:
    """Start the first container; return (argv, process or None, readiness port).

    The port is -1 when the command could not be started.
    """
    container = pod["spec"]["containers"][0]
    mounted = mounts(container, dirs)
    host_ip = run.host_ip()
    env = podspec.container_env(pod, container, run.store.get_or_none, run.ip, host_ip)
    full = base_env(run, home_dir(env, mounted, run))
    full.update({k: podspec.rewrite(v, mounted, run.ip) for k, v in env.items()})
    if "HOME" in env:
        full["HOME"] = home_dir(env, mounted, run)
    argv = [
        podspec.rewrite(podspec.expand(str(a), full), mounted, run.ip)
        for a in (container.get("command") or []) + (container.get("args") or [])
    ]
    port = podspec.readiness_port(container, full)
    log_path = run.log_paths[container["name"]]
    if mode_of(pod, default_mode) == "sim" or not argv:
        return argv, None, None
    workdir = (
        podspec.map_path(container.get("workingDir") or "", mounted) or full["HOME"]
    )
    Path(workdir).mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=full,
                cwd=workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            out.write(f"devcluster: cannot start {argv[0]!r}: {exc}\n".encode())
            return argv, None, -1
    return argv, proc, port


async def kill(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, wait ``grace`` seconds, then SIGKILL it."""
    if proc.returncode is not None:
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 5.0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
