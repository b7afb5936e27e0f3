"""Spot capacity being reclaimed, as the cluster shows it, and how a start avoids it.

AWS reclaims spot capacity per *spot capacity pool*: one instance type in one
availability zone. After a reclaim that pool is likely to be reclaimed again
soon, so the next start of a server in that zone (its home pins it there)
prefers capacity that is not being reclaimed: another spot type of its pool,
else on-demand, for :data:`AVOID_S`.

What was reclaimed is read from the cluster, not from the hub's memory, so a
restarted hub decides the same:

- :func:`reclaims_of_nodes`: nodes under a spot interruption notice now
  (aws-node-termination-handler's ``spot-itn`` taint; the node carries its
  instance type and zone as labels);
- :func:`reclaims_of_events`: aws-node-termination-handler's
  ``SpotInterruption`` Events, which outlive the node (the API server keeps
  Events for an hour by default) and carry the instance's type and zone as
  the annotations ``instance-type`` and ``availability-zone``.

:func:`avoidance` turns them into the required node affinity of one start
(:class:`Avoidance`) and the words the user reads on the progress page. The
affinity leaves the choice to the cluster: the scheduler takes a ready node of
another spot type when there is one, and Cluster Autoscaler, which models a
group by its first instance type, starts the pool's on-demand group when the
spot group's type is the one reclaimed.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wbspawner.model import CAPACITY_LABEL, INSTANCE_TYPE_LABEL, ZONE_LABEL, Pool
from wbspawner.spawn.interruptions import SPOT_ITN_TAINT
from wbspawner.timestamps import parse_time

SPOT_INTERRUPTION_REASON = "SpotInterruption"
"""The reason of aws-node-termination-handler's Event about a spot notice."""
EVENT_TYPE_ANNOTATION = "instance-type"
EVENT_ZONE_ANNOTATION = "availability-zone"
"""aws-node-termination-handler's default annotations on its Events (from IMDS)."""
AVOID_S = 1800.0
"""How long a start avoids a reclaimed spot type in a zone, seconds.

Thirty minutes: the longest backoff Cluster Autoscaler gives a group whose
scale-up failed (``--max-node-group-backoff-duration``), the same judgement of
how long capacity trouble in a group lasts; well within the hour the API
server keeps Events (``--event-ttl``), so a restarted hub still sees them."""


@dataclass(frozen=True, slots=True)
class Reclaim:
    """A spot instance of one type in one zone got an interruption notice."""

    instance_type: str
    zone: str
    at: datetime
    """When the notice came (aware)."""


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return ((obj.get("metadata") or {}).get("labels")) or {}


def reclaims_of_nodes(
    nodes: Iterable[Mapping[str, Any]], now: datetime
) -> list[Reclaim]:
    """Return the reclaims announced by nodes' ``spot-itn`` taints.

    Args:
        nodes: core/v1 Nodes.
        now: the time of a taint without ``timeAdded``.

    Returns:
        One reclaim per tainted node that names its instance type and zone.
    """
    found = []
    for node in nodes:
        labels = _labels(node)
        itype, zone = labels.get(INSTANCE_TYPE_LABEL), labels.get(ZONE_LABEL)
        for taint in (node.get("spec") or {}).get("taints") or []:
            if taint.get("key") == SPOT_ITN_TAINT and itype and zone:
                at = parse_time(taint.get("timeAdded")) or now
                found.append(Reclaim(str(itype), str(zone), at))
    return found


