"""The ReplicaSet controller's decisions: pods of a template, which go first, status.

Pure functions over plain objects. They follow the ReplicaSet controller of
kube-controller-manager (``pkg/controller/replicaset``, Kubernetes 1.33):

* A ReplicaSet owns the pods whose controller ``ownerReference`` is its uid; a
  pod that matches its selector, is not being deleted and has no controller is
  adopted (``claim``); an owned pod whose labels no longer match is released.
* Too few active pods (neither finished nor being deleted): new pods from the
  template, named ``<replicaset>-<random>`` (``generateName``), with the
  ReplicaSet as their controller. Too many: the ones to delete first are
  ranked like ``controller.ActivePods`` (``deletion_order``).
* Status: ``replicas`` (active pods), ``fullyLabeledReplicas``,
  ``readyReplicas``, ``availableReplicas`` (ready for ``minReadySeconds``) and
  ``observedGeneration``; zero counts are left out, as the API's ``omitempty``
  renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.selectors import selector_matches
from devcluster.controllers.predicates import is_terminal, is_terminating, meta_of

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
"""The label a Deployment adds to its ReplicaSets' selector and pods."""


def parse_time(stamp: str | None) -> float | None:
    """Return the epoch seconds of an RFC 3339 timestamp (None when unset)."""
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the ownerReference with ``controller: true``, if any."""
    for ref in meta_of(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: Mapping[str, Any]) -> Obj:
    """Return the controller ownerReference pointing at ``owner``."""
    meta = meta_of(owner)
    return {
        "apiVersion": owner.get("apiVersion", "apps/v1"),
        "kind": owner.get("kind", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_active(pod: Mapping[str, Any]) -> bool:
    """Tell whether a pod counts toward its ReplicaSet (not finished nor deleted)."""
    return not is_terminating(pod) and not is_terminal(pod)


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond  # type: ignore[no-any-return]
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Tell whether a pod's Ready condition is True."""
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_available(pod: Mapping[str, Any], min_ready_s: float, now: float) -> bool:
    """Tell whether a pod has been Ready for ``min_ready_s`` seconds."""
    if not is_ready(pod):
        return False
    if min_ready_s <= 0:
        return True
    cond = _ready_condition(pod) or {}
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and since + min_ready_s <= now


def selector_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the label selector of a ReplicaSet or Deployment."""
    return (obj.get("spec") or {}).get("selector") or {}


def matches(owner: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Tell whether ``obj``'s labels match ``owner``'s selector (never when empty).

    An empty selector selects nothing here: the apiserver refuses apps/v1
    objects without one, and a controller must not claim a whole namespace.
    """
    selector = selector_of(owner)
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False
    return selector_matches(selector, meta_of(obj).get("labels") or {})


def claim(
    owner: Mapping[str, Any], candidates: Iterable[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split objects into (owned, to adopt, to release) for ``owner``.

    Owned: controlled by ``owner`` and matching its selector. To adopt: matching,
    not being deleted, controlled by nobody (and ``owner`` itself is not being
    deleted). To release: controlled by ``owner`` but no longer matching.
    """
    uid = meta_of(owner).get("uid")
    deleting = bool(meta_of(owner).get("deletionTimestamp"))
    owned, adopt, release = [], [], []
    for obj in candidates:
        ref = controller_ref(obj)
        fits = matches(owner, obj)
        if ref is not None and ref.get("uid") == uid:
            (owned if fits else release).append(obj)
        elif ref is None and fits and not deleting and not is_terminating(obj):
            adopt.append(obj)
    return owned, adopt, release


def pod_from_template(rs: Mapping[str, Any]) -> Obj:
    """Return a new pod of a ReplicaSet's template (``generateName``, controller)."""
    meta = meta_of(rs)
    template = clone((rs.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    pod_meta: Obj = {
        "generateName": f"{meta.get('name', '')}-",
        "namespace": meta.get("namespace", ""),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference({**rs, "kind": "ReplicaSet"})],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": template.get("spec") or {},
    }


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_key(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready_since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    restarts = sum(
        int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []
    )
    annotations = meta_of(pod).get("annotations") or {}
    try:
        cost = int(annotations.get("controller.kubernetes.io/pod-deletion-cost", 0))
    except ValueError:
        cost = 0
    created = parse_time(meta_of(pod).get("creationTimestamp")) or 0.0
    return (
        bool(spec.get("nodeName")),  # not yet scheduled goes first
        _PHASE_RANK.get(str(status.get("phase")), 1),  # Pending before Running
        is_ready(pod),  # not ready before ready
        cost,  # lower pod-deletion-cost first
        -(ready_since or 0.0),  # ready for a shorter time first
        -restarts,  # more restarts first
        -created,  # newer first
    )


def deletion_order(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return pods in the order a ReplicaSet deletes them (``ActivePods`` ranking)."""
    return sorted(pods, key=_deletion_key)


def scale_diff(rs: Mapping[str, Any], active: int) -> int:
    """Return how many pods to create (positive) or delete (negative)."""
    wanted = int((rs.get("spec") or {}).get("replicas", 1))
    return wanted - active


def replicaset_status(
    rs: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], now: float
) -> Obj:
    """Return the status of a ReplicaSet owning ``pods`` (its active ones count)."""
    spec = rs.get("spec") or {}
    min_ready = float(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    active = [p for p in pods if is_active(p)]
    counts = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(
            1
            for p in active
            if all(
                (meta_of(p).get("labels") or {}).get(k) == v
                for k, v in template_labels.items()
            )
        ),
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
    }
    status: Obj = {"replicas": counts.pop("replicas")}
    status.update({k: v for k, v in counts.items() if v})
    generation = meta_of(rs).get("generation")
    if generation:
        status["observedGeneration"] = int(generation)
    return status


def count(status: Mapping[str, Any] | None, field: str) -> int:
    """Return a status count (0 when left out)."""
    return int((status or {}).get(field) or 0)
