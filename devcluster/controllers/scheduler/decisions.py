"""kube-scheduler's decisions as pure functions: filters, scoring, preemption, messages.

This module owns *where a pod goes* and *why it cannot go anywhere*, worded like
kube-scheduler (1.33): the filter plugins run per node in the real order
(NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit, VolumeBinding)
and stop at the first failure, reasons are counted and sorted into
``0/N nodes are available: …``, and DefaultPreemption adds ``preemption: …``.
Nothing here does I/O or mutates its inputs; ``devcluster.controllers.scheduler.loop``
acts on the decisions and ``devcluster.controllers.autoscaler.decisions`` reuses
the filters on node templates.

Deliberate simplifications: no inter-pod (anti-)affinity, topology spread, host
ports or PodDisruptionBudgets; WaitForFirstConsumer claims are always provisioned
(static PVs are bound only through ``spec.volumeName``); ties between equally
good nodes go to the first node by name instead of a random one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from devcluster.controllers.predicates import (
    NO_NODES,
    R_AFFINITY,
    R_BIND_CONFLICT,
    R_NO_VICTIMS,
    R_NOT_HELPFUL,
    R_UNSCHEDULABLE,
    R_VOLUME_CONFLICT,
    UNSCHEDULABLE_TAINT,
    PodVolumes,
    Status,
    VolumeBinding,
    affinity_matches,
    fit_message,
    is_terminal,
    is_terminating,
    match_node_selector,
    meta_of,
    pod_volumes,
    preference,
    spec_of,
    taint_reason,
    tolerates,
    topology_matches,
    untolerated_taint,
    volume_bindings,
)
from devcluster.quantity import CPU, MEMORY, PODS, add_into, pod_requests
from devcluster.quantity import allocatable as node_allocatable

Obj = dict[str, Any]

NOT_ELIGIBLE_TERMINATING = (
    "not eligible due to a terminating pod on the nominated node."
)
_PRIORITY_OFFSET = 2**31  # makes negative priorities sum like the real scheduler


@dataclass(frozen=True, slots=True)
class Bound:
    """The pod goes to ``node_name`` (after ``victims`` are gone, if any)."""

    node_name: str
    victims: tuple[Obj, ...] = ()
    volume_bindings: tuple[VolumeBinding, ...] = ()
    message: str = ""
    """With victims: the filter message the preemption answered."""


@dataclass(frozen=True, slots=True)
class Unschedulable:
    """No node fits; ``message`` is the FailedScheduling text."""

    message: str
    reasons: Mapping[str, int] = field(default_factory=dict)


Decision = Bound | Unschedulable


def feasible_nodes_to_find(n_nodes: int) -> int:
    """kube-scheduler's numFeasibleNodesToFind (adaptive percentageOfNodesToScore).

    Filtering stops once this many nodes fit: all of them below 100 nodes, else
    ``50 - n/125`` percent (at least 5 %), and never fewer than 100.
    """
    if n_nodes < 100:
        return n_nodes
    percent = max(50 - n_nodes // 125, 5)
    return max(n_nodes * percent // 100, 100)


class Snapshot:
    """An indexed, read-only view of the cluster that scheduling decisions read.

    Args:
        nodes: Node objects.
        pods: every Pod (bound, nominated and pending).
        pvcs: PersistentVolumeClaims.
        pvs: PersistentVolumes.
        storage_classes: StorageClasses.
        priority_classes: PriorityClasses.
    """

    def __init__(
        self,
        nodes: Iterable[Obj],
        pods: Iterable[Obj],
        pvcs: Iterable[Obj] = (),
        pvs: Iterable[Obj] = (),
        storage_classes: Iterable[Obj] = (),
        priority_classes: Iterable[Obj] = (),
    ) -> None:
        self.nodes = sorted(nodes, key=lambda n: str(meta_of(n).get("name", "")))
        self.on_node: dict[str, list[Obj]] = {}
        self.nominated: dict[str, list[Obj]] = {}
        for pod in pods:
            if is_terminal(pod):
                continue
            node = spec_of(pod).get("nodeName")
            nominated = (pod.get("status") or {}).get("nominatedNodeName")
            if node:
                self.on_node.setdefault(node, []).append(pod)
            elif nominated and not is_terminating(pod):
                self.nominated.setdefault(nominated, []).append(pod)
        self.pvcs = {
            (meta_of(c).get("namespace", ""), meta_of(c).get("name", "")): c
            for c in pvcs
        }
        self.pvs = {meta_of(v).get("name", ""): v for v in pvs}
        self.storage_classes = {meta_of(s).get("name", ""): s for s in storage_classes}
        classes = list(priority_classes)
        self.class_values = {
            meta_of(c).get("name", ""): int(c.get("value", 0)) for c in classes
        }
        self._requests: dict[int, tuple[Mapping[str, Any], dict[str, int]]] = {}
        self._allocatable: dict[int, tuple[Mapping[str, Any], dict[str, int]]] = {}
        self.default_priority = next(
            (int(c.get("value", 0)) for c in classes if c.get("globalDefault")), 0
        )

    # ------------------------------------------------------------ pod facts
    def priority(self, pod: Mapping[str, Any]) -> int:
        """Return a pod's priority (spec.priority, else its class, else the default)."""
        spec = spec_of(pod)
        if spec.get("priority") is not None:
            return int(spec["priority"])
        return self.class_values.get(
            spec.get("priorityClassName") or "", self.default_priority
        )

    def pods_for(self, pod: Mapping[str, Any], node_name: str) -> list[Obj]:
        """Pods occupying a node for ``pod``: bound + nominated ones of ≥ priority."""
        uid = meta_of(pod).get("uid")
        if node_name not in self.nominated:
            bound = self.on_node.get(node_name, [])
            if all(meta_of(p).get("uid") != uid for p in bound):
                return bound
        prio = self.priority(pod)
        nominated = [
            p
            for p in self.nominated.get(node_name, ())
            if meta_of(p).get("uid") != uid and self.priority(p) >= prio
        ]
        return [
            p for p in self.on_node.get(node_name, ()) if meta_of(p).get("uid") != uid
        ] + nominated

    def volumes_of(self, pod: Mapping[str, Any]) -> PodVolumes | str:
        """Resolve the pod's claims, or return the PreFilter failure message."""
        return pod_volumes(pod, self.pvcs, self.pvs, self.storage_classes)

    def requests(self, pod: Mapping[str, Any]) -> dict[str, int]:
        """Return a pod's requests, parsed once per snapshot."""
        hit = self._requests.get(id(pod))
        if hit is None or hit[0] is not pod:
            hit = self._requests[id(pod)] = (pod, pod_requests(pod))
        return hit[1]

    def used(self, pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Return the summed requests of pods, with ``pods`` set to their count."""
        total: dict[str, int] = {PODS: 0}
        for pod in pods:
            add_into(total, self.requests(pod))
            total[PODS] += 1
        return total

    def allocatable(self, node: Mapping[str, Any]) -> dict[str, int]:
        """Return a node's allocatable, parsed once per snapshot."""
        hit = self._allocatable.get(id(node))
        if hit is None or hit[0] is not node:
            hit = self._allocatable[id(node)] = (node, node_allocatable(node))
        return hit[1]

    # -------------------------------------------------------------- filters
    def fit_reasons(
        self, pod: Mapping[str, Any], node: Mapping[str, Any], node_pods: Sequence[Obj]
    ) -> list[str]:
        """NodeResourcesFit: ``Too many pods`` and ``Insufficient <resource>``."""
        alloc = self.allocatable(node)
        used = self.used(node_pods)
        reasons = []
        if used[PODS] + 1 > alloc.get(PODS, 110):
            reasons.append("Too many pods")
        wanted = self.requests(pod)
        order = [CPU, MEMORY, "ephemeral-storage"] + sorted(
            set(wanted) - {CPU, MEMORY, "ephemeral-storage"}
        )
        for name in order:
            if name != PODS and wanted.get(name, 0) > alloc.get(name, 0) - used.get(
                name, 0
            ):
                reasons.append(f"Insufficient {name}")
        return reasons

    def check_node(
        self,
        pod: Mapping[str, Any],
        node: Mapping[str, Any],
        node_pods: Sequence[Obj],
        volumes: PodVolumes,
    ) -> Status | None:
        """Run the filter plugins in order; ``None`` when the pod fits the node."""
        tolerations = spec_of(pod).get("tolerations") or []
        cordon = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
        if spec_of(node).get("unschedulable") and not any(
            tolerates(t, cordon) for t in tolerations
        ):
            return Status((R_UNSCHEDULABLE,))
        taint = untolerated_taint(pod, node)
        if taint is not None:
            return Status((taint_reason(taint),))
        if not affinity_matches(pod, node):
            return Status((R_AFFINITY,))
        reasons = self.fit_reasons(pod, node, node_pods)
        if reasons:
            return Status(tuple(reasons), resolvable=True)
        for pv in volumes.bound:
            required = (spec_of(pv).get("nodeAffinity") or {}).get("required")
            if not match_node_selector(required, node):
                return Status((R_VOLUME_CONFLICT,))
        if any(not topology_matches(sc, node) for _, sc in volumes.delayed):
            return Status((R_BIND_CONFLICT,))
        return None

    # ------------------------------------------------------------- decision
    def schedule(self, pod: Mapping[str, Any]) -> Decision:
        """Decide where a pending pod goes, or why it cannot go anywhere."""
        n_nodes = len(self.nodes)
        volumes = self.volumes_of(pod)
        if isinstance(volumes, str):
            post = "preemption: " + fit_message(n_nodes, "", {R_NOT_HELPFUL: n_nodes})
            return Unschedulable(
                fit_message(n_nodes, volumes, {}, post if n_nodes else ""),
                {volumes: n_nodes},
            )
        statuses: dict[str, Status] = {}
        feasible = []
        for node in self.nodes:
            name = str(meta_of(node).get("name", ""))
            status = self.check_node(pod, node, self.pods_for(pod, name), volumes)
            if status is None:
                feasible.append(node)
                if len(feasible) >= feasible_nodes_to_find(n_nodes):
                    break
            else:
                statuses[name] = status
        if feasible:
            best = min(feasible, key=lambda n: self._score_key(pod, n))
            return Bound(
                str(meta_of(best)["name"]),
                volume_bindings=volume_bindings(pod, best, volumes),
            )
        reasons = Counter(r for s in statuses.values() for r in s.reasons)
        if n_nodes == 0:
            return Unschedulable(NO_NODES, {})
        outcome = self._preempt(pod, volumes, statuses)
        if isinstance(outcome, Bound):
            return replace(outcome, message=fit_message(n_nodes, "", reasons))
        return Unschedulable(fit_message(n_nodes, "", reasons, outcome), dict(reasons))

    def _score_key(
        self, pod: Mapping[str, Any], node: Mapping[str, Any]
    ) -> tuple[int, int, float, str]:
        name = str(meta_of(node).get("name", ""))
        alloc, used = self.allocatable(node), self.used(self.pods_for(pod, name))
        wanted = self.requests(pod)
        free = [
            (alloc.get(r, 0) - used.get(r, 0) - wanted.get(r, 0)) / alloc[r]
            for r in (CPU, MEMORY)
            if alloc.get(r)
        ]
        least_allocated = sum(free) / len(free) if free else 0.0
        return (*preference(pod, node), -least_allocated, name)

    def _preempt(
        self,
        pod: Mapping[str, Any],
        volumes: PodVolumes,
        statuses: Mapping[str, Status],
    ) -> Bound | str:
        """DefaultPreemption: a Bound with victims, or the ``preemption: …`` message."""
        if spec_of(pod).get("preemptionPolicy") == "Never":
            return "preemption: not eligible due to preemptionPolicy=Never."
        prio = self.priority(pod)
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and any(
            is_terminating(p) and self.priority(p) < prio
            for p in self.on_node.get(nominated, ())
        ):
            return f"preemption: {NOT_ELIGIBLE_TERMINATING}"
        outcome: Counter[str] = Counter()
        candidates: list[tuple[str, list[Obj]]] = []
        for node in self.nodes:
            name = str(meta_of(node).get("name", ""))
            if not statuses[name].resolvable:
                outcome[R_NOT_HELPFUL] += 1
                continue
            victims = self._victims(pod, node, volumes, prio, outcome)
            if victims is not None:
                candidates.append((name, victims))
        if not candidates:
            return "preemption: " + fit_message(len(self.nodes), "", outcome)
        name, victims = min(candidates, key=lambda c: self._victim_cost(c[1]) + (c[0],))
        node = next(n for n in self.nodes if meta_of(n).get("name") == name)
        return Bound(
            name,
            victims=tuple(victims),
            volume_bindings=volume_bindings(pod, node, volumes),
        )

    def _victims(
        self,
        pod: Mapping[str, Any],
        node: Mapping[str, Any],
        volumes: PodVolumes,
        prio: int,
        outcome: Counter[str],
    ) -> list[Obj] | None:
        """SelectVictimsOnNode: drop lower-priority pods, reprieve what still fits."""
        others = self.pods_for(pod, str(meta_of(node).get("name", "")))
        lower = [p for p in others if self.priority(p) < prio]
        if not lower:
            outcome[R_NO_VICTIMS] += 1
            return None
        keep = [p for p in others if self.priority(p) >= prio]
        status = self.check_node(pod, node, keep, volumes)
        if status is not None:
            outcome.update(status.reasons)
            return None
        victims = []
        for candidate in sorted(
            lower,
            key=lambda p: (
                -self.priority(p),
                str(meta_of(p).get("creationTimestamp", "")),
            ),
        ):
            if self.check_node(pod, node, [*keep, candidate], volumes) is None:
                keep.append(candidate)
            else:
                victims.append(candidate)
        return victims

    def _victim_cost(self, victims: Sequence[Obj]) -> tuple[int, int, int]:
        priorities = [self.priority(v) for v in victims]
        return (
            max(priorities),
            sum(p + _PRIORITY_OFFSET for p in priorities),
            len(victims),
        )

    # --------------------------------------------------------- bookkeeping
    def assume(self, pod: Obj, node_name: str) -> None:
        """Record that ``pod`` now runs on ``node_name`` (for later decisions)."""
        uid = meta_of(pod).get("uid")
        for pods in self.nominated.values():
            pods[:] = [p for p in pods if meta_of(p).get("uid") != uid]
        bound = {**pod, "spec": {**spec_of(pod), "nodeName": node_name}}
        self.on_node.setdefault(node_name, []).append(bound)

    def nominate(self, pod: Obj, node_name: str) -> None:
        """Record that ``pod`` waits for ``node_name`` after preempting its victims."""
        uid = meta_of(pod).get("uid")
        for pods in self.nominated.values():
            pods[:] = [p for p in pods if meta_of(p).get("uid") != uid]
        status = {**(pod.get("status") or {}), "nominatedNodeName": node_name}
        self.nominated.setdefault(node_name, []).append({**pod, "status": status})


def schedule(
    pod: Mapping[str, Any],
    nodes: Iterable[Obj],
    pods: Iterable[Obj],
    pvcs: Iterable[Obj] = (),
    pvs: Iterable[Obj] = (),
    storage_classes: Iterable[Obj] = (),
    priority_classes: Iterable[Obj] = (),
) -> Decision:
    """Decide where ``pod`` goes among ``nodes``, given the other pods and volumes.

    Returns:
        ``Bound(node_name, victims, volume_bindings)`` or ``Unschedulable(message)``.
    """
    snapshot = Snapshot(nodes, pods, pvcs, pvs, storage_classes, priority_classes)
    return snapshot.schedule(pod)