def reclaims_of_events(events: Iterable[Mapping[str, Any]]) -> list[Reclaim]:
    """Return the reclaims aws-node-termination-handler's Events record.

    Args:
        events: core/v1 Events (others than ``SpotInterruption`` are skipped).

    Returns:
        One reclaim per Event that names the instance type and zone, at its
        last timestamp.
    """
    found = []
    for event in events:
        if event.get("reason") != SPOT_INTERRUPTION_REASON:
            continue
        notes = (event.get("metadata") or {}).get("annotations") or {}
        itype, zone = notes.get(EVENT_TYPE_ANNOTATION), notes.get(EVENT_ZONE_ANNOTATION)
        at = (
            parse_time(event.get("lastTimestamp"))
            or parse_time(event.get("eventTime"))
            or parse_time(event.get("firstTimestamp"))
        )
        if itype and zone and at is not None:
            found.append(Reclaim(str(itype), str(zone), at))
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Avoidance:
    """How one start avoids spot capacity being reclaimed in its zone."""

    reclaimed: tuple[str, ...]
    """The pool's spot types reclaimed in the zone within the window."""
    other_spot: tuple[str, ...]
    """The pool's spot types not reclaimed (the start may take one)."""
    on_demand: bool
    """Whether the pool has on-demand capacity to fall back on."""
    message: str
    """What the user reads on the progress page (and the log)."""

    @property
    def node_affinity_required(self) -> list[dict[str, Any]]:
        """Return the node selector terms (ORed) a node must match.

        A node of another spot type of the pool, or an on-demand node. The pool
        and zone stay in the pod's node selector.
        """
        terms: list[dict[str, Any]] = []
        if self.other_spot:
            terms.append(
                {
                    "matchExpressions": [
                        {"key": CAPACITY_LABEL, "operator": "In", "values": ["spot"]},
                        {
                            "key": INSTANCE_TYPE_LABEL,
                            "operator": "NotIn",
                            "values": list(self.reclaimed),
                        },
                    ]
                }
            )
        if self.on_demand:
            terms.append(
                {
                    "matchExpressions": [
                        {
                            "key": CAPACITY_LABEL,
                            "operator": "In",
                            "values": ["on-demand"],
                        }
                    ]
                }
            )
        return terms


def _ago(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''} ago"


def avoidance(
    pool: Pool,
    zone: str | None,
    reclaims: Iterable[Reclaim],
    now: datetime,
    window_s: float = AVOID_S,
) -> Avoidance | None:
    """Return how a start of the pool in the zone avoids reclaimed spot capacity.

    Args:
        pool: the size's pool.
        zone: the zone the start is pinned to (the home's); ``None``: not pinned,
            nothing to avoid.
        reclaims: reclaims seen in the cluster (any pool: AWS reclaims a type in
            a zone, whoever runs on it).
        now: the current time.
        window_s: how long a reclaim is avoided, seconds.

    Returns:
        ``None`` when nothing of the pool was reclaimed in the zone within the
        window, the pool has no spot capacity, or nothing else is left to start
        on (a spot-only pool whose every type was reclaimed: starting there
        again beats not starting).
    """
    if zone is None or "spot" not in pool.capacity_types:
        return None
    # A notice stamped a little after ``now`` (the API server's clock) is new.
    recent = [
        r
        for r in reclaims
        if r.zone == zone
        and r.instance_type in pool.instance_types
        and (now - r.at).total_seconds() <= window_s
    ]
    if not recent:
        return None
    seen = {r.instance_type for r in recent}
    reclaimed = tuple(t for t in pool.instance_types if t in seen)
    other = tuple(t for t in pool.instance_types if t not in reclaimed)
    on_demand = "on-demand" in pool.capacity_types
    if not other and not on_demand:
        return None
    latest = max(r.at for r in recent)
    ago = _ago(max(0.0, (now - latest).total_seconds()))
    where = f"{' and '.join(reclaimed)} in {zone}"
    if other and on_demand:
        then = f"another spot type ({', '.join(other)}) or on-demand"
    elif other:
        then = f"another spot type ({', '.join(other)})"
    else:
        then = "on-demand"
    until = math.ceil(window_s / 60)
    message = (
        f"Spot capacity of this size ({where}) was reclaimed {ago}; starting on "
        f"{then} for now (spot is avoided there for {until} minutes after a reclaim)."
    )
    return Avoidance(
        reclaimed=reclaimed, other_spot=other, on_demand=on_demand, message=message
    )
