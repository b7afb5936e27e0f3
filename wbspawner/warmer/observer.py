"""The observe half of the warmer's loop: list the cluster, remember, snapshot.

This module owns :class:`Observer`, the thin shell that lists Kubernetes objects
through a :class:`KubeReader` and turns them into a
:class:`~wbspawner.warmer.snapshot.ClusterSnapshot`, and the pure helpers that
remember what a single list cannot show: spawns whose pods are gone again, and
spot shortages (failed scale-ups named in Events, spot placeholders that wait
too long, spot interruption notices) that outlive the signal that revealed them.

What it remembers (:meth:`Observer.memory`) outlives a restart of the warmer
through its state file (:meth:`Observer.remember`). It decides nothing; the
policy does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

from wbspawner.model import (
    CAPACITY_TYPES,
    CapacityType,
    Shortage,
    Spawn,
    WaitSample,
    WarmerMemory,
)
from wbspawner.naming import group_tail
from wbspawner.spawn.interruptions import SPOT_ITN_TAINT
from wbspawner.spawn.reclaims import (
    SPOT_INTERRUPTION_REASON,
    reclaims_of_events,
)
from wbspawner.spawn.waits import keep_last
from wbspawner.timestamps import parse_time
from wbspawner.warmer.snapshot import (
    PLACEHOLDER,
    ClusterSnapshot,
    Obj,
    PodInfo,
    home_zones,
    node_info,
    pod_info,
)
from wbspawner.warmer.waits import wait_samples

SHORTAGE_WORDS = re.compile(
    r"InsufficientInstanceCapacity|UnfulfillableCapacity|"
    r"placeholder-cannot-be-fulfilled|cannot provision any more nodes|"
    r"spot capacity|capacity not available|backoff after failed scale-up|"
    r"FailedToScaleUpGroup|Scale-up failed",
    re.IGNORECASE,
)
"""Words of Events that say a group could not get capacity."""


class Clock(Protocol):
    """The warmer's time: now, and where API timestamps fall on it."""

    def now(self) -> datetime:
        """Return the current time (aware)."""
        ...

    def from_api(self, stamp: datetime) -> datetime:
        """Return an API server timestamp on this clock."""
        ...


