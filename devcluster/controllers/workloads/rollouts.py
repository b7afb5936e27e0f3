"""The Deployment controller's decisions: ReplicaSets of templates, rollouts, status.

Pure functions over plain objects, after the Deployment controller of
kube-controller-manager (``pkg/controller/deployment``, Kubernetes 1.33):

* Each pod template gets a ReplicaSet named ``<deployment>-<hash>``, whose
  selector, labels and pod labels carry ``pod-template-hash: <hash>``
  (``new_replicaset``). The hash is devcluster's own (SHA-256 of the template
  as canonical JSON, plus ``collisionCount``) in the alphabet Kubernetes uses
  for it; it is stable, not byte-equal to kube-controller-manager's FNV hash.
  The ReplicaSet whose template equals the Deployment's (the hash label left
  aside) is the *new* one; the others are *old*.
* Revisions: the new ReplicaSet carries ``deployment.kubernetes.io/revision``
  one above the highest of the others (a rollback to an old template makes that
  ReplicaSet the newest revision again).
* ``RollingUpdate``: ``maxSurge`` (rounded up) and ``maxUnavailable`` (rounded
  down; 1 when both are 0) bound how far the new ReplicaSet grows
  (``rolling_new_replicas``) and how far the old ones shrink
  (``rolling_old_replicas``: unhealthy pods first, then as availability allows).
  ``Recreate``: every old ReplicaSet to 0, and the new one grows only once no
  old pod is left.
* Old ReplicaSets scaled to 0 beyond ``revisionHistoryLimit`` are deleted,
  oldest first (``history_to_delete``).
* Status: ``observedGeneration``, ``replicas``, ``updatedReplicas``,
  ``readyReplicas``, ``availableReplicas``, ``unavailableReplicas`` and the
  ``Available`` and ``Progressing`` conditions, with the reasons and messages
  ``kubectl rollout status`` and ``kubectl describe`` show
  (``deployment_status``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.controllers.predicates import meta_of
from devcluster.controllers.workloads.replicasets import (
    POD_TEMPLATE_HASH,
    count,
    owner_reference,
    parse_time,
)
from devcluster.timestamps import now_iso

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters of ``rand.SafeEncodeString`` (no vowels, no 0, 1, 3)."""

NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


def replicas_of(obj: Mapping[str, Any]) -> int:
    """Return ``spec.replicas`` (1 when unset, the API default)."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """Return the pod-template-hash of a template (10 safe characters at most)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{text}/{collision_count}".encode()).digest()
    value = int.from_bytes(digest[:4], "big")
    out = []
    while value:
        value, digit = divmod(value, len(_SAFE_ALPHABET))
        out.append(_SAFE_ALPHABET[digit])
    return "".join(out)[:10] or _SAFE_ALPHABET[0]


def without_hash(template: Mapping[str, Any]) -> Obj:
    """Return a copy of a pod template without the pod-template-hash label."""
    copy = clone(dict(template))
    labels = (copy.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            copy["metadata"].pop("labels")
    meta = copy.get("metadata")
    if meta is not None and not meta:
        copy.pop("metadata")
    return copy


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("spec") or {}).get("template") or {}


def revision_of(rs: Mapping[str, Any]) -> int:
    """Return the revision annotation of a ReplicaSet (0 when unset)."""
    try:
        return int((meta_of(rs).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _created(obj: Mapping[str, Any]) -> tuple[float, str]:
    return parse_time(meta_of(obj).get("creationTimestamp")) or 0.0, str(
        meta_of(obj).get("name", "")
    )


def find_new(
    deploy: Mapping[str, Any], rses: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """Return the ReplicaSet of the Deployment's current template (oldest if many)."""
    wanted = without_hash(_template(deploy))
    same = [rs for rs in rses if without_hash(_template(rs)) == wanted]
    return min(same, key=_created) if same else None


def new_replicaset(
    deploy: Mapping[str, Any], pod_hash: str, revision: int, replicas: int
) -> Obj:
    """Return the ReplicaSet of the Deployment's template (not yet stored)."""
    meta, spec = meta_of(deploy), deploy.get("spec") or {}
    template = clone(dict(_template(deploy)))
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), POD_TEMPLATE_HASH: pod_hash}
    selector = clone(dict(spec.get("selector") or {}))
    selector["matchLabels"] = {
        **(selector.get("matchLabels") or {}),
        POD_TEMPLATE_HASH: pod_hash,
    }
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    annotations.update(
        {
            REVISION: str(revision),
            DESIRED_REPLICAS: str(replicas_of(deploy)),
            MAX_REPLICAS: str(replicas_of(deploy) + surge_and_unavailable(deploy)[0]),
        }
    )
    rs_spec: Obj = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta.get('name', '')}-{pod_hash}",
            "namespace": meta.get("namespace", ""),
            "labels": dict(tmeta["labels"]),
            "annotations": annotations,
            "ownerReferences": [owner_reference({**deploy, "kind": "Deployment"})],
        },
        "spec": rs_spec,
    }


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    text = str(value)
    if text.endswith("%"):
        amount = float(text[:-1]) * total / 100
        return math.ceil(amount) if round_up else math.floor(amount)
    return int(text)


