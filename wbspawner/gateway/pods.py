"""Kubernetes pod pieces of Dask schedulers and workers (KubeBackend only).

This module owns where a Dask pod lands and how it runs (and what it reaches:
the ServiceAccount and shared volumes of the owner's data grants, as their
server has them, :func:`with_data`): the pool's node
selector and tolerations (the same as a user server's, from
:func:`wbspawner.spawn.manifests.node_placement`), a preference for the pool's first
capacity type (spot before on-demand) for workers and on-demand only for
schedulers, a non-root security context, whole GPUs
as ``nvidia.com/gpu`` requests and limits, and labels and annotations for the
warmer and cost accounting. The results are ``KubeClusterConfig`` overrides
whose values are raw camelCase pod-spec fragments, deep-merged into the pods by
the dask-gateway controller.

Pure: returns new dicts, reads frozen model values only.
"""

from __future__ import annotations

from typing import Any

from wbspawner.gateway.workers import workers_per_node
from wbspawner.model import (
    CAPACITY_LABEL,
    GPU_RESOURCE,
    LABEL_PREFIX,
    POOL_LABEL,
    USER_LABEL,
    DaskWorkerSize,
    Pool,
    Resources,
)
from wbspawner.profiles.data_access import DataAccess
from wbspawner.spawn import data_pods, manifests

DASK_UID = 1000
"""uid of Dask pods: ``jovyan`` in Jupyter docker-stacks images (never root).

The gateway learns a user's name and groups from the hub, not their POSIX ids,
and Dask pods mount no home, so they run as the image's own user.
"""
DASK_GID = manifests.USERS_GID
WORKER_SIZE_LABEL = f"{LABEL_PREFIX}/dask-worker-size"
"""Label of worker pods: the worker size name."""
ROLE_LABEL = f"{LABEL_PREFIX}/dask-role"
"""Label of Dask pods: ``scheduler`` or ``worker``."""


def placement(pool: Pool) -> dict[str, Any]:
    """Return the pod-spec fragment that pins a pod to the pool's nodes.

    Args:
        pool: the pool.

    Returns:
        ``nodeSelector``, ``tolerations`` and, for a pool with several capacity
        types, a preferred node affinity for its first one.
    """
    placed = manifests.node_placement(pool)
    spec: dict[str, Any] = {
        "nodeSelector": placed["node_selector"],
        "tolerations": placed["tolerations"],
    }
    if len(pool.capacity_types) > 1:
        # Prefer, not require: when spot is short the pod may still run on
        # the pool's on-demand nodes (Cluster Autoscaler's priority expander
        # does the same for the node groups).
        term = {
            "key": CAPACITY_LABEL,
            "operator": "In",
            "values": [pool.capacity_types[0]],
        }
        spec["affinity"] = {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "preference": {"matchExpressions": [term]}}
                ]
            }
        }
    return spec


def scheduler_placement(pool: Pool) -> dict[str, Any]:
    """Return where a scheduler runs: the pool's on-demand nodes, never spot.

    A reclaimed worker costs Dask a recomputation of what it held; a
    reclaimed scheduler ends the whole computation. The profiles check that a
    scheduler's pool has on-demand capacity.

    Args:
        pool: the scheduler's pool.

    Returns:
        ``nodeSelector``, ``tolerations`` and a required node affinity for
        on-demand capacity.
    """
    spec = placement(pool)
    on_demand = {"key": CAPACITY_LABEL, "operator": "In", "values": ["on-demand"]}
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [on_demand]}]
            }
        }
    }
    return spec


def security(uid: int = DASK_UID, gid: int = DASK_GID) -> tuple[dict[str, Any], ...]:
    """Return the pod and container security contexts of a Dask pod.

    Args:
        uid: the uid to run as (never 0).
        gid: the primary gid.

    Returns:
        ``(pod securityContext, container securityContext)``.
    """
    made = manifests.security_context(uid, gid, "dask")
    container = dict(made["container_security_context"])
    container["allowPrivilegeEscalation"] = False
    return dict(made["pod_security_context"]), container


def gpu_resources(gpus: int) -> dict[str, Any]:
    """Return the container ``resources`` fragment for whole GPUs.

    Args:
        gpus: GPUs per container (0: none).

    Returns:
        ``{"resources": {...}}`` with equal requests and limits, or ``{}``.
    """
    if gpus <= 0:
        return {}
    amount = {GPU_RESOURCE: str(gpus)}
    return {"resources": {"requests": dict(amount), "limits": dict(amount)}}


def kube_overrides(
    size: DaskWorkerSize,
    pool: Pool,
    scheduler_pool: Pool,
    worker: Resources,
    user: str,
) -> dict[str, Any]:
    """Return the ``KubeClusterConfig`` pod overrides of one cluster.

    Args:
        size: the worker size.
        pool: the workers' pool.
        scheduler_pool: the scheduler's pool (the workers' when none is set).
        worker: one worker's request (for its GPUs and price share).
        user: the owner's user name.

    Returns:
        ``worker_extra_pod_config``, ``scheduler_extra_pod_config``, the two
        ``*_extra_container_config`` and the labels and annotations.
    """
    pod_sc, container_sc = security()
    worker_pod = placement(pool)
    worker_pod["securityContext"] = pod_sc
    sched_pod = scheduler_placement(scheduler_pool)
    sched_pod["securityContext"] = dict(pod_sc)
    worker_container: dict[str, Any] = {"securityContext": container_sc}
    worker_container.update(gpu_resources(worker.gpus))
    owner = manifests.label_value(user)
    share = pool.price_per_hour / workers_per_node(size, pool)
    return {
        "worker_extra_pod_config": worker_pod,
        "scheduler_extra_pod_config": sched_pod,
        "worker_extra_container_config": worker_container,
        "scheduler_extra_container_config": {"securityContext": dict(container_sc)},
        "worker_extra_pod_labels": {
            POOL_LABEL: pool.name,
            USER_LABEL: owner,
            WORKER_SIZE_LABEL: manifests.label_value(size.name),
            ROLE_LABEL: "worker",
        },
        "scheduler_extra_pod_labels": {
            POOL_LABEL: scheduler_pool.name,
            USER_LABEL: owner,
            ROLE_LABEL: "scheduler",
        },
        "worker_extra_pod_annotations": {
            USER_LABEL: user,
            manifests.PRICE_ANNOTATION: f"{share:.4f}",
        },
        "scheduler_extra_pod_annotations": {USER_LABEL: user},
    }


def with_data(overrides: dict[str, Any], access: DataAccess) -> dict[str, Any]:
    """Return a cluster's overrides with the owner's data access in both pods.

    The scheduler and the workers get the ServiceAccount of the owner's S3
    grants (so they assume the same IAM role as the owner's server) and the
    shared volumes of their groups, mounted as in the server.

    Args:
        overrides: from :func:`kube_overrides`.
        access: the owner's data access.

    Returns:
        A new dict; equal to ``overrides`` when the access is empty.
    """
    pod, container = data_pods.dask_pod_pieces(access)
    out = dict(overrides)
    for role in ("worker", "scheduler"):
        pod_key, container_key = (
            f"{role}_extra_pod_config",
            (f"{role}_extra_container_config"),
        )
        out[pod_key] = {**out.get(pod_key, {}), **pod}
        out[container_key] = {**out.get(container_key, {}), **container}
    return out