class WallClock:
    """The real clock (UTC); API timestamps are taken as they are."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def from_api(self, stamp: datetime) -> datetime:
        """Return ``stamp`` unchanged."""
        return stamp


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def group_index(
    pools: Mapping[str, Sequence[str]], region: str
) -> dict[str, tuple[str, str, CapacityType]]:
    """Return the name ending of every Auto Scaling group → (pool, zone, capacity).

    Args:
        pools: zones by pool name.
        region: the region of the zones.

    Returns:
        ``-<pool>-<zone suffix>-<spot|ondemand>`` → what the group holds.
    """
    out: dict[str, tuple[str, str, CapacityType]] = {}
    for pool, zones in pools.items():
        for zone in zones:
            for cap in CAPACITY_TYPES:
                out[f"-{group_tail(pool, zone, region, cap)}"] = (pool, zone, cap)
    return out


def event_shortages(
    events: Iterable[Obj],
    groups: Mapping[str, tuple[str, str, CapacityType]],
    placeholders: Mapping[str, PodInfo],
    clock: Clock,
) -> list[Shortage]:
    """Return shortage signals from failed scale-up or spot capacity Events.

    An Event counts when its text speaks of missing capacity and either names
    one of the pools' groups (``wbspawner-<cluster>-<pool>-<zone>-<capacity>``)
    or is about a placeholder pod (which fits exactly one group): Cluster
    Autoscaler's ``NotTriggerScaleUp … in backoff after failed scale-up``.

    Args:
        events: core/v1 Events.
        groups: :func:`group_index`.
        placeholders: placeholder pods by name.
        clock: maps the Events' timestamps onto the warmer's clock.

    Returns:
        One signal per matching Event, at its last timestamp.
    """
    found: list[Shortage] = []
    for event in events:
        message = f"{event.get('reason', '')}: {event.get('message', '')}"
        stamp = parse_time(event.get("lastTimestamp")) or parse_time(
            event.get("eventTime")
        )
        if not SHORTAGE_WORDS.search(message) or stamp is None:
            continue
        at = clock.from_api(stamp)
        hits = [
            v
            for word in re.findall(r"[A-Za-z0-9._-]+", message)
            for k, v in groups.items()
            if word.endswith(k)
        ]
        pod = placeholders.get(str((event.get("involvedObject") or {}).get("name")))
        if pod is not None and pod.zone and pod.capacity_type:
            hits.append((pod.pool, pod.zone, pod.capacity_type))
        for pool, zone, cap in dict.fromkeys(hits):
            found.append(
                Shortage(
                    pool=pool, zone=zone, capacity_type=cap, at=at, message=message
                )
            )
    return found


def reclaim_shortages(
    nodes: Iterable[Obj],
    events: Iterable[Obj],
    pool_types: Mapping[str, Sequence[str]],
    now: datetime,
    clock: Clock,
) -> list[Shortage]:
    """Return spot shortages from spot interruption notices.

    AWS reclaiming a spot node of pool P in zone Z says that spot capacity of
    P in Z is short: a node of P under a notice (aws-node-termination-handler's
    ``spot-itn`` taint; the node's labels name P and Z), and, once the node is
    gone, NTH's ``SpotInterruption`` Event (its annotations name the instance
    type and zone: every pool with that type).

    Args:
        nodes: core/v1 Nodes.
        events: core/v1 Events (others than ``SpotInterruption`` are skipped).
        pool_types: instance types by pool.
        now: the time of a taint without ``timeAdded``.
        clock: maps API timestamps onto the warmer's clock.

    Returns:
        One signal per tainted node of a pool and per Event and pool.
    """
    found: list[Shortage] = []
    for raw in nodes:
        info = node_info(raw)
        taints = (raw.get("spec") or {}).get("taints") or []
        notice = next((t for t in taints if t.get("key") == SPOT_ITN_TAINT), None)
        if info is None or notice is None:
            continue
        added = parse_time(notice.get("timeAdded"))
        found.append(
            Shortage(
                pool=info.pool,
                zone=info.zone,
                capacity_type="spot",
                at=clock.from_api(added) if added else now,
                message=f"spot node {info.name} got an interruption notice",
            )
        )
    for reclaim in reclaims_of_events(events):
        for pool, types in pool_types.items():
            if reclaim.instance_type in types:
                found.append(
                    Shortage(
                        pool=pool,
                        zone=reclaim.zone,
                        capacity_type="spot",
                        at=clock.from_api(reclaim.at),
                        message=f"spot {reclaim.instance_type} in {reclaim.zone} "
                        "got an interruption notice",
                    )
                )
    return found


def pending_shortages(
    pods: Iterable[PodInfo], now: datetime, after_s: float
) -> list[Shortage]:
    """Return shortage signals from spot placeholders pending for too long.

    Args:
        pods: observed pods.
        now: the current time.
        after_s: seconds a spot placeholder may wait for its node.

    Returns:
        One signal per pool × zone with such a placeholder.
    """
    out: dict[tuple[str, str], Shortage] = {}
    for pod in pods:
        waited = (now - pod.created).total_seconds()
        if (
            pod.role == PLACEHOLDER
            and pod.node is None
            and pod.capacity_type == "spot"
            and pod.zone
            and waited > after_s
        ):
            out[(pod.pool, pod.zone)] = Shortage(
                pool=pod.pool,
                zone=pod.zone,
                capacity_type="spot",
                at=now,
                message=f"placeholder {pod.name} has waited {waited:.0f} s for a node",
            )
    return list(out.values())


def remember_spawns(
    known: Mapping[str, Spawn],
    pods: Iterable[Obj],
    infos: Mapping[str, PodInfo],
    homes: Mapping[str, str],
    since: datetime,
) -> dict[str, Spawn]:
    """Return the spawns seen so far (by pod uid), those older than ``since`` dropped.

    Args:
        known: spawns remembered before.
        pods: raw pods (for their uids).
        infos: :func:`pod_info` results by pod name.
        homes: user → home zone (the zone of a pod not yet placed).
        since: forget spawns before this time.

    Returns:
        A new mapping.
    """
    out = {uid: s for uid, s in known.items() if s.at >= since}
    for pod in pods:
        info = infos.get(str(_meta(pod).get("name", "")))
        uid = str(_meta(pod).get("uid") or "")
        if info is None or info.role != "user" or info.created < since or not uid:
            continue
        zone = info.zone or (homes.get(info.user) if info.user else None)
        previous = out.get(uid)
        if previous is None or (previous.zone is None and zone):
            out[uid] = Spawn(
                uid=uid, user=info.user, pool=info.pool, zone=zone, at=info.created
            )
    return out


# ----------------------------------------------------------------- observer


class KubeReader(Protocol):
    """What the observer needs from Kubernetes (plain JSON objects)."""

    async def list_nodes(self) -> list[dict[str, Any]]:
        """List every Node."""
        ...

    async def list_pods(self, namespace: str) -> list[dict[str, Any]]:
        """List the Pods of a namespace."""
        ...

    async def list_pvcs(self, namespace: str) -> list[dict[str, Any]]:
        """List the PersistentVolumeClaims of a namespace."""
        ...

    async def list_pvs(self) -> list[dict[str, Any]]:
        """List every PersistentVolume."""
        ...

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """List Events of a namespace (``None``: all namespaces), by field selector."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ObserveSettings:
    """What the observer looks at and how long it remembers."""

    namespace: str
    """Namespace of user pods, homes and placeholders."""
    pool_zones: Mapping[str, tuple[str, ...]]
    """Zones by pool (to read group names in Events)."""
    region: str
    demand_window_s: float = 3600.0
    shortage_ttl_s: float = 900.0
    """How long a shortage signal is kept."""
    pending_shortage_s: float = 600.0
    """Seconds a spot placeholder may wait for a node before it signals a shortage."""
    pool_types: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Instance types by pool (to read spot interruption Events)."""


class Observer:
    """Takes snapshots, remembering spawns and shortages between them.

    Args:
        kube: the Kubernetes reader.
        settings: what to look at.
        clock: the warmer's clock (maps API timestamps; default the real one).
    """

    def __init__(
        self, kube: KubeReader, settings: ObserveSettings, clock: Clock | None = None
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.clock: Clock = clock or WallClock()
        self._spawns: dict[str, Spawn] = {}
        self._shortages: list[Shortage] = []
        self._user_pools: dict[str, tuple[str, ...]] = {}
        self.waits: tuple[WaitSample, ...] = ()
        """The last cold starts per pool and zone (kept in the memory file)."""

    def memory(self) -> WarmerMemory:
        """Return what the observer remembers (for the next run of the warmer)."""
        return WarmerMemory(
            spawns=tuple(sorted(self._spawns.values(), key=lambda x: (x.at, x.uid))),
            shortages=tuple(self._shortages),
            waits=self.waits,
        )

    def remember(self, memory: WarmerMemory) -> None:
        """Take up what an earlier run remembered (before the first snapshot).

        What is too old is dropped at the next snapshot, as if it had been
        remembered all along.

        Args:
            memory: the spawns and shortages remembered.
        """
        self._spawns = {s.uid: s for s in memory.spawns}
        self._shortages = list(memory.shortages)
        self.waits = memory.waits

    async def observe(
        self,
        now: datetime,
        last_pools: Mapping[str, str] | None = None,
        spot_prices: Mapping[tuple[str, str], float] | None = None,
    ) -> ClusterSnapshot:
        """List the cluster and return a snapshot.

        Args:
            now: the current time (the injected clock's).
            last_pools: user → pool of their last size, from the hub (optional).
            spot_prices: observed spot prices (optional).

        Returns:
            The snapshot.
        """
        ns = self.settings.namespace
        raw_nodes = await self.kube.list_nodes()
        raw_pods = await self.kube.list_pods(ns)
        homes = home_zones(await self.kube.list_pvcs(ns), await self.kube.list_pvs())
        # Only the two kinds of Event that can signal a shortage, not all of them
        # (a busy cluster has thousands): Cluster Autoscaler's word on a pod that
        # did not trigger a scale-up, and on a group whose scale-up failed.
        events = await self.kube.list_events(ns, "reason=NotTriggerScaleUp")
        events += await self.kube.list_events(None, "reason=FailedToScaleUpGroup")
        # aws-node-termination-handler's notices, about Nodes (in ``default``).
        events += await self.kube.list_events(
            None, f"reason={SPOT_INTERRUPTION_REASON}"
        )
        return self.ingest(
            now, raw_nodes, raw_pods, homes, events, last_pools, spot_prices
        )

    def ingest(
        self,
        now: datetime,
        raw_nodes: Sequence[Obj],
        raw_pods: Sequence[Obj],
        homes: Mapping[str, str],
        events: Sequence[Obj],
        last_pools: Mapping[str, str] | None = None,
        spot_prices: Mapping[tuple[str, str], float] | None = None,
    ) -> ClusterSnapshot:
        """Build a snapshot from listed objects and update the memory (no I/O).

        Returns:
            The snapshot.
        """
        s = self.settings
        nodes = {n.name: n for n in map(node_info, raw_nodes) if n is not None}
        infos = {
            p.name: p
            for p in (
                pod_info(pod, nodes, now, self.clock.from_api) for pod in raw_pods
            )
            if p is not None
        }
        pods = tuple(infos.values())
        since = now - timedelta(seconds=s.demand_window_s)
        self._spawns = remember_spawns(self._spawns, raw_pods, infos, homes, since)
        self.waits = keep_last(self.waits, wait_samples(raw_pods, raw_nodes, now))
        # A user's pool is the one of their last size: a pod seen now, else the
        # hub's record of their last spawn, else a pod seen earlier.
        running = {p.user: p.pool for p in pods if p.user}
        self._user_pools.update({u: (p,) for u, p in (last_pools or {}).items()})
        self._user_pools.update({u: (p,) for u, p in running.items()})
        placeholders = {p.name: p for p in pods if p.role == PLACEHOLDER}
        groups = group_index(s.pool_zones, s.region)
        fresh = event_shortages(events, groups, placeholders, self.clock)
        fresh += pending_shortages(pods, now, s.pending_shortage_s)
        fresh += reclaim_shortages(raw_nodes, events, s.pool_types, now, self.clock)
        keep_after = now - timedelta(seconds=s.shortage_ttl_s)
        self._shortages = [x for x in self._shortages + fresh if x.at >= keep_after]
        return ClusterSnapshot(
            taken_at=now,
            nodes=tuple(nodes.values()),
            pods=pods,
            homes=MappingProxyType(dict(homes)),
            user_pools=MappingProxyType(dict(self._user_pools)),
            spawns=tuple(sorted(self._spawns.values(), key=lambda x: x.at)),
            shortages=tuple(_dedupe(self._shortages)),
            spot_prices=MappingProxyType(dict(spot_prices or {})),
            waits=self.waits,
        )


def _dedupe(shortages: Sequence[Shortage]) -> list[Shortage]:
    """Keep the newest signal per pool × zone × capacity type."""
    newest: dict[tuple[str, str, str], Shortage] = {}
    for item in shortages:
        key = (item.pool, item.zone, item.capacity_type)
        if key not in newest or newest[key].at < item.at:
            newest[key] = item
    return sorted(newest.values(), key=lambda x: (x.pool, x.zone, x.capacity_type))
