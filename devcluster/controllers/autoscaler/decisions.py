"""Cluster Autoscaler's decisions as pure functions: scale-up, expanders, scale-down.

This module owns *which Auto Scaling group grows and which node goes*:

* pending pods (PodScheduled=False/Unschedulable, priority ≥ the expendable
  cutoff) are first fitted onto nodes that are already booting, then simulated
  onto each group's template node with the scheduler's own filters, bin-packed,
  and one group is picked by the ``priority`` expander (ConfigMap
  ``cluster-autoscaler-priority-expander``, regexes over group names, highest
  wins) or ``least-waste``; MaxSize caps every scale-up;
* a node is unneeded when only DaemonSet, mirror, finished or expendable pods
  (priority < cutoff) run on it and it is not annotated
  ``cluster-autoscaler.kubernetes.io/scale-down-disabled``; after the unneeded
  time it is removed, never taking a group below MinSize.

Differences from the real CA, on purpose: the template's allocatable is the
kubelet's real allocatable from :mod:`wbspawner.catalog.sizing`, not nominal RAM
(real CA believes ``allocatable = capacity`` and may start a node that cannot host a
full-node pod); ties between equally good groups go to the first by name instead
of a random one; only nodes without blocking pods are removed (no
utilization-threshold drain); there is no scale-down delay after a scale-up.
Group discovery and node templates: ``devcluster.controllers.autoscaler.asg`` and
``devcluster.controllers.nodes``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from devcluster.controllers.autoscaler.asg import NodeGroup
from devcluster.controllers.predicates import is_terminal, is_terminating
from devcluster.controllers.scheduler.decisions import Bound, Snapshot
from devcluster.quantity import CPU, MEMORY, allocatable, pod_requests

Obj = dict[str, Any]

SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
PRIORITY_CONFIGMAP = "cluster-autoscaler-priority-expander"
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
R_MAX = "max node group size reached"
R_BACKOFF = "in backoff after failed scale-up"


@dataclass(frozen=True, slots=True)
class Option:
    """Growing one group by ``count`` nodes would host ``pods``."""

    group: NodeGroup
    count: int
    pods: tuple[Obj, ...]


@dataclass(frozen=True, slots=True)
class ScaleUpPlan:
    """What one autoscaler loop does for the pending pods."""

    option: Option | None
    not_triggered: Mapping[str, str]
    """``namespace/name`` → ``pod didn't trigger scale-up: …`` message."""
    upcoming: tuple[str, ...] = ()
    """Pods expected to fit nodes that are already booting."""


@dataclass(frozen=True, slots=True)
class ScaleDownPlan:
    """Unneeded nodes (with since when) and the nodes to remove now."""

    unneeded: Mapping[str, float]
    remove: tuple[tuple[str, str], ...]
    """(node name, group name) pairs."""


def pod_key(pod: Mapping[str, Any]) -> str:
    """Return ``namespace/name`` of a pod."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


# ------------------------------------------------------------------ expanders


def parse_priorities(text: str) -> list[tuple[int, list[re.Pattern[str]]]]:
    """Parse the priority expander's ``priorities`` YAML (``{int: [regex, …]}``).

    Returns:
        (priority, patterns) pairs, highest priority first.

    Raises:
        ValueError: the text is not such a mapping or a regex is invalid.
    """
    try:
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError("priorities must be a mapping of integers to lists")
        out = [
            (int(p), [re.compile(str(r)) for r in (v or [])]) for p, v in data.items()
        ]
    except (yaml.YAMLError, TypeError, re.error) as err:
        raise ValueError(f"invalid priority expander configuration: {err}") from err
    return sorted(out, key=lambda item: -item[0])


def waste_score(option: Option, template: Mapping[str, Any]) -> float:
    """Return least-waste's score: unused CPU fraction + unused memory fraction."""
    alloc = allocatable(template)
    score = 0.0
    for resource in (CPU, MEMORY):
        available = alloc.get(resource, 0) * option.count
        if available <= 0:
            continue
        requested = sum(pod_requests(p).get(resource, 0) for p in option.pods)
        score += (available - requested) / available
    return score