def is_rolling(deploy: Mapping[str, Any]) -> bool:
    """Tell whether the Deployment's strategy is RollingUpdate (the default)."""
    strategy = (deploy.get("spec") or {}).get("strategy") or {}
    return strategy.get("type", "RollingUpdate") == "RollingUpdate"


def surge_and_unavailable(deploy: Mapping[str, Any]) -> tuple[int, int]:
    """Return (maxSurge, maxUnavailable) as pod counts (``ResolveFenceposts``).

    Recreate has neither; a RollingUpdate with both 0 may lose one pod.
    """
    if not is_rolling(deploy):
        return 0, 0
    rolling = ((deploy.get("spec") or {}).get("strategy") or {}).get(
        "rollingUpdate"
    ) or {}
    desired = replicas_of(deploy)
    surge = _scaled(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(deploy: Mapping[str, Any]) -> int:
    """Return how many pods below ``replicas`` still count as available."""
    desired = replicas_of(deploy)
    if not is_rolling(deploy) or desired == 0:
        return 0
    return min(surge_and_unavailable(deploy)[1], desired)


def _spec_total(rses: Sequence[Mapping[str, Any]]) -> int:
    return sum(replicas_of(rs) for rs in rses)


def rolling_new_replicas(
    deploy: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    olds: Sequence[Mapping[str, Any]],
) -> int:
    """Return the replicas the new ReplicaSet may have now (``NewRSNewReplicas``)."""
    desired = replicas_of(deploy)
    current = replicas_of(new) if new is not None else 0
    if not is_rolling(deploy):
        return desired
    if current >= desired:
        return desired
    surge = surge_and_unavailable(deploy)[0]
    total = _spec_total(olds) + current
    if total >= desired + surge:
        return current
    return current + min(desired + surge - total, desired - current)


def rolling_old_replicas(
    deploy: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    olds: Sequence[Mapping[str, Any]],
) -> dict[str, int]:
    """Return the replicas old ReplicaSets shrink to now, by name (only changes).

    As ``reconcileOldReplicaSets``: first unhealthy old pods go (they lower no
    availability), then healthy ones as far as ``maxUnavailable`` allows.
    """
    if _spec_total(olds) == 0:
        return {}
    desired = replicas_of(deploy)
    min_available = desired - max_unavailable(deploy)
    new_spec = replicas_of(new) if new is not None else 0
    new_available = count((new or {}).get("status"), "availableReplicas")
    total = _spec_total(olds) + new_spec
    budget = total - min_available - (new_spec - new_available)
    if budget <= 0:
        return {}
    ordered = sorted(olds, key=_created)
    wanted = {str(meta_of(rs)["name"]): replicas_of(rs) for rs in ordered}
    done = 0
    for rs in ordered:  # unhealthy pods first
        name = str(meta_of(rs)["name"])
        unhealthy = wanted[name] - count(rs.get("status"), "availableReplicas")
        if done >= budget:
            break
        if wanted[name] == 0 or unhealthy <= 0:
            continue
        step = min(budget - done, unhealthy)
        wanted[name] -= step
        done += step
    available = new_available + sum(
        min(
            count(rs.get("status"), "availableReplicas"),
            wanted[str(meta_of(rs)["name"])],
        )
        for rs in ordered
    )
    room = available - min_available
    for rs in ordered:  # then healthy ones, as availability allows
        name = str(meta_of(rs)["name"])
        if room <= 0:
            break
        if wanted[name] == 0:
            continue
        step = min(wanted[name], room)
        wanted[name] -= step
        room -= step
    return {
        str(meta_of(rs)["name"]): wanted[str(meta_of(rs)["name"])]
        for rs in ordered
        if wanted[str(meta_of(rs)["name"])] != replicas_of(rs)
    }


def history_to_delete(
    deploy: Mapping[str, Any], olds: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Return the empty old ReplicaSets past ``revisionHistoryLimit``, oldest first."""
    limit = (deploy.get("spec") or {}).get("revisionHistoryLimit", 10)
    if limit is None:
        return []
    empty = sorted(
        (
            rs
            for rs in olds
            if replicas_of(rs) == 0
            and count(rs.get("status"), "replicas") == 0
            and not meta_of(rs).get("deletionTimestamp")
        ),
        key=lambda rs: (revision_of(rs), *_created(rs)),
    )
    extra = len(olds) - int(limit)
    return [str(meta_of(rs)["name"]) for rs in empty[: max(extra, 0)]]


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
    time_factor: float = 1.0,
) -> Obj:
    """Return the Deployment's status from its ReplicaSets (``syncRolloutStatus``).

    Args:
        deploy: the Deployment as stored (its old status decides transitions).
        new: its new ReplicaSet, if there is one yet.
        olds: its other ReplicaSets.
        now: the time, in epoch seconds (for the progress deadline).
        created_new: the new ReplicaSet was created in this pass.
        time_factor: real seconds per simulated second (scales
            ``progressDeadlineSeconds``, as devcluster scales every delay).
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
        _spec_total(every) - counts["availableReplicas"], 0
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
    progressing = _progressing(
        deploy, new, status, previous, now, created_new, time_factor
    )
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
    time_factor: float,
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
    if now > since + float(deadline) * time_factor:
        return _condition(
            "Progressing",
            "False",
            DEADLINE_EXCEEDED,
            f'ReplicaSet "{name}" has timed out progressing.',
            old,
        )
    return dict(old)
