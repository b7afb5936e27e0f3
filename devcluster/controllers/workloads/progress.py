"""A Deployment's status: counts and the Available and Progressing conditions. Pure.

After ``syncRolloutStatus`` of the Deployment controller (Kubernetes 1.33):
``observedGeneration``, ``replicas``, ``updatedReplicas``, ``readyReplicas``,
``availableReplicas`` and ``unavailableReplicas`` from the ReplicaSets (zero
counts left out, as ``omitempty``), ``Available`` when at least
``replicas - maxUnavailable`` pods are available, and ``Progressing`` with the
reasons and messages ``kubectl rollout status`` and ``kubectl describe`` show
(``NewReplicaSetCreated``, ``FoundNewReplicaSet``, ``ReplicaSetUpdated``,
``NewReplicaSetAvailable``, ``ProgressDeadlineExceeded`` once nothing moved for
``progressDeadlineSeconds``, in real seconds: it waits for real processes,
which ``time_factor`` does not speed up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devcluster.controllers.predicates import meta_of
from devcluster.controllers.workloads.replicasets import count, parse_time
from devcluster.controllers.workloads.rollouts import (
    max_unavailable,
    replicas_of,
    spec_total,
)
from devcluster.timestamps import now_iso

Obj = dict[str, Any]

NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


def _condition(
    kind: str, status: str, reason: str, message: str, old: Mapping[str, Any] | None
) -> Obj:
    stamp = now_iso()
    same = old is not None and old.get("status") == status
    transition = old.get("lastTransitionTime") if same and old else stamp
    keep_update = (
        same and old is not None and old.get("reason") == reason and kind == "Available"
    )
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": old.get("lastUpdateTime") if keep_update and old else stamp,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def is_complete(deploy: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Tell whether a rollout is done (``DeploymentComplete``)."""
    desired = replicas_of(deploy)
    return (
        count(status, "updatedReplicas") == desired
        and count(status, "replicas") == desired
        and count(status, "availableReplicas") == desired
        and count(status, "observedGeneration")
        >= int(meta_of(deploy).get("generation") or 1)
    )


def _progressed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Tell whether the rollout moved since ``old`` (``DeploymentProgressing``)."""
    old_olds = count(old, "replicas") - count(old, "updatedReplicas")
    new_olds = count(new, "replicas") - count(new, "updatedReplicas")
    return (
        count(new, "updatedReplicas") > count(old, "updatedReplicas")
        or new_olds < old_olds
        or count(new, "readyReplicas") > count(old, "readyReplicas")
        or count(new, "availableReplicas") > count(old, "availableReplicas")
    )


def deployment_status(
    deploy: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    olds: Sequence[Mapping[str, Any]],
    now: float,
    created_new: bool = False,
) -> Obj:
    """Return the Deployment's status from its ReplicaSets (``syncRolloutStatus``).

    Args:
        deploy: the Deployment as stored (its old status decides transitions).
        new: its new ReplicaSet, if there is one yet.
        olds: its other ReplicaSets.
        now: the time, in epoch seconds (for the progress deadline).
        created_new: the new ReplicaSet was created in this pass.
    """
    every = [*olds, *([new] if new is not None else [])]
    old_status = deploy.get("status") or {}
    counts = {
        "replicas": sum(count(rs.get("status"), "replicas") for rs in every),
        "updatedReplicas": count((new or {}).get("status"), "replicas"),
        "readyReplicas": sum(count(rs.get("status"), "readyReplicas") for rs in every),
        "availableReplicas": sum(
            count(rs.get("status"), "availableReplicas") for rs in every
        ),
    }
    counts["unavailableReplicas"] = max(
        spec_total(every) - counts["availableReplicas"], 0
    )
    status: Obj = {"observedGeneration": int(meta_of(deploy).get("generation") or 1)}
    status.update({k: v for k, v in counts.items() if v})
    if old_status.get("collisionCount"):
        status["collisionCount"] = old_status["collisionCount"]
    previous = {c.get("type"): c for c in old_status.get("conditions") or []}
    desired = replicas_of(deploy)
    if counts["availableReplicas"] >= desired - max_unavailable(deploy):
        available = _condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            previous.get("Available"),
        )
    else:
        available = _condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            previous.get("Available"),
        )
    conditions = [available]
    progressing = _progressing(deploy, new, status, previous, now, created_new)
    if progressing is not None:
        conditions.append(progressing)
    status["conditions"] = conditions
    return status


def _progressing(
    deploy: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    status: Mapping[str, Any],
    previous: Mapping[str, Mapping[str, Any]],
    now: float,
    created_new: bool,
) -> Obj | None:
    deadline = (deploy.get("spec") or {}).get("progressDeadlineSeconds")
    old = previous.get("Progressing")
    if deadline is None:
        return None
    name = meta_of(new).get("name", "") if new is not None else ""
    if created_new:
        return _condition(
            "Progressing",
            "True",
            NEW_RS_CREATED,
            f'Created new replica set "{name}"',
            old,
        )
    if is_complete(deploy, status):
        if old is not None and old.get("reason") == NEW_RS_AVAILABLE:
            return dict(old)
        return _condition(
            "Progressing",
            "True",
            NEW_RS_AVAILABLE,
            f'ReplicaSet "{name}" has successfully progressed.',
            old,
        )
    if _progressed(deploy.get("status") or {}, status) or old is None:
        reason = RS_UPDATED if old is not None else FOUND_NEW_RS
        message = (
            f'ReplicaSet "{name}" is progressing.'
            if old is not None
            else f'Found new replica set "{name}"'
        )
        return _condition("Progressing", "True", reason, message, old)
    if old.get("reason") == DEADLINE_EXCEEDED:
        return dict(old)
    since = parse_time(old.get("lastUpdateTime")) or now
    if old.get("reason") == NEW_RS_AVAILABLE:
        # a finished rollout that lost pods is progressing again (scaling)
        return _condition(
            "Progressing",
            "True",
            RS_UPDATED,
            f'ReplicaSet "{name}" is progressing.',
            old,
        )
    if now > since + float(deadline):
        return _condition(
            "Progressing",
            "False",
            DEADLINE_EXCEEDED,
            f'ReplicaSet "{name}" has timed out progressing.',
            old,
        )
    return dict(old)