def choose(
    options: Sequence[Option],
    expander: str,
    priorities: Sequence[tuple[int, Sequence[re.Pattern[str]]]],
    templates: Mapping[str, Mapping[str, Any]],
) -> Option | None:
    """Pick one option by ``priority`` (then least-waste) or by ``least-waste``."""
    if not options:
        return None
    pool = list(options)
    if expander == "priority" and priorities:
        ranked = [
            (
                next(
                    (
                        p
                        for p, pats in priorities
                        if any(r.search(o.group.name) for r in pats)
                    ),
                    None,
                ),
                o,
            )
            for o in pool
        ]
        matched = [(p, o) for p, o in ranked if p is not None]
        if matched:
            top = max(p for p, _ in matched)
            pool = [o for p, o in matched if p == top]
    return min(
        pool, key=lambda o: (waste_score(o, templates[o.group.name]), o.group.name)
    )


# ------------------------------------------------------------------- scale-up


def _pack(
    snapshot: Snapshot,
    pod: Obj,
    template: Mapping[str, Any],
    bins: list[list[Obj]],
    limit: int,
) -> bool:
    """First-fit ``pod`` into ``bins`` (new template nodes), opening up to ``limit``."""
    volumes = snapshot.volumes_of(pod)
    if isinstance(volumes, str):
        return False
    for placed in bins:
        if snapshot.check_node(pod, template, placed, volumes) is None:
            placed.append(pod)
            return True
    if len(bins) < limit and snapshot.check_node(pod, template, [], volumes) is None:
        bins.append([pod])
        return True
    return False


def _group_reasons(
    snapshot: Snapshot,
    pod: Obj,
    group: NodeGroup,
    template: Mapping[str, Any],
    backed_off: Iterable[str],
) -> tuple[str, ...]:
    if group.name in backed_off:
        return (R_BACKOFF,)
    if group.desired >= group.max_size:
        return (R_MAX,)
    volumes = snapshot.volumes_of(pod)
    if isinstance(volumes, str):
        return (volumes,)
    status = snapshot.check_node(pod, template, [], volumes)
    return status.reasons if status is not None else ()


def plan_scale_up(
    pending: Sequence[Obj],
    groups: Sequence[NodeGroup],
    templates: Mapping[str, Mapping[str, Any]],
    snapshot: Snapshot,
    registered: Mapping[str, int],
    *,
    expander: str = "priority",
    priorities: Sequence[tuple[int, Sequence[re.Pattern[str]]]] = (),
    backed_off: Iterable[str] = (),
) -> ScaleUpPlan:
    """Decide one scale-up for the pending pods (or none), like one CA loop.

    Args:
        pending: unschedulable pods that may trigger a scale-up.
        groups: the discovered groups.
        templates: template Node per group name.
        snapshot: the cluster view (volumes, priorities).
        registered: group name → nodes already registered for it.
        expander: ``priority`` or ``least-waste``.
        priorities: parsed priority expander configuration.
        backed_off: groups in backoff after a failed scale-up.
    """
    backed_off = set(backed_off)
    pods = sorted(
        pending,
        key=lambda p: (
            -snapshot.priority(p),
            str((p.get("metadata") or {}).get("creationTimestamp", "")),
        ),
    )
    upcoming, waiting = _on_booting_nodes(pods, groups, templates, snapshot, registered)
    options = []
    for group in groups:
        if group.name in backed_off or group.desired >= group.max_size:
            continue
        bins: list[list[Obj]] = []
        room = group.max_size - group.desired
        template = templates[group.name]
        helped = [p for p in waiting if _pack(snapshot, p, template, bins, room)]
        if bins:
            options.append(Option(group, len(bins), tuple(helped)))
    chosen = choose(options, expander, priorities, templates)
    helped_keys = {pod_key(p) for o in options for p in o.pods}
    not_triggered = {}
    for pod in waiting:
        if pod_key(pod) in helped_keys:
            continue
        counts = Counter(
            r
            for g in groups
            for r in _group_reasons(snapshot, pod, g, templates[g.name], backed_off)
        )
        items = sorted(f"{n} {reason}" for reason, n in counts.items())
        message = "pod didn't trigger scale-up: " + ", ".join(items)
        not_triggered[pod_key(pod)] = message.rstrip()
    return ScaleUpPlan(chosen, not_triggered, tuple(upcoming))


