"""What the warmer shows: status per pool × zone, readiness per size, costs, plots.

This module owns the numbers and pictures of the admin page, the JSON API and
the spawn form's readiness: per pool × zone the warm nodes, placeholders, users,
capacity types and what warm capacity costs now and since local midnight; per
size whether a node is ready now or about how many minutes one takes; and a
timeline plot (:mod:`wbspawner.pages.svg`, no JavaScript).

Pure: no I/O, no clock. Prices come from :mod:`wbspawner.catalog.pricing`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from wbspawner.catalog.pricing import hourly_cost
from wbspawner.model import CapacityType, CostSettings, Pool, Size
from wbspawner.pages.svg import Series, line_chart_svg, time_ticks
from wbspawner.spawn.waits import estimate, summarize, wait_words
from wbspawner.warmer.policy import WarmPlan
from wbspawner.warmer.snapshot import ClusterSnapshot

Key = tuple[str, str]
"""(pool, zone)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """The state of one pool in one zone."""

    pool: str
    zone: str
    warm_nodes: int
    """Ready nodes held by a running placeholder (a spawn gets one at once)."""
    placeholders_running: int
    placeholders_pending: int
    """Placeholders waiting for a node (the autoscaler is starting one)."""
    users: int
    """User pods (running or starting)."""
    spot_nodes: int
    on_demand_nodes: int
    target: int
    """Warm nodes the plan wants."""
    warm_cost_per_hour: float
    """What the warm nodes cost now, USD per hour."""
    node_cost_per_hour: float
    """What all the pool's nodes in the zone cost now, USD per hour."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One point of the timeline: the cells' numbers at a time."""

    at: datetime
    cells: Mapping[Key, tuple[int, int, float]]
    """(warm nodes, users, warm USD per hour) per pool × zone."""

    @property
    def warm_cost_per_hour(self) -> float:
        """Return the warm cost per hour over all cells."""
        return sum(c[2] for c in self.cells.values())


def cells(
    pools: Mapping[str, Pool],
    snapshot: ClusterSnapshot,
    plan: WarmPlan | None,
    cost: CostSettings,
) -> list[Cell]:
    """Return one cell per pool × zone that has nodes, pods or a target.

    Args:
        pools: pools by name.
        snapshot: the cluster.
        plan: the current plan, if any.
        cost: pricing settings.

    Returns:
        Cells sorted by pool and zone.
    """
    nodes = {n.name: n for n in snapshot.nodes if n.pool in pools}
    keys: set[Key] = {(n.pool, n.zone) for n in nodes.values()}
    keys |= {(p.pool, p.zone) for p in snapshot.pods if p.zone and p.pool in pools}
    if plan is not None:
        keys |= {(t.pool, t.zone) for t in plan.targets}
    out = []
    for pool_name, zone in sorted(keys):
        pool = pools[pool_name]
        here = [n for n in nodes.values() if (n.pool, n.zone) == (pool_name, zone)]
        pods = [p for p in snapshot.pods if (p.pool, p.zone) == (pool_name, zone)]
        holders = [p for p in pods if p.role == "placeholder" and p.running]

        def price(capacity: str, pool: Pool = pool, zone: str = zone) -> float:
            cap: CapacityType = "spot" if capacity == "spot" else "on-demand"
            return hourly_cost(pool, cap, snapshot.spot_prices, cost, (zone,)).per_hour

        out.append(
            Cell(
                pool=pool_name,
                zone=zone,
                warm_nodes=len({p.node for p in holders}),
                placeholders_running=len(holders),
                placeholders_pending=sum(
                    1 for p in pods if p.role == "placeholder" and not p.running
                ),
                users=sum(1 for p in pods if p.role == "user"),
                spot_nodes=sum(1 for n in here if n.capacity_type == "spot"),
                on_demand_nodes=sum(1 for n in here if n.capacity_type != "spot"),
                target=plan.count(pool_name, zone) if plan else 0,
                warm_cost_per_hour=sum(
                    price(nodes[p.node].capacity_type)
                    for p in holders
                    if p.node in nodes
                ),
                node_cost_per_hour=sum(price(n.capacity_type) for n in here),
            )
        )
    return out


