"""Node and pod predicates of kube-scheduler, and its message wording. Pure.

This module owns the small matching rules the scheduler and the autoscaler share:
label and node-selector matching (In, NotIn, Exists, DoesNotExist, Gt, Lt),
taints and tolerations (including the not-ready/unreachable taints the node
lifecycle controller adds), StorageClass topology, pod lifecycle tests, and the
exact wording of FailedScheduling messages (kube-scheduler 1.33).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

DEFAULT_SCHEDULER = "default-scheduler"
ZONE_LABEL = "topology.kubernetes.io/zone"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

R_UNSCHEDULABLE = "node(s) were unschedulable"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_VOLUME_CONFLICT = "node(s) had volume node affinity conflict"
R_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
R_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
R_NOT_HELPFUL = "Preemption is not helpful for scheduling"
R_NO_VICTIMS = "No preemption victims found for incoming pod"
NO_NODES = "no nodes available to schedule pods"


def meta_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return an object's metadata (empty when none)."""
    return obj.get("metadata") or {}


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return an object's spec (empty when none)."""
    return obj.get("spec") or {}


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """Return an object's labels (empty when none)."""
    return meta_of(obj).get("labels") or {}


def match_expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Match one node-selector requirement (In, NotIn, Exists, DoesNotExist, Gt, Lt)."""
    key, op = expr.get("key", ""), expr.get("operator", "")
    values = list(expr.get("values") or [])
    present, value = key in labels, labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(str(value)), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def match_term(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Match a NodeSelectorTerm (requirements ANDed; an empty term matches nothing)."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    by_field = {"metadata.name": str(meta_of(node).get("name", ""))}
    return all(match_expression(e, labels_of(node)) for e in exprs) and all(
        match_expression(f, by_field) for f in fields
    )


def match_node_selector(
    selector: Mapping[str, Any] | None, node: Mapping[str, Any]
) -> bool:
    """Match a NodeSelector (terms are ORed); ``None`` matches every node."""
    if selector is None:
        return True
    return any(match_term(t, node) for t in selector.get("nodeSelectorTerms") or [])


def affinity_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Check ``spec.nodeSelector`` and required node affinity, like NodeAffinity."""
    labels = labels_of(node)
    if any(
        labels.get(k) != v for k, v in (spec_of(pod).get("nodeSelector") or {}).items()
    ):
        return False
    node_affinity = (spec_of(pod).get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    return match_node_selector(required, node)


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Tell whether a toleration tolerates a taint (Equal, Exists, empty key)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key, op = toleration.get("key") or "", toleration.get("operator") or "Equal"
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (
        taint.get("value") or ""
    )


def node_taints(node: Mapping[str, Any]) -> list[Obj]:
    """Return a node's taints plus the not-ready/unreachable taint its state implies.

    The node lifecycle controller taints nodes whose Ready condition is False
    (not-ready) or Unknown (unreachable); a node without a Ready condition is
    taken as ready.
    """
    taints = [dict(t) for t in spec_of(node).get("taints") or []]
    ready = next(
        (
            c
            for c in (node.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready"
        ),
        None,
    )
    implied = None
    if ready is not None and ready.get("status") == "False":
        implied = NOT_READY_TAINT
    elif ready is not None and ready.get("status") != "True":
        implied = UNREACHABLE_TAINT
    if implied and all(t.get("key") != implied for t in taints):
        taints.append({"key": implied, "effect": "NoSchedule"})
    return taints


def untolerated_taint(pod: Mapping[str, Any], node: Mapping[str, Any]) -> Obj | None:
    """Return the first NoSchedule/NoExecute taint the pod does not tolerate."""
    tolerations = spec_of(pod).get("tolerations") or []
    for taint in node_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def taint_reason(taint: Mapping[str, Any]) -> str:
    """Word an untolerated taint like the TaintToleration plugin."""
    key, value = taint.get("key", ""), taint.get("value") or ""
    return f"node(s) had untolerated taint {{{key}: {value}}}"


def topology_matches(storage_class: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Check a StorageClass's ``allowedTopologies`` against a node (none: any node)."""
    terms = storage_class.get("allowedTopologies") or []
    if not terms:
        return True
    labels = labels_of(node)
    return any(
        all(
            labels.get(e.get("key", "")) in (e.get("values") or [])
            for e in t.get("matchLabelExpressions") or []
        )
        for t in terms
    )


def is_terminating(pod: Mapping[str, Any]) -> bool:
    """Tell whether a pod has a deletionTimestamp."""
    return bool(meta_of(pod).get("deletionTimestamp"))


def is_terminal(pod: Mapping[str, Any]) -> bool:
    """Tell whether a pod has finished (its resources are free)."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def fit_message(
    n_nodes: int, prefilter: str, reasons: Mapping[str, int], postfilter: str = ""
) -> str:
    """Format a FitError like kube-scheduler: sorted reason counts, then preemption."""
    if n_nodes == 0 and not prefilter:
        return NO_NODES
    msg = f"0/{n_nodes} nodes are available:"
    if prefilter:
        msg += f" {prefilter}."
    else:
        items = sorted(f"{count} {reason}" for reason, count in reasons.items())
        if items:
            msg += " " + ", ".join(items) + "."
    if postfilter:
        msg += " " + postfilter.rstrip(".") + "."
    return msg


@dataclass(frozen=True, slots=True)
class Status:
    """Why one node was filtered out."""

    reasons: tuple[str, ...]
    resolvable: bool = False
    """``Unschedulable`` (preemption may help) vs ``UnschedulableAndUnresolvable``."""


@dataclass(frozen=True, slots=True)
class VolumeBinding:
    """A WaitForFirstConsumer claim to provision for the chosen node."""

    namespace: str
    claim: str
    storage_class: str
    node_name: str
    zone: str | None


@dataclass(frozen=True, slots=True)
class PodVolumes:
    """The pod's claims, split the way the VolumeBinding plugin splits them."""

    bound: tuple[Obj, ...] = ()
    """PVs of bound claims (their node affinity must match)."""
    delayed: tuple[tuple[Obj, Obj], ...] = ()
    """(claim, StorageClass) of unbound WaitForFirstConsumer claims."""


def pod_volumes(
    pod: Mapping[str, Any],
    pvcs: Mapping[tuple[str, str], Obj],
    pvs: Mapping[str, Obj],
    storage_classes: Mapping[str, Obj],
) -> PodVolumes | str:
    """Resolve a pod's claims (VolumeBinding PreFilter), or return why it cannot run.

    Args:
        pod: the pod.
        pvcs: claims by (namespace, name).
        pvs: volumes by name.
        storage_classes: StorageClasses by name.
    """
    namespace = meta_of(pod).get("namespace", "")
    bound: list[Obj] = []
    delayed: list[tuple[Obj, Obj]] = []
    for volume in spec_of(pod).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            continue
        pvc = pvcs.get((namespace, claim))
        if pvc is None:
            return f'persistentvolumeclaim "{claim}" not found'
        if is_terminating(pvc):
            return f'persistentvolumeclaim "{claim}" is being deleted'
        volume_name = spec_of(pvc).get("volumeName")
        if volume_name:
            if volume_name not in pvs:
                return f'persistentvolume "{volume_name}" not found'
            bound.append(pvs[volume_name])
            continue
        sc_name = spec_of(pvc).get("storageClassName") or ""
        sc = storage_classes.get(sc_name)
        if sc is None and sc_name:
            return f'storageclass.storage.k8s.io "{sc_name}" not found'
        if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            return R_UNBOUND_IMMEDIATE
        delayed.append((pvc, sc))
    return PodVolumes(tuple(bound), tuple(delayed))


def preference(pod: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[int, int]:
    """Return (−preferred affinity weight, untolerated PreferNoSchedule taints).

    Lower is better: the soft NodeAffinity and TaintToleration scores.
    """
    preferred = ((spec_of(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ) or []
    weight = sum(
        int(p.get("weight", 0))
        for p in preferred
        if match_term(p.get("preference") or {}, node)
    )
    tolerations = spec_of(pod).get("tolerations") or []
    soft = sum(
        1
        for t in node_taints(node)
        if t.get("effect") == "PreferNoSchedule"
        and not any(tolerates(x, t) for x in tolerations)
    )
    return -weight, soft


def volume_bindings(
    pod: Mapping[str, Any], node: Mapping[str, Any], volumes: PodVolumes
) -> tuple[VolumeBinding, ...]:
    """Return the WaitForFirstConsumer claims to provision for a pod on a node."""
    return tuple(
        VolumeBinding(
            namespace=str(meta_of(pod).get("namespace", "")),
            claim=str(meta_of(pvc).get("name", "")),
            storage_class=str(meta_of(sc).get("name", "")),
            node_name=str(meta_of(node).get("name", "")),
            zone=labels_of(node).get(ZONE_LABEL),
        )
        for pvc, sc in volumes.delayed
    )
