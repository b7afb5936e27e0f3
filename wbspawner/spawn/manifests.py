"""The pieces of a user's pod, as KubeSpawner trait overrides.

This module owns what a size choice turns into on Kubernetes: the node placement
(pool label, zone, tolerations for the pool, spot and GPU taints), the full-node
resources, labels and annotations for the warmer and cost accounting, the
security context (the user's own uid/gid, never root) and the home volume;
and, the other way, what a pod says it was made for (:func:`choice_of_pod`).

Every function is pure and returns a new plain ``dict``: KubeSpawner trait names
at the top level (so the result can be a ``kubespawner_override``) and Kubernetes
camelCase inside raw fragments (tolerations, security contexts, volumes). Nothing
here reads the environment, talks to Kubernetes or mutates its inputs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wbspawner.errors import UserFacingError
from wbspawner.model import (
    CAPACITY_LABEL,
    GPU_RESOURCE,
    LABEL_PREFIX,
    POOL_LABEL,
    SIZE_LABEL,
    USER_LABEL,
    ZONE_LABEL,
    HomeSettings,
    ImageChoice,
    Pool,
    Size,
)

Overrides = dict[str, Any]
"""KubeSpawner trait name → value, as in a profile's ``kubespawner_override``."""

HOME_PVC_TEMPLATE = "home-{username}"
"""KubeSpawner ``pvc_name_template`` of every user's home claim."""
HOME_VOLUME = "home"
"""Name of the home volume in the pod spec."""
IMAGE_LABEL = f"{LABEL_PREFIX}/image"
"""Annotation naming the image choice."""
PRICE_ANNOTATION = f"{LABEL_PREFIX}/on-demand-price"
"""Annotation with the node's on-demand USD per hour, for cost accounting."""
USERS_GID = 100
"""The ``users`` group owning ``/opt/conda`` in Jupyter docker-stacks images."""
POD_IP_ENV = "WBSPAWNER_POD_IP"
"""The server's pod IP (downward API), where its ``preStop`` hook reaches it."""
POD_UID_ENV = "WBSPAWNER_POD_UID"
"""The server's pod UID (downward API): the id of the notice its ``preStop``
hook sends, which the hub's notice of the same stop shares."""
SAVE_BEFORE_STOP: dict[str, Any] = {
    "preStop": {"exec": {"command": ["python", "-m", "wb_lab_notices.stopping"]}}
}
"""The server container's lifecycle hooks: before a pod is deleted (its node
drained for a spot reclaim, an upgrade, a consolidation), every JupyterLab tab
of the server saves its open documents (``packages/wb-lab-notices``, in the
notebook images). The hook waits at most 20 s, within Kubernetes' default
30 s grace period; a stop through the hub deletes the pod with KubeSpawner's
1 s grace, and the hook gets that second."""

_MAX_ID = 2**31 - 1
_LABEL_MAX = 63
_LABEL_BAD = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnUser:
    """Who a pod is for: what the manifests need to know about the user."""

    name: str
    """Hub user name."""
    uid: int | None
    """POSIX uid from the directory (``uidNumber``); ``None`` when unknown."""
    gid: int | None
    """POSIX gid from the directory (``gidNumber``); ``None`` when unknown."""
    home_size_gib: int
    """Size of the home volume when it is first created."""


def label_value(text: str) -> str:
    """Return ``text`` as a valid Kubernetes label value.

    Characters outside ``[A-Za-z0-9._-]`` become ``-``; the value starts and ends
    with an alphanumeric; values longer than 63 characters are cut and given a
    short hash so two long names stay distinct.

    Args:
        text: any string, e.g. a user name like ``first.last@example.org``.

    Returns:
        A label value (possibly empty for an empty input).
    """
    value = _LABEL_BAD.sub("-", text).strip("-_.")
    if value == text and len(value) <= _LABEL_MAX:
        return value
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = value[: _LABEL_MAX - len(digest) - 1].strip("-_.")
    return f"{head}-{digest}" if head else digest


def node_placement(pool: Pool, zone: str | None = None) -> Overrides:
    """Return the node selector and tolerations that put a pod on the pool's nodes.

    Nodes of a pool carry the label and the ``NoSchedule`` taint
    ``wbspawner.io/pool=<pool>``; spot nodes also the taint
    ``wbspawner.io/capacity=spot``; GPU nodes ``nvidia.com/gpu``. The pod selects
    the pool (and the zone of its home, when known) and tolerates exactly those
    taints, so it lands on a node of that pool and nothing else does.

    Args:
        pool: the size's node pool.
        zone: availability zone to pin to (the home's), or ``None``.

    Returns:
        ``node_selector`` and ``tolerations`` overrides.
    """
    selector = {POOL_LABEL: pool.name}
    if zone:
        selector[ZONE_LABEL] = zone
    tolerations: list[dict[str, str]] = [
        {
            "key": POOL_LABEL,
            "operator": "Equal",
            "value": pool.name,
            "effect": "NoSchedule",
        }
    ]
    if "spot" in pool.capacity_types:
        tolerations.append(
            {
                "key": CAPACITY_LABEL,
                "operator": "Equal",
                "value": "spot",
                "effect": "NoSchedule",
            }
        )
    if pool.is_gpu:
        tolerations.append(
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        )
    return {"node_selector": selector, "tolerations": tolerations}


