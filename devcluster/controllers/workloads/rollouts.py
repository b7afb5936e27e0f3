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

The Deployment's status is :mod:`devcluster.controllers.workloads.progress`.
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

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters of ``rand.SafeEncodeString`` (no vowels, no 0, 1, 3)."""


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


def spec_total(rses: Sequence[Mapping[str, Any]]) -> int:
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
    total = spec_total(olds) + current
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
    if spec_total(olds) == 0:
        return {}
    desired = replicas_of(deploy)
    min_available = desired - max_unavailable(deploy)
    new_spec = replicas_of(new) if new is not None else 0
    new_available = count((new or {}).get("status"), "availableReplicas")
    total = spec_total(olds) + new_spec
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
