"""A pod's volumes on the kubelet: each pod volume is a directory on this machine.

A PersistentVolumeClaim's volume is ``<state_dir>/volumes/<pv name>`` and
persists across pods (the kubelet waits until the claim is bound); emptyDir,
configMap and secret volumes are per-pod directories (configMap and secret keys
written as files). A container's ``volumeMounts`` (with ``subPath``) map its
mount paths to those directories.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path
from typing import Any

from devcluster.errors import ApiError
from devcluster.kubelet import podspec
from devcluster.kubelet.pod import PodRun

_POLL_S = 0.05


async def _wait_pvc(run: PodRun, claim: str) -> str | None:
    """Wait until a PVC is bound; return its PV name (None if the pod went away)."""
    warned = False
    while not run.terminate.is_set():
        with contextlib.suppress(ApiError):
            pvc = run.store.get("persistentvolumeclaims", run.namespace, claim)
            volume = (pvc.get("spec") or {}).get("volumeName")
            if volume and (pvc.get("status") or {}).get("phase") == "Bound":
                return str(volume)
        if not warned:
            warned = True
            pod = run.current()
            if pod is not None:
                run.event(
                    pod,
                    "FailedMount",
                    f"Unable to attach or mount volumes: unmounted volumes=[{claim}], "
                    "unattached volumes=[], failed to process volumes=[]: timed out "
                    "waiting for the condition",
                    "Warning",
                )
        await asyncio.sleep(_POLL_S)
    return None


def _write_keys(target: Path, data: dict[str, str], secret: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        raw = base64.b64decode(value) if secret else str(value).encode()
        (target / key).write_bytes(raw)


async def volumes(
    run: PodRun, pod: dict[str, Any], volume_root: Path
) -> dict[str, Path] | None:
    """Return the host directory of every pod volume (None if the pod went away).

    Args:
        run: the pod's run record.
        pod: the pod.
        volume_root: where PersistentVolume directories live.
    """
    dirs: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            pv = await _wait_pvc(run, volume["persistentVolumeClaim"]["claimName"])
            if pv is None:
                return None
            path = volume_root / pv
        else:
            path = run.pod_dir / "volumes" / name
            for plural, field in (("configmaps", "configMap"), ("secrets", "secret")):
                if field in volume:
                    ref = volume[field].get("name") or volume[field].get(
                        "secretName", ""
                    )
                    with contextlib.suppress(ApiError):
                        obj = run.store.get(plural, run.namespace, ref)
                        _write_keys(path, obj.get("data") or {}, plural == "secrets")
        path.mkdir(parents=True, exist_ok=True)
        dirs[name] = path
    return dirs


def mounts(container: dict[str, Any], dirs: dict[str, Path]) -> dict[str, str]:
    """Return ``{mount path: host directory}`` of a container (made if missing)."""
    found: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        base = dirs.get(mount.get("name", ""))
        if base is None:
            continue
        path = base / mount["subPath"] if mount.get("subPath") else base
        path.mkdir(parents=True, exist_ok=True)
        found[mount["mountPath"]] = str(path)
    return found


def home_dir(env: dict[str, str], mounted: dict[str, str], run: PodRun) -> str:
    """Return the host directory a container's ``$HOME`` maps to (made if missing).

    ``HOME`` under a mount maps into the volume; otherwise the first mount under
    ``/home/``, else a per-pod directory.
    """
    if env.get("HOME") and (mapped := podspec.map_path(env["HOME"], mounted)):
        return mapped
    for mount_path, host in mounted.items():
        if mount_path.startswith("/home/"):
            return host
    home = run.pod_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return str(home)