def resources(pool: Pool) -> Overrides:
    """Return the full-node request of the pool as both guarantee and limit.

    Request = limit gives the pod the Guaranteed QoS class and makes the node's
    whole allocatable its own; GPUs are requested and limited alike.

    Args:
        pool: the size's node pool (its ``request`` is computed from the catalogue).

    Returns:
        ``cpu_*``, ``mem_*`` and, for GPU pools, ``extra_resource_*`` overrides.
    """
    request = pool.request
    cores = request.cpu_m / 1000
    memory = request.memory_mib * 2**20
    out: Overrides = {
        "cpu_guarantee": cores,
        "cpu_limit": cores,
        "mem_guarantee": memory,
        "mem_limit": memory,
    }
    if request.gpus:
        out["extra_resource_guarantees"] = {GPU_RESOURCE: str(request.gpus)}
        out["extra_resource_limits"] = {GPU_RESOURCE: str(request.gpus)}
    return out


def labels(size: Size, pool: Pool, user: str | None = None) -> Overrides:
    """Return labels and annotations the warmer and cost accounting read.

    Labels are sanitised label values; annotations keep the exact names.

    Args:
        size: the chosen size.
        pool: its pool.
        user: the hub user name, or ``None`` for user-independent labels.

    Returns:
        ``extra_labels`` and ``extra_annotations`` overrides.
    """
    extra_labels = {POOL_LABEL: pool.name, SIZE_LABEL: label_value(size.slug)}
    annotations = {
        POOL_LABEL: pool.name,
        SIZE_LABEL: size.slug,
        PRICE_ANNOTATION: f"{pool.price_per_hour:.4f}",
    }
    if user is not None:
        extra_labels[USER_LABEL] = label_value(user)
        annotations[USER_LABEL] = user
    return {"extra_labels": extra_labels, "extra_annotations": annotations}


@dataclass(frozen=True, slots=True, kw_only=True)
class PodChoice:
    """What a server pod was made for, read back from the pod itself."""

    size: str | None
    """Size slug (the exact name, from the annotation)."""
    pool: str | None
    zone: str | None
    """The zone the pod is pinned to (its home's), if it is pinned."""


def choice_of_pod(pod: Mapping[str, Any] | None) -> PodChoice:
    """Return the size, pool and zone a server pod carries (see :func:`labels`).

    A hub that restarts while a start is under way has lost what the start
    decided; the pod still says it.

    Args:
        pod: a core/v1 Pod as a dict, or ``None``.

    Returns:
        What the pod names; ``None`` for anything it does not.
    """
    meta = (pod or {}).get("metadata") or {}
    annotations = meta.get("annotations") or {}
    selector = ((pod or {}).get("spec") or {}).get("nodeSelector") or {}

    def text(value: object) -> str | None:
        return str(value) if value else None

    return PodChoice(
        size=text(annotations.get(SIZE_LABEL)),
        pool=text(annotations.get(POOL_LABEL)),
        zone=text(selector.get(ZONE_LABEL)),
    )