def sample(at: datetime, found: Iterable[Cell]) -> Sample:
    """Return a timeline point from cells.

    Args:
        at: when.
        found: the cells.

    Returns:
        The sample.
    """
    return Sample(
        at=at,
        cells={
            (c.pool, c.zone): (c.warm_nodes, c.users, c.warm_cost_per_hour)
            for c in found
        },
    )


def cost_since(
    samples: Sequence[Sample], start: datetime, now: datetime, key: Key | None = None
) -> float:
    """Return the warm cost from ``start`` to ``now``, USD (step-wise integral).

    Each sample's cost per hour holds until the next sample (the last one until
    ``now``); only the part after ``start`` counts.

    Args:
        samples: the timeline, oldest first.
        start: from when (e.g. local midnight).
        now: until when.
        key: one pool × zone; ``None``: all.

    Returns:
        USD.
    """
    total = 0.0
    for i, s in enumerate(samples):
        until = samples[i + 1].at if i + 1 < len(samples) else now
        begin = max(s.at, start)
        if until <= begin:
            continue
        per_hour = (
            s.warm_cost_per_hour if key is None else s.cells.get(key, (0, 0, 0))[2]
        )
        total += per_hour * (until - begin).total_seconds() / 3600
    return total


def ready_nodes(
    pools: Mapping[str, Pool], snapshot: ClusterSnapshot
) -> dict[str, dict[str, int]]:
    """Return ready warm nodes per pool and zone (the ``WARM_STATUS_FILE`` shape).

    Args:
        pools: pools by name.
        snapshot: the cluster.

    Returns:
        ``{pool: {zone: running placeholders}}`` for every zone of every pool.
    """
    out = {name: dict.fromkeys(pool.zones, 0) for name, pool in pools.items()}
    for p in snapshot.placeholders():
        if p.running and p.zone in out.get(p.pool, {}):
            out[p.pool][p.zone] += 1
    return out


def readiness(
    pools: Mapping[str, Pool],
    sizes: Sequence[Size],
    snapshot: ClusterSnapshot,
    now: datetime,
) -> dict[str, object]:
    """Return, per size, whether a node is ready now or how long one takes.

    A size is ready now when a placeholder of its pool runs on a ready node (a
    spawn preempts it and starts at once). Otherwise a placeholder waiting for
    its node gives the remaining wait, and with none a cold start takes what
    cold starts in the zone took (:func:`wbspawner.spawn.waits.estimate`, the
    wait the spawn form and progress messages say).

    Args:
        pools: pools by name.
        sizes: the sizes of the spawn form.
        snapshot: the cluster.
        now: the current time.

    Returns:
        ``{"generated_at", "pools": {pool: {zone: ready}}, "sizes": {slug:
        {"pool", "ready", "seconds", "minutes", "text", "zones": {zone:
        {"ready", "seconds", "minutes"}}}}}``; ``pools`` is the
        ``WARM_STATUS_FILE`` shape.
    """
    zones: dict[str, dict[str, dict[str, int]]] = {}
    times = summarize(snapshot.waits)
    for name, pool in pools.items():
        zones[name] = {}
        for z in pool.zones:
            cold = round(estimate(pool, z, times).total_s)
            zones[name][z] = {"ready": 0, "seconds": cold, "minutes": _minutes(cold)}
    for p in snapshot.placeholders():
        cell = zones.get(p.pool, {}).get(p.zone or "")
        if cell is None:
            continue
        if p.running:
            cell["ready"] += 1
            cell["seconds"] = cell["minutes"] = 0
        else:
            full = estimate(pools[p.pool], p.zone, times).total_s
            left = max(1, math.ceil(full - (now - p.created).total_seconds()))
            if left < cell["seconds"]:
                cell["seconds"] = left
                cell["minutes"] = max(1, math.ceil(left / 60))
    out_sizes: dict[str, object] = {}
    for size in sizes:
        by_zone = zones.get(size.pool, {})
        ready = sum(c["ready"] for c in by_zone.values())
        best = min(by_zone.values(), key=lambda c: c["seconds"], default=None)
        seconds = 0 if ready or best is None else best["seconds"]
        minutes = 0 if ready or best is None else best["minutes"]
        text = "Ready now" if ready else f"Starts in {wait_words(seconds)}"
        out_sizes[size.slug] = {
            "pool": size.pool,
            "ready": ready,
            "seconds": seconds,
            "minutes": minutes,
            "text": text,
            "zones": by_zone,
        }
    return {
        "generated_at": now.isoformat(),
        "pools": ready_nodes(pools, snapshot),
        "sizes": out_sizes,
    }


