"""Cold starts as the cluster shows them: how long pods waited for a new node.

This module owns reading :class:`~wbspawner.model.WaitSample` s from the pods and
nodes the warmer lists on every pass anyway (no extra API call): a user or
placeholder pod whose node was registered after the pod was created waited for
that node to boot; its own timestamps say how long (creation → the
``PodScheduled`` condition turning true) and, for a user pod, how long the node
then took to make it Ready (image pull, home volume attach, container start:
``PodScheduled`` → ``Ready``). The warmer keeps the last few per pool and zone
(:func:`wbspawner.spawn.waits.keep_last`) and writes them for the hub.

Durations are taken between API timestamps (whole seconds), so they are the
cluster's real seconds, what a user waits, whatever the warmer's own clock.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from wbspawner.model import WaitSample
from wbspawner.timestamps import parse_time
from wbspawner.warmer.snapshot import NodeInfo, Obj, node_info, pod_info


def _condition_since(pod: Obj, kind: str) -> datetime | None:
    """Return when a pod's condition of ``kind`` last turned true, if it is."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def _created(obj: Obj) -> datetime | None:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return parse_time(meta.get("creationTimestamp"))


def wait_sample(
    pod: Obj, node: Obj, info: NodeInfo, now: datetime
) -> WaitSample | None:
    """Return the cold start of one pod on its node, or ``None`` if it was not one.

    Args:
        pod: a core/v1 Pod bound to ``node``.
        node: its core/v1 Node.
        info: the node's pool and zone.
        now: the current time (for :func:`pod_info`; not in the durations).

    Returns:
        The sample, once the pod has its node (a user pod: once it is Ready).
    """
    pod_obj = pod_info(pod, {info.name: info}, now)
    created, node_created = _created(pod), _created(node)
    scheduled = _condition_since(pod, "PodScheduled")
    if pod_obj is None or created is None or node_created is None or not scheduled:
        return None
    if node_created < created:  # the node was there before the pod: no boot
        return None
    start_s: float | None = None
    if pod_obj.role == "user":
        ready = _condition_since(pod, "Ready")
        if ready is None:
            return None  # not done yet: the next pass takes it
        start_s = max(0.0, (ready - scheduled).total_seconds())
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    if not uid:
        return None
    return WaitSample(
        uid=uid,
        pool=info.pool,
        zone=info.zone,
        at=scheduled,
        boot_s=max(0.0, (scheduled - created).total_seconds()),
        start_s=start_s,
    )


def wait_samples(
    raw_pods: Iterable[Obj], raw_nodes: Iterable[Obj], now: datetime
) -> list[WaitSample]:
    """Return the cold starts of the listed pods on pool nodes.

    Args:
        raw_pods: core/v1 Pods (user servers and placeholders count).
        raw_nodes: core/v1 Nodes.
        now: the current time.

    Returns:
        One sample per pod that waited for a new node of a pool.
    """
    nodes: dict[str, tuple[Obj, NodeInfo]] = {}
    for raw in raw_nodes:
        info = node_info(raw)
        if info is not None:
            nodes[info.name] = (raw, info)
    out: list[WaitSample] = []
    for pod in raw_pods:
        found = nodes.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        if found is None:
            continue
        sample = wait_sample(pod, found[0], found[1], now)
        if sample is not None:
            out.append(sample)
    return out