def _check_id(kind: str, value: int | None, user: str) -> int:
    if value is None:
        raise UserFacingError(
            f"Your account has no {kind} in the directory, so your server cannot "
            "start as you. Ask an admin to give your account a POSIX "
            f"{kind}.",
            reason="account",
            log_message=f"{user}: no {kind} in auth_state",
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserFacingError(
            f"Your account's {kind} in the directory is not a number. Ask an admin "
            "to fix it.",
            reason="account",
            log_message=f"{user}: {kind} is {value!r}",
        )
    if value == 0:
        raise UserFacingError(
            f"Your account's {kind} is 0 (root); servers never run as root. "
            "Ask an admin to give your account its own id.",
            reason="account",
            log_message=f"{user}: refusing {kind} 0",
        )
    if not 0 < value <= _MAX_ID:
        raise UserFacingError(
            f"Your account's {kind} {value} is out of range. Ask an admin to fix it.",
            reason="account",
            log_message=f"{user}: {kind} {value} out of range",
        )
    return value


def security_context(uid: int | None, gid: int | None, user: str = "") -> Overrides:
    """Return overrides that run the server as the user, never as root.

    The container runs as ``uid:gid`` with no privilege escalation, no Linux
    capabilities and the runtime's default seccomp profile; the pod's ``fsGroup``
    makes the home volume writable by the user's group.

    Args:
        uid: the user's ``uidNumber``.
        gid: the user's ``gidNumber``.
        user: hub user name, for the log message.

    Returns:
        ``uid``, ``gid``, ``fs_gid``, ``supplemental_gids``,
        ``allow_privilege_escalation`` and the two security-context overrides.

    Raises:
        UserFacingError: an id is missing, not a number, out of range, or 0 (root).
    """
    run_uid = _check_id("uidNumber", uid, user)
    run_gid = _check_id("gidNumber", gid, user)
    seccomp = {"type": "RuntimeDefault"}
    return {
        "uid": run_uid,
        "gid": run_gid,
        "fs_gid": run_gid,
        "supplemental_gids": [USERS_GID],
        "allow_privilege_escalation": False,
        "container_security_context": {
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": dict(seccomp),
        },
        "pod_security_context": {
            "runAsNonRoot": True,
            "runAsUser": run_uid,
            "runAsGroup": run_gid,
            "seccompProfile": dict(seccomp),
        },
    }


def home_storage(homes: HomeSettings, size_gib: int) -> Overrides:
    """Return the home volume: a per-user claim KubeSpawner ensures, mounted.

    The claim's name comes from :data:`HOME_PVC_TEMPLATE` (set as
    ``pvc_name_template`` in the hub config); KubeSpawner creates it when it is
    missing and never deletes it. Its StorageClass binds on first consumer, so
    the EBS volume is made in the zone of the user's first node.

    Args:
        homes: the admin's home settings (StorageClass, mount path).
        size_gib: size of a new home, in GiB.

    Returns:
        ``storage_*``, ``volumes`` and ``volume_mounts`` overrides.
    """
    return {
        "storage_pvc_ensure": True,
        "storage_class": homes.storage_class,
        "storage_capacity": f"{size_gib}Gi",
        "storage_access_modes": ["ReadWriteOnce"],
        "volumes": [
            {
                "name": HOME_VOLUME,
                "persistentVolumeClaim": {"claimName": "{pvc_name}"},
            }
        ],
        "volume_mounts": [{"name": HOME_VOLUME, "mountPath": homes.mount_path}],
    }


def environment(size: Size, pool: Pool) -> Overrides:
    """Return the server's extra environment: the size's own plus what it runs on.

    ``WBSPAWNER_POD_IP`` and ``WBSPAWNER_POD_UID`` (from the downward API)
    let the ``preStop`` hook (:data:`SAVE_BEFORE_STOP`) reach the server and
    name its notice.

    Args:
        size: the chosen size.
        pool: its pool.

    Returns:
        An ``environment`` override.
    """
    env: dict[str, Any] = dict(size.environment)
    env["WBSPAWNER_SIZE"] = size.slug
    env["WBSPAWNER_POOL"] = pool.name
    env[POD_IP_ENV] = {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    env[POD_UID_ENV] = {"valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}
    return {"environment": env}


def size_overrides(size: Size, pool: Pool) -> Overrides:
    """Return everything about a size that does not depend on the user.

    This is the ``kubespawner_override`` of the size's entry in the spawn form.

    Args:
        size: the size.
        pool: its pool.

    Returns:
        Placement (no zone), resources, labels and environment overrides.
    """
    out: Overrides = {}
    out.update(node_placement(pool))
    out.update(resources(pool))
    out.update(labels(size, pool))
    out.update(environment(size, pool))
    return out


def overrides_for(
    size: Size,
    image: ImageChoice,
    pool: Pool,
    user: SpawnUser,
    zone: str | None,
    settings: HomeSettings,
) -> Overrides:
    """Return every KubeSpawner override for one user's server of one size.

    Args:
        size: the chosen size.
        image: the chosen image.
        pool: the size's pool.
        user: who the server is for (name, uid/gid, home size).
        zone: the zone of the user's home, when it already exists.
        settings: the admin's home settings.

    Returns:
        A new dict of overrides; applying it twice gives the same pod.

    Raises:
        UserFacingError: the user has no usable uid/gid.
    """
    out = size_overrides(size, pool)
    out.update(node_placement(pool, zone))
    out.update(labels(size, pool, user.name))
    out["extra_annotations"][IMAGE_LABEL] = image.slug
    out["image"] = image.image
    out.update(security_context(user.uid, user.gid, user.name))
    out.update(home_storage(settings, user.home_size_gib))
    return out
