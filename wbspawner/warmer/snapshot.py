"""What the warmer observed: the cluster snapshot and how objects become it.

This module owns the :class:`ClusterSnapshot` the policy decides from and the
pure functions that read raw Kubernetes objects (plain JSON dicts, camelCase):
pool nodes, user and placeholder pods, the zones of users' homes.
:mod:`wbspawner.warmer.observer` lists the objects and remembers what a single
list cannot show.

Pure: no I/O, and it decides nothing (no counts, no prices). Times are
timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from wbspawner.homes.policy import zone_of_pv
from wbspawner.model import (
    CAPACITY_LABEL,
    LABEL_PREFIX,
    POOL_LABEL,
    USER_LABEL,
    ZONE_LABEL,
    CapacityType,
    Shortage,
    Spawn,
    WaitSample,
)
from wbspawner.timestamps import parse_time

Obj = Mapping[str, Any]
ROLE_LABEL = f"{LABEL_PREFIX}/role"
"""Label that marks wbspawner's own pods (``placeholder``)."""
PLACEHOLDER = "placeholder"
HUB_USER_KEY = "hub.jupyter.org/username"
"""KubeSpawner's label (escaped) and annotation (exact) with the user name."""
HOME_PREFIX = "home-"
"""Home claims are ``home-<user>`` (``manifests.HOME_PVC_TEMPLATE``)."""
_OTHER_CAPACITY_LABELS = {
    "eks.amazonaws.com/capacityType": {"SPOT": "spot", "ON_DEMAND": "on-demand"},
    "karpenter.sh/capacity-type": {"spot": "spot", "on-demand": "on-demand"},
}
Role = Literal["user", "placeholder"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """A node of one of the pools."""

    name: str
    pool: str
    zone: str
    capacity_type: CapacityType
    ready: bool
    """Ready and schedulable (not cordoned, not being removed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PodInfo:
    """A user's server pod or a placeholder pod, alive (not finished, not deleting)."""

    name: str
    role: Role
    pool: str
    zone: str | None
    """The node's zone once bound, else the zone the pod selects (if any)."""
    capacity_type: CapacityType | None
    """The node's capacity type once bound, else the selected one (if any)."""
    node: str | None
    """Node the pod is bound to."""
    running: bool
    """Phase Running on a ready node."""
    created: datetime
    user: str | None = None
    """Hub user name of a user pod."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSnapshot:
    """Everything the policy may look at, taken at one moment."""

    taken_at: datetime
    nodes: tuple[NodeInfo, ...] = ()
    pods: tuple[PodInfo, ...] = ()
    homes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """User → zone of their home volume."""
    user_pools: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """User → pools they use (last size from the hub, pods seen); may be empty."""
    spawns: tuple[Spawn, ...] = ()
    """Spawns remembered within the demand window."""
    shortages: tuple[Shortage, ...] = ()
    """Capacity shortage signals remembered within their time to live."""
    spot_prices: Mapping[tuple[str, str], float] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Observed spot prices by (instance type, zone)."""
    habits: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """User → minutes of the day (warm settings' time zone) they started servers
    at within ``habit_days``; a user without recorded starts is absent."""
    waits: tuple[WaitSample, ...] = ()
    """The last cold starts observed per pool and zone, oldest first."""
    running_users: frozenset[str] = field(init=False, repr=False, compare=False)
    """Users with a user pod now (derived from :attr:`pods`)."""
    users_by_pool: Mapping[str, tuple[str, ...]] = field(
        init=False, repr=False, compare=False
    )
    """Pool → the users known to use it, sorted (derived from :attr:`user_pools`)."""

    def __post_init__(self) -> None:
        # Indexes made once: the policy asks them per pool × zone, and scanning
        # every pod and user each time made a plan of 100 pools × 3 zones with
        # 1,000 nodes take ~0.4 s (bench/bench_scale.py, part c).
        running = frozenset(p.user for p in self.pods if p.role == "user" and p.user)
        by_pool: dict[str, set[str]] = {}
        for user, pools in self.user_pools.items():
            for pool in pools:
                by_pool.setdefault(pool, set()).add(user)
        index = {pool: tuple(sorted(users)) for pool, users in by_pool.items()}
        object.__setattr__(self, "running_users", running)
        object.__setattr__(self, "users_by_pool", MappingProxyType(index))

    def user_pods(self) -> tuple[PodInfo, ...]:
        """Return the user pods."""
        return tuple(p for p in self.pods if p.role == "user")

    def placeholders(self) -> tuple[PodInfo, ...]:
        """Return the placeholder pods."""
        return tuple(p for p in self.pods if p.role == PLACEHOLDER)


# ---------------------------------------------------------------- parsing


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Obj) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def capacity_of(labels: Mapping[str, str]) -> CapacityType | None:
    """Return a node's capacity type from wbspawner's, EKS's or Karpenter's label.

    Args:
        labels: the node's labels.

    Returns:
        ``spot``, ``on-demand`` or ``None`` when no label says.
    """
    own = labels.get(CAPACITY_LABEL)
    if own in ("spot", "on-demand"):
        return "spot" if own == "spot" else "on-demand"
    for key, values in _OTHER_CAPACITY_LABELS.items():
        found = values.get(labels.get(key, ""))
        if found is not None:
            return "spot" if found == "spot" else "on-demand"
    return None


