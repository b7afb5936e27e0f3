"""A pod's sandbox on the kubelet: volume directories, image pulls, the process.

What a container runtime would do for devcluster's kubelet: map each pod volume
to a host directory (a PVC's to ``<state_dir>/volumes/<pv name>``, persistent;
emptyDir, configMap and secret volumes to per-pod directories), pull images
(a delay cached per node and image) and start the first container's command as
a process in its own session, with its output appended to the container log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.errors import ApiError
from devcluster.kubelet import podspec

if TYPE_CHECKING:
    from devcluster.kubelet.kubelet import Kubelet, PodRun

_POLL_S = 0.05


async def _wait_pvc(kubelet: Kubelet, run: PodRun, claim: str) -> str | None:
    """Wait until a PVC is bound; return its PV name (None if the pod went away)."""
    warned = False
    while not run.terminate.is_set():
        with contextlib.suppress(ApiError):
            pvc = kubelet.store.get("persistentvolumeclaims", run.namespace, claim)
            volume = (pvc.get("spec") or {}).get("volumeName")
            if volume and (pvc.get("status") or {}).get("phase") == "Bound":
                return str(volume)
        if not warned:
            warned = True
            pod = kubelet.pod_of(run)
            if pod is not None:
                kubelet.store.emit_event(
                    pod,
                    "FailedMount",
                    f"Unable to attach or mount volumes: unmounted volumes=[{claim}], "
                    "unattached volumes=[], failed to process volumes=[]: timed out "
                    "waiting for the condition",
                    "Warning",
                    "kubelet",
                    run.node,
                )
        await asyncio.sleep(_POLL_S)
    return None


def _write_keys(target: Path, data: dict[str, str], secret: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        raw = base64.b64decode(value) if secret else str(value).encode()
        (target / key).write_bytes(raw)


async def volumes(
    kubelet: Kubelet, run: PodRun, pod: dict[str, Any]
) -> dict[str, Path] | None:
    """Return the host directory of every pod volume (None if the pod went away)."""
    dirs: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            pv = await _wait_pvc(
                kubelet, run, volume["persistentVolumeClaim"]["claimName"]
            )
            if pv is None:
                return None
            path = kubelet.volume_dir(pv)
        else:
            path = run.pod_dir / "volumes" / name
            for plural, field in (("configmaps", "configMap"), ("secrets", "secret")):
                if field in volume:
                    ref = volume[field].get("name") or volume[field].get(
                        "secretName", ""
                    )
                    with contextlib.suppress(ApiError):
                        obj = kubelet.store.get(plural, run.namespace, ref)
                        _write_keys(path, obj.get("data") or {}, plural == "secrets")
        path.mkdir(parents=True, exist_ok=True)
        dirs[name] = path
    return dirs


def _mounts(container: dict[str, Any], dirs: dict[str, Path]) -> dict[str, str]:
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        base = dirs.get(mount.get("name", ""))
        if base is None:
            continue
        path = base / mount["subPath"] if mount.get("subPath") else base
        path.mkdir(parents=True, exist_ok=True)
        mounts[mount["mountPath"]] = str(path)
    return mounts


def _home(env: dict[str, str], mounts: dict[str, str], run: PodRun) -> str:
    if env.get("HOME") and (mapped := podspec.map_path(env["HOME"], mounts)):
        return mapped
    for mount_path, host in mounts.items():
        if mount_path.startswith("/home/"):
            return host
    home = run.pod_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return str(home)


async def pull(kubelet: Kubelet, run: PodRun, pod: dict[str, Any]) -> bool:
    """Pull every image (a delay unless cached); False if the pod went away."""
    for container in pod["spec"].get("containers") or []:
        image = container.get("image", "")
        path = f"spec.containers{{{container['name']}}}"
        emit = kubelet.store.emit_event
        if kubelet.image_cached(run.node, image):
            emit(
                pod,
                "Pulled",
                f'Container image "{image}" already present on machine',
                "Normal",
                "kubelet",
                run.node,
                path,
            )
            continue
        emit(
            pod,
            "Pulling",
            f'Pulling image "{image}"',
            "Normal",
            "kubelet",
            run.node,
            path,
        )
        began = time.monotonic()
        delay = kubelet.config.real(kubelet.config.image_pull_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.terminate.wait(), delay)
        if run.terminate.is_set():
            return False
        factor = kubelet.config.time_factor or 1.0
        took = f"{(time.monotonic() - began) / factor:.3f}s"  # in simulated time
        emit(
            pod,
            "Pulled",
            f'Successfully pulled image "{image}" in {took} ({took} '
            "including waiting). Image size: 123456789 bytes.",
            "Normal",
            "kubelet",
            run.node,
            path,
        )
    return True


async def spawn(
    kubelet: Kubelet, run: PodRun, pod: dict[str, Any], dirs: dict[str, Path]
) -> tuple[list[str], asyncio.subprocess.Process | None, int | None]:
    """Start the first container; return (argv, process or None, readiness port)."""
    container = pod["spec"]["containers"][0]
    mounts = _mounts(container, dirs)
    host_ip = kubelet.host_ip(run.node)
    env = podspec.container_env(
        pod, container, kubelet.store.get_or_none, run.ip, host_ip
    )
    full = kubelet.base_env(run, _home(env, mounts, run))
    full.update({k: podspec.rewrite(v, mounts, run.ip) for k, v in env.items()})
    if "HOME" in env:
        full["HOME"] = _home(env, mounts, run)
    argv = [
        podspec.rewrite(podspec.expand(str(a), full), mounts, run.ip)
        for a in (container.get("command") or []) + (container.get("args") or [])
    ]
    port = podspec.readiness_port(container, full)
    log_path = run.log_paths[container["name"]]
    if kubelet.mode_of(pod) == "sim" or not argv:
        return argv, None, None
    workdir = (
        podspec.map_path(container.get("workingDir") or "", mounts) or full["HOME"]
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