def _minutes(seconds: float) -> int:
    """Return a cold wait in whole minutes, at least one."""
    return max(1, round(seconds / 60))


def local_midnight(now: datetime, tz: tzinfo) -> datetime:
    """Return the start of ``now``'s day in a time zone (aware).

    Args:
        now: an aware time.
        tz: a ``tzinfo``.

    Returns:
        Midnight of that day there.
    """
    local = now.astimezone(tz)
    return local - timedelta(
        hours=local.hour,
        minutes=local.minute,
        seconds=local.second,
        microseconds=local.microsecond,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """The admin page's charts over time and their table equivalent."""

    charts: tuple[str, ...]
    """SVG: warm nodes and users (count); what warm capacity costs (USD/h)."""
    columns: tuple[str, ...]
    """Headers of the table, time first."""
    rows: tuple[tuple[str, ...], ...]
    """The charts' values at each time tick (a step holds until the next sample),
    and at the latest sample."""


MIN_TIMELINE = timedelta(minutes=15)
"""The time axis spans at least this much (from the first sample on)."""
TIMELINE_COLUMNS = ("local time", "warm nodes", "users", "warm capacity, USD/h")


def _value_at(samples: Sequence[Sample], at: datetime) -> Sample:
    """Return the last sample at or before ``at`` (the first if none is)."""
    found = samples[0]
    for s in samples:
        if s.at > at:
            break
        found = s
    return found


def timeline(samples: Sequence[Sample], tz: tzinfo) -> Timeline:
    """Return the admin page's charts: warm nodes and users, and warm USD/h.

    Args:
        samples: the timeline, oldest first.
        tz: the site's time zone (ticks on its whole hours, labelled in it).

    Returns:
        Two charts with local-time ticks and round value ticks, and a table of
        the values at each tick and at the latest sample.
    """
    zone = str(getattr(tz, "key", "") or tz)
    x_label = f"local time ({zone})"
    if not samples:
        empty = line_chart_svg(
            [], title="No samples yet", x_label=x_label, y_label="count"
        )
        return Timeline(charts=(empty,), columns=TIMELINE_COLUMNS, rows=())
    t0 = samples[0].at

    def hours(at: datetime) -> float:
        return (at - t0).total_seconds() / 3600

    def total(i: int, at: Sample) -> int:
        return sum(int(c[i]) for c in at.cells.values())

    counts = [
        Series(name, [(hours(s.at), total(i, s)) for s in samples], True)
        for i, name in enumerate(("warm nodes", "users"))
    ]
    cost = Series(
        "warm capacity",
        [(hours(s.at), s.warm_cost_per_hour) for s in samples],
        True,
    )
    # at least a quarter of an hour wide, so that a young timeline has time ticks
    end = max(samples[-1].at, t0 + MIN_TIMELINE)
    ticks = time_ticks(t0, end, tz)
    x_ticks = [(hours(at), label) for at, label in ticks]
    x_range = (0.0, hours(end))
    charts = (
        line_chart_svg(
            counts,
            title="Warm nodes and users over time",
            x_label=x_label,
            y_label="count",
            x_ticks=x_ticks,
            x_range=x_range,
        ),
        line_chart_svg(
            [cost],
            title="What warm capacity costs over time",
            x_label=x_label,
            y_label="USD per hour",
            x_ticks=x_ticks,
            x_range=x_range,
        ),
    )
    rows = []
    for at, label in ticks:
        if at > samples[-1].at:
            break  # no sample says what happens after the last one
        s = _value_at(samples, at)
        rows.append(
            (label, str(total(0, s)), str(total(1, s)), f"{s.warm_cost_per_hour:.2f}")
        )
    last = samples[-1]
    rows.append(
        (
            last.at.astimezone(tz).strftime("%a %H:%M:%S (latest)"),
            str(total(0, last)),
            str(total(1, last)),
            f"{last.warm_cost_per_hour:.2f}",
        )
    )
    return Timeline(charts=charts, columns=TIMELINE_COLUMNS, rows=tuple(rows))