def node_info(node: Obj) -> NodeInfo | None:
    """Return a pool node's info, or ``None`` for nodes of no pool.

    Args:
        node: a core/v1 Node.

    Returns:
        The info; a node without a zone or capacity label is skipped too.
    """
    labels = _labels(node)
    pool, zone = labels.get(POOL_LABEL), labels.get(ZONE_LABEL)
    capacity = capacity_of(labels)
    if not pool or not zone:
        return None
    spec = node.get("spec") or {}
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )
    deleting = any(
        t.get("key") == "ToBeDeletedByClusterAutoscaler"
        for t in spec.get("taints") or []
    )
    schedulable = not spec.get("unschedulable") and not deleting
    return NodeInfo(
        name=str(_meta(node).get("name", "")),
        pool=pool,
        zone=zone,
        capacity_type=capacity or "on-demand",
        ready=ready and schedulable,
    )


def pod_user(pod: Obj) -> str | None:
    """Return the hub user of a pod from its annotations or labels.

    Args:
        pod: a core/v1 Pod (or PVC: the same keys).

    Returns:
        The exact name from an annotation, else a label value, else ``None``.
    """
    annotations = _meta(pod).get("annotations") or {}
    labels = _labels(pod)
    for source in (annotations, labels):
        for key in (USER_LABEL, HUB_USER_KEY):
            value = source.get(key)
            if value:
                return str(value)
    return None


def _role(pod: Obj) -> Role | None:
    labels = _labels(pod)
    if labels.get(ROLE_LABEL) == PLACEHOLDER:
        return "placeholder"
    if USER_LABEL in labels or labels.get("component") == "singleuser-server":
        return "user"
    return None


def pod_info(
    pod: Obj,
    nodes: Mapping[str, NodeInfo],
    now: datetime,
    to_clock: Callable[[datetime], datetime] | None = None,
) -> PodInfo | None:
    """Return a user or placeholder pod's info; ``None`` for others and dead pods.

    Args:
        pod: a core/v1 Pod.
        nodes: pool nodes by name.
        now: the current time (a pod without a creation time was made now).
        to_clock: maps API timestamps onto the warmer's clock (identity: none).

    Returns:
        The info, or ``None`` when the pod is not ours, finished or deleting.
    """
    role = _role(pod)
    meta = _meta(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if role is None or meta.get("deletionTimestamp"):
        return None
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    selector = spec.get("nodeSelector") or {}
    pool = _labels(pod).get(POOL_LABEL) or selector.get(POOL_LABEL)
    if not pool:
        return None
    node = nodes.get(str(spec.get("nodeName") or ""))
    selected = selector.get(CAPACITY_LABEL)
    stamp = parse_time(meta.get("creationTimestamp"))
    created = now if stamp is None else (to_clock(stamp) if to_clock else stamp)
    return PodInfo(
        name=str(meta.get("name", "")),
        role=role,
        pool=str(pool),
        zone=node.zone if node else selector.get(ZONE_LABEL),
        capacity_type=(
            node.capacity_type
            if node
            else (selected if selected in ("spot", "on-demand") else None)
        ),
        node=node.name if node else (spec.get("nodeName") or None),
        running=status.get("phase") == "Running" and bool(node and node.ready),
        created=created,
        user=pod_user(pod) if role == "user" else None,
    )


def home_zones(pvcs: Iterable[Obj], pvs: Iterable[Obj]) -> dict[str, str]:
    """Return user → zone of every bound home claim.

    Args:
        pvcs: claims of the hub's namespace (only ``home-*`` ones are read).
        pvs: every PersistentVolume.

    Returns:
        The zone of each user's home.
    """
    zones = {str(_meta(pv).get("name")): zone_of_pv(pv) for pv in pvs}
    out: dict[str, str] = {}
    for pvc in pvcs:
        name = str(_meta(pvc).get("name", ""))
        volume = (pvc.get("spec") or {}).get("volumeName")
        if not name.startswith(HOME_PREFIX) or not volume:
            continue
        zone = zones.get(str(volume))
        if zone:
            out[pod_user(pvc) or name[len(HOME_PREFIX) :]] = zone
    return out