def _on_booting_nodes(
    pods: Sequence[Obj],
    groups: Sequence[NodeGroup],
    templates: Mapping[str, Mapping[str, Any]],
    snapshot: Snapshot,
    registered: Mapping[str, int],
) -> tuple[list[str], list[Obj]]:
    """Split pods into those that fit nodes already booting and the rest."""
    booting: dict[str, list[list[Obj]]] = {
        g.name: [[] for _ in range(max(0, g.desired - registered.get(g.name, 0)))]
        for g in groups
    }
    upcoming: list[str] = []
    waiting: list[Obj] = []
    for pod in pods:
        placed = any(
            _pack(snapshot, pod, templates[g.name], booting[g.name], 0)
            for g in groups
            if booting[g.name]
        )
        if placed:
            upcoming.append(pod_key(pod))
        else:
            waiting.append(pod)
    return upcoming, waiting


def scale_up_candidates(
    pods: Iterable[Obj], snapshot: Snapshot, cutoff: int
) -> list[Obj]:
    """Return the pods a scale-up is for.

    Unschedulable (PodScheduled=False, reason Unschedulable), not nominated for a
    node after preemption, priority ≥ ``cutoff``, and not fitting an existing
    node (CA's filterOutSchedulable: the scheduler may not have caught up yet).
    """
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        conditions = status.get("conditions") or []
        cond: Obj = next((c for c in conditions if c.get("type") == "PodScheduled"), {})
        if (
            (pod.get("spec") or {}).get("nodeName")
            or is_terminating(pod)
            or status.get("nominatedNodeName")
            or (cond.get("status"), cond.get("reason")) != ("False", "Unschedulable")
            or snapshot.priority(pod) < cutoff
        ):
            continue
        decision = snapshot.schedule(pod)
        if not isinstance(decision, Bound) or decision.victims:
            out.append(pod)
    return out


def scale_up_message(option: Option) -> str:
    """Return the TriggeredScaleUp event text for an option."""
    group = option.group
    sizes = f"{group.desired}->{group.desired + option.count} (max: {group.max_size})"
    return f"pod triggered scale-up: [{{{group.name} {sizes}}}]"


# ----------------------------------------------------------------- scale-down


def blocks_scale_down(pod: Mapping[str, Any], priority: int, cutoff: int) -> bool:
    """Tell whether a pod keeps its node (not done, DaemonSet, mirror or expendable)."""
    meta = pod.get("metadata") or {}
    if is_terminal(pod) or priority < cutoff:
        return False
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return False
    return not any(
        r.get("kind") == "DaemonSet" for r in meta.get("ownerReferences") or []
    )


def plan_scale_down(
    nodes: Sequence[Mapping[str, Any]],
    groups: Mapping[str, NodeGroup],
    group_of: Callable[[Mapping[str, Any]], str | None],
    snapshot: Snapshot,
    *,
    cutoff: int,
    unneeded_since: Mapping[str, float],
    now: float,
    unneeded_s: float,
) -> ScaleDownPlan:
    """Find unneeded nodes and those unneeded long enough to remove (MinSize kept).

    Args:
        nodes: every Node.
        groups: discovered groups by name.
        group_of: the group a node belongs to (``None`` for other nodes).
        snapshot: the cluster view (pods per node, priorities).
        cutoff: expendable pods priority cutoff.
        unneeded_since: node → when it was first seen unneeded (previous plan).
        now: current time (seconds, any clock).
        unneeded_s: how long a node must be unneeded before removal.
    """
    unneeded: dict[str, float] = {}
    remove: list[tuple[str, str]] = []
    targets = {name: g.desired for name, g in groups.items()}
    for node in nodes:
        meta = node.get("metadata") or {}
        name, group = str(meta.get("name", "")), group_of(node)
        if (
            group is None
            or group not in groups
            or (meta.get("annotations") or {}).get(SCALE_DOWN_DISABLED) == "true"
        ):
            continue
        if any(
            t.get("key") == TO_BE_DELETED_TAINT
            for t in (node.get("spec") or {}).get("taints") or []
        ):
            continue
        pods = snapshot.on_node.get(name, [])
        if any(blocks_scale_down(p, snapshot.priority(p), cutoff) for p in pods):
            continue
        since = unneeded_since.get(name, now)
        unneeded[name] = since
        if now - since >= unneeded_s and targets[group] > groups[group].min_size:
            targets[group] -= 1
            remove.append((name, group))
    return ScaleDownPlan(unneeded, tuple(remove))


def template_name(group: NodeGroup) -> str:
    """Return the name CA gives a group's template node."""
    return f"template-node-for-{group.name}"
