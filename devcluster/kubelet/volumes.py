"""A pod's volumes on the kubelet: each pod volume is a directory on this machine.

A PersistentVolumeClaim's volume is ``<state_dir>/volumes/<pv name>`` and
persists across pods (the kubelet waits until the claim is bound); emptyDir
(mode 0777, as the kubelet makes it), configMap, secret and projected volumes
are per-pod directories (so is a hostPath: pods never get this machine's own
directories), their keys written as files (``items`` pick and rename
keys; ``defaultMode``/``mode`` set the files' modes). As the kubelet does, a
pod waits (``FailedMount``) until the ConfigMaps and Secrets its volumes name
exist, unless they are ``optional``. With a pod
``securityContext.fsGroup`` every volume but a hostPath gets the group, group
read/write (read for configMap and secret volumes) and setgid directories, as
the kubelet's volume ownership does (``fsGroupChangePolicy: OnRootMismatch``
skips a volume whose root is already right). A container's ``volumeMounts``
(with ``subPath``, which may name a file, e.g. one key of a ConfigMap) map its
mount paths to those directories and files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devcluster.errors import ApiError
from devcluster.kubelet import podspec
from devcluster.kubelet.identity import Identity
from devcluster.kubelet.pod import PodRun
from devcluster.tokens import DEFAULT_ISSUER, TokenIssuer

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


_SOURCES = (("configmaps", "configMap"), ("secrets", "secret"))


def _write_keys(
    run: PodRun, target: Path, source: Mapping[str, Any], plural: str, mode: int
) -> None:
    """Write a ConfigMap's or Secret's keys (or its ``items``) as files."""
    ref = source.get("name") or source.get("secretName", "")
    obj = run.store.get_or_none(plural, run.namespace, str(ref)) or {}
    data = dict(obj.get("data") or {})
    if plural == "configmaps":
        data.update(obj.get("binaryData") or {})
    items = source.get("items")
    chosen = (
        [(i["key"], i["path"], i.get("mode")) for i in items if i.get("key") in data]
        if items
        else [(key, key, None) for key in data]
    )
    target.mkdir(parents=True, exist_ok=True)
    for key, rel, item_mode in chosen:
        value = data[key]
        binary = plural == "secrets" or key in (obj.get("binaryData") or {})
        raw = base64.b64decode(value) if binary else str(value).encode()
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        path.chmod(int(item_mode if item_mode is not None else mode))


ROOT_CA = "kube-root-ca.crt"


def _missing_sources(run: PodRun, volume: Mapping[str, Any]) -> list[str]:
    """Name the ConfigMaps and Secrets a volume needs that do not exist.

    ``optional`` ones may be missing; so may ``kube-root-ca.crt``, which
    devcluster does not publish (``_fill`` writes the CA itself).
    """
    sources = [(plural, volume[field]) for plural, field in _SOURCES if field in volume]
    for source in (volume.get("projected") or {}).get("sources") or []:
        sources += [(p, source[field]) for p, field in _SOURCES if field in source]
    missing = []
    for plural, source in sources:
        ref = str(source.get("name") or source.get("secretName", ""))
        if source.get("optional") or (plural == "configmaps" and ref == ROOT_CA):
            continue
        if run.store.get_or_none(plural, run.namespace, ref) is None:
            kind = "secret" if plural == "secrets" else "configmap"
            missing.append(f'{kind} "{ref}" not found')
    return missing


async def _wait_sources(run: PodRun, volume: Mapping[str, Any]) -> bool:
    """Wait until a volume's ConfigMaps and Secrets exist (False: the pod went).

    As the kubelet, which retries ``MountVolume.SetUp`` and keeps the pod in
    ContainerCreating: KubeSpawner creates a server's internal-SSL Secret
    after its pod (the Secret's owner), and the pod starts once it is there.
    """
    warned = False
    while not run.terminate.is_set():
        missing = _missing_sources(run, volume)
        if not missing:
            return True
        pod = run.current()
        if not warned and pod is not None:
            warned = True
            run.event(
                pod,
                "FailedMount",
                f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
                f"{missing[0]}",
                "Warning",
            )
        await asyncio.sleep(_POLL_S)
    return False


def _fill(
    run: PodRun,
    volume: Mapping[str, Any],
    path: Path,
    ca_pem: str = "",
    issuer: TokenIssuer | None = None,
) -> None:
    """Write the files of a configMap, secret or projected volume."""
    for plural, field in _SOURCES:
        if field in volume:
            source = volume[field]
            _write_keys(
                run, path, source, plural, int(source.get("defaultMode", 0o644))
            )
    projected = volume.get("projected")
    if projected:
        mode = int(projected.get("defaultMode", 0o644))
        for source in projected.get("sources") or []:
            for plural, field in _SOURCES:
                if field in source:
                    _write_keys(run, path, source[field], plural, mode)
            if (source.get("configMap") or {}).get("name") == ROOT_CA and ca_pem:
                # devcluster publishes no kube-root-ca.crt ConfigMaps (objects
                # no test or client lists); the volume holds the CA all the same
                for item in source["configMap"].get("items") or [{"path": "ca.crt"}]:
                    if not (path / item["path"]).exists():
                        _write_file(path / item["path"], ca_pem, mode)
            if "serviceAccountToken" in source:
                projection = source["serviceAccountToken"]
                _write_file(
                    path / projection.get("path", "token"),
                    _token(run, projection, issuer),
                    mode,
                )
            for item in (source.get("downwardAPI") or {}).get("items") or []:
                _write_file(path / item["path"], _field(run, item), mode)


def _write_file(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _token(
    run: PodRun, projection: Mapping[str, Any], issuer: TokenIssuer | None
) -> str:
    """A projected ServiceAccount token: a JWT signed by the cluster's issuer.

    ``aud`` is the projection's ``audience`` (default: the issuer, as the
    apiserver's API audience), ``exp`` its ``expirationSeconds`` (default
    3600) from now. devcluster's API authenticates nobody (any token works);
    the signature matters to those who verify tokens against the issuer's
    JWKS, e.g. STS for ``AssumeRoleWithWebIdentity``. Without an issuer the
    token is unsigned (``alg: none``), shaped the same.
    """
    pod = run.current() or {}
    account = (pod.get("spec") or {}).get("serviceAccountName", "default")
    subject = f"system:serviceaccount:{run.namespace}:{account}"
    expiration = int(projection.get("expirationSeconds") or 3600)
    if issuer is not None:
        audience = str(projection.get("audience") or issuer.issuer)
        bound = {
            "namespace": run.namespace,
            "pod": {"name": run.name, "uid": run.uid},
            "serviceaccount": {"name": account},
        }
        return issuer.token(subject, [audience], expiration, bound)
    claims = {
        "iss": DEFAULT_ISSUER,
        "sub": subject,
        "aud": [str(projection.get("audience") or DEFAULT_ISSUER)],
    }
    parts = [{"alg": "none", "typ": "JWT"}, claims]
    return (
        ".".join(
            base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=")
            for p in parts
        )
        + "."
    )


def _field(run: PodRun, item: Mapping[str, Any]) -> str:
    """A downwardAPI item: a field of the pod (namespace, name, uid, labels...)."""
    pod = run.current() or {}
    path = str((item.get("fieldRef") or {}).get("fieldPath", ""))
    meta = pod.get("metadata") or {}
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".", 1)[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    simple = {
        "metadata.namespace": run.namespace,
        "metadata.name": run.name,
        "metadata.uid": run.uid,
    }
    return str(simple.get(path, ""))


async def volumes(
    run: PodRun,
    pod: dict[str, Any],
    volume_root: Path,
    ca_pem: str = "",
    issuer: TokenIssuer | None = None,
) -> dict[str, Path] | None:
    """Return the host directory of every pod volume (None if the pod went away).

    Args:
        run: the pod's run record.
        pod: the pod.
        volume_root: where PersistentVolume directories live.
        ca_pem: the cluster CA, for the ``kube-root-ca.crt`` source of token
            volumes.
        issuer: signs the tokens of ``serviceAccountToken`` sources.
    """
    dirs: dict[str, Path] = {}
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    fs_group = pod_sc.get("fsGroup")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            pv = await _wait_pvc(run, volume["persistentVolumeClaim"]["claimName"])
            if pv is None:
                return None
            path = volume_root / pv
            path.mkdir(parents=True, exist_ok=True)
        else:
            if not await _wait_sources(run, volume):
                return None
            # hostPath too: pods do not get this machine's own directories
            path = run.pod_dir / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                path.chmod(0o777)
            _fill(run, volume, path, ca_pem, issuer)
        if fs_group is not None and "hostPath" not in volume:
            read_only = any(k in volume for k in ("configMap", "secret", "projected"))
            policy = pod_sc.get("fsGroupChangePolicy") or "Always"
            await asyncio.to_thread(
                set_ownership, path, int(fs_group), read_only, policy
            )
        dirs[name] = path
    return dirs


def set_ownership(path: Path, gid: int, read_only: bool, policy: str) -> None:
    """Give a volume to ``fsGroup``: group, group permissions, setgid directories.

    As the kubelet's ``SetVolumeOwnership``: every file gets the group, group
    read (and write unless the volume is read-only), directories also group
    execute and setgid so new files inherit the group.
    """
    mask = 0o440 if read_only else 0o660
    root = path.stat()
    if (
        policy == "OnRootMismatch"
        and root.st_gid == gid
        and stat.S_IMODE(root.st_mode) & (mask | 0o110 | stat.S_ISGID)
        == (mask | 0o110 | stat.S_ISGID)
    ):
        return
    for directory, _subdirs, files in os.walk(path):
        for entry in [directory, *(os.path.join(directory, f) for f in files)]:
            try:
                st = os.lstat(entry)
                if stat.S_ISLNK(st.st_mode):
                    continue
                os.chown(entry, -1, gid)
                extra = mask | (0o110 | stat.S_ISGID if stat.S_ISDIR(st.st_mode) else 0)
                os.chmod(entry, stat.S_IMODE(st.st_mode) | extra)
            except OSError:
                continue


def mounts(container: dict[str, Any], dirs: dict[str, Path]) -> dict[str, str]:
    """Return ``{mount path: host path}`` of a container.

    A ``subPath`` names a file or directory inside the volume; a missing one is
    made as a directory, as the kubelet does.
    """
    found: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        base = dirs.get(mount.get("name", ""))
        if base is None:
            continue
        sub = mount.get("subPath") or ""
        path = base / sub if sub else base
        if sub and ".." in Path(sub).parts:
            raise ValueError(f"subPath {sub!r} must not contain '..'")
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                # a new subPath directory takes its volume's group and mode
                st = base.stat()
                os.chown(path, -1, st.st_gid)
                path.chmod(stat.S_IMODE(st.st_mode))
        found[mount["mountPath"]] = str(path)
    return found


def home_dir(
    env: dict[str, str],
    mounted: dict[str, str],
    run: PodRun,
    identity: Identity | None = None,
) -> str:
    """Return the host directory a container's ``$HOME`` maps to (made if missing).

    ``HOME`` under a mount maps into the volume; otherwise the first mount under
    ``/home/``, else a per-pod directory (owned by the container's user).
    """
    if env.get("HOME") and (mapped := podspec.map_path(env["HOME"], mounted)):
        return mapped
    for mount_path, host in mounted.items():
        if mount_path.startswith("/home/"):
            return host
    home = run.pod_dir / "home"
    if not home.exists():
        home.mkdir(parents=True, exist_ok=True)
        if identity is not None and identity.uid != os.geteuid():
            os.chown(home, identity.uid, identity.gid)
    return str(home)
