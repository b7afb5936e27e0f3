"""What a Dask cluster costs and what to record about it: the pure decisions.

This module owns the decisions of Dask cluster accounting
(:mod:`wbspawner.gateway.accounting` does the I/O): the $/worker-hour of a
worker size (its share of a node's price, from :mod:`wbspawner.catalog.pricing`,
by :func:`~wbspawner.gateway.workers.workers_per_node`), the
running workers a scheduler's heartbeat reports, the running workers over time
from each worker's own start and stop (:func:`worker_steps`), and
:func:`diff_usage`, which compares the clusters the gateway runs with the open
``dask`` records and says what to record so that a cluster's cost is
Σ workers × hours × price. (The group a cluster's cost counts against is
:func:`wbspawner.spawn.budget.spending_group`'s, as for servers.)

Times are naive UTC, as the accounting database stores them.

Pure: no I/O; reads frozen profiles and the gateway's cluster models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from wbspawner.catalog.pricing import preferred_cost
from wbspawner.costs.accounting import MICRO, to_micro
from wbspawner.gateway.options import ENV_POOL, ENV_SIZE
from wbspawner.gateway.workers import workers_per_node
from wbspawner.model import Profiles


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerPrice:
    """What one worker of a size costs."""

    pool: str
    capacity_type: str
    """The pool's preferred capacity type (what workers normally get)."""
    per_hour: float
    """USD per worker-hour."""


def worker_price(profiles: Profiles, size: str, pool: str = "") -> WorkerPrice | None:
    """Return the $/worker-hour of a worker size: its share of a node's price.

    A worker that gets a whole node costs the node's price (the pool's
    preferred capacity type, as the spawn form shows it); ``n`` workers per
    node cost a ``1/n`` share each. A size no longer in the profiles is priced
    as a whole node of ``pool`` (an upper bound).

    Args:
        profiles: the profiles in force.
        size: the worker size name.
        pool: the cluster's pool, used when the size is unknown.

    Returns:
        The price, or ``None`` when neither size nor pool is known.
    """
    known = next((s for s in profiles.dask.worker_sizes if s.name == size), None)
    node_pool = profiles.pools.get(known.pool if known else pool)
    if node_pool is None:
        return None
    node = preferred_cost(node_pool, None, profiles.cost)
    share = workers_per_node(known, node_pool) if known else 1
    return WorkerPrice(
        pool=node_pool.name,
        capacity_type=node_pool.capacity_types[0]
        if node_pool.capacity_types
        else "on-demand",
        per_hour=node.per_hour / share,
    )


def running_workers(heartbeat: Mapping[str, Any]) -> int:
    """Return the workers a scheduler's heartbeat reports as running.

    Args:
        heartbeat: the message (``active_workers``, ``closing_workers``, …).

    Returns:
        Active and closing (still running) workers.
    """
    active = set(heartbeat.get("active_workers") or ())
    return len(active | set(heartbeat.get("closing_workers") or ()))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSpan:
    """When one worker ran, as its backend started and stopped it."""

    start: datetime
    stop: datetime | None = None
    """``None``: still running."""


def running_at(spans: Sequence[WorkerSpan], at: datetime) -> int:
    """Return how many workers ran at a time (started by then, not stopped yet).

    Args:
        spans: the workers of one cluster.
        at: the time.

    Returns:
        The number of workers running at ``at``.
    """
    return sum(1 for s in spans if s.start <= at and (s.stop is None or s.stop > at))


Step = tuple[datetime, int]
"""From this time on, this many workers ran."""


def worker_steps(
    spans: Sequence[WorkerSpan], since: datetime, until: datetime | None = None
) -> list[Step]:
    """Return the running workers at ``since`` and at each later change.

    Every start and stop counts, however close together: a worker that ran for
    a moment between two observations is a step up and a step down.

    Args:
        spans: the workers of one cluster.
        since: the first time of interest (an open record's start).
        until: the last time of interest, or ``None`` for all.

    Returns:
        ``(since, n)`` first, then ``(t, n)`` for each time after ``since`` (up
        to ``until``) when the number of running workers changed, in order.
    """
    times = sorted(
        {
            t
            for s in spans
            for t in (s.start, s.stop)
            if t is not None and t > since and (until is None or t <= until)
        }
    )
    steps = [(since, running_at(spans, since))]
    for t in times:
        n = running_at(spans, t)
        if n != steps[-1][1]:
            steps.append((t, n))
    return steps


@dataclass(frozen=True, slots=True, kw_only=True)
class DaskUsage:
    """One cluster the gateway runs, as accounting sees it."""

    name: str
    user: str
    size: str
    pool: str
    capacity_type: str
    price_per_hour: float | None
    """USD per worker-hour; ``None``: unknown (kept as recorded)."""
    workers: int | None
    """Running workers; ``None``: not reported yet (kept as recorded)."""
    group: str = ""
    spans: tuple[WorkerSpan, ...] | None = None
    """Each worker's start and stop, when the backend reports them; they then
    replace ``workers``. ``None``: workers come from heartbeats."""
    started_at: datetime | None = None
    """When the cluster started, if known (its first record starts then)."""
    stopped_at: datetime | None = None
    """When the cluster and all its workers stopped (its record closes then)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenDask:
    """An open ``dask`` record."""

    name: str
    user: str
    workers: int
    price_micro_per_hour: int
    since: datetime | None = None
    """When the record started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What to record for one cluster."""

    action: Literal["start", "rescale", "stop"]
    name: str
    user: str
    workers: int = 0
    price_per_hour: float = 0.0
    usage: DaskUsage | None = None
    """The cluster, for ``start``."""
    at: datetime | None = None
    """When it happened; ``None``: when it was observed."""


def usage_of(
    cluster: Any, profiles: Profiles, workers: int | None, group: str = ""
) -> DaskUsage:
    """Return a gateway cluster (``models.Cluster``) as accounting sees it.

    The worker size and pool come from the environment the options handler put
    in the cluster's configuration (the ``worker_size`` option otherwise).

    Args:
        cluster: the cluster (``name``, ``username``, ``config``, ``options``).
        profiles: the profiles in force (for the price).
        workers: its running workers, ``None`` when unknown.
        group: the group its spending counts against.

    Returns:
        The usage.
    """
    env = (cluster.config or {}).get("environment") or {}
    size = str(env.get(ENV_SIZE) or (cluster.options or {}).get("worker_size") or "")
    price = worker_price(profiles, size, str(env.get(ENV_POOL) or ""))
    return DaskUsage(
        name=cluster.name,
        user=cluster.username,
        size=size or "-",
        pool=price.pool if price else str(env.get(ENV_POOL) or "-"),
        capacity_type=price.capacity_type if price else "-",
        price_per_hour=price.per_hour if price else None,
        workers=workers,
        group=group,
    )


def diff_usage(
    observed: Sequence[DaskUsage], open_records: Sequence[OpenDask]
) -> list[Change]:
    """Return what to record so the open records match the running clusters.

    A cluster without an open record starts one; a cluster whose running
    workers or price differ from its open record is rescaled (closed and
    continued); an open record whose cluster no longer runs is stopped.
    Unknown workers or price keep the recorded ones. A cluster with worker
    spans is recorded at its workers' own times: every start and stop since
    its open record began, then its stop when it has stopped.

    Args:
        observed: the clusters running now (and those whose workers just
            stopped, with ``stopped_at``).
        open_records: the open ``dask`` records.

    Returns:
        Changes: stops of vanished clusters first, then each cluster's changes
        in time order, clusters by name.
    """
    by_name = {(r.name, r.user): r for r in open_records}
    seen = {(u.name, u.user) for u in observed}
    out = [
        Change(action="stop", name=r.name, user=r.user, workers=r.workers)
        for key, r in sorted(by_name.items())
        if key not in seen
    ]
    for u in sorted(observed, key=lambda u: (u.name, u.user)):
        had = by_name.get((u.name, u.user))
        if u.spans is not None:
            out.extend(_span_changes(u, had))
        elif had is None:
            out.append(_start(u, u.workers or 0, None))
        else:
            out.extend(_rescale(u, had, had.workers, u.workers, None))
    return out


def _start(u: DaskUsage, workers: int, at: datetime | None) -> Change:
    return Change(
        action="start",
        name=u.name,
        user=u.user,
        workers=workers,
        price_per_hour=u.price_per_hour or 0.0,
        usage=u,
        at=at,
    )


def _rescale(
    u: DaskUsage,
    had: OpenDask,
    recorded: int,
    workers: int | None,
    at: datetime | None,
) -> list[Change]:
    """A rescale when the workers (``None``: unknown) or the price changed."""
    workers = recorded if workers is None else workers
    price = u.price_per_hour
    if price is None:
        price = had.price_micro_per_hour / MICRO
    if workers == recorded and to_micro(price) == had.price_micro_per_hour:
        return []
    change = Change(
        action="rescale",
        name=u.name,
        user=u.user,
        workers=workers,
        price_per_hour=price,
        at=at,
    )
    return [change]


def _span_changes(u: DaskUsage, had: OpenDask | None) -> list[Change]:
    """The changes of a cluster whose backend reports each worker's times."""
    spans = u.spans or ()
    out: list[Change] = []
    if had is None:
        begin = u.started_at or min((s.start for s in spans), default=None)
        if begin is None:  # nothing known yet: start now, as for heartbeats
            return [_start(u, 0, None)]
        first = running_at(spans, begin)
        out.append(_start(u, first, begin))
        had = OpenDask(
            name=u.name,
            user=u.user,
            workers=first,
            price_micro_per_hour=to_micro(u.price_per_hour or 0.0),
            since=begin,
        )
    steps: list[tuple[datetime | None, int]]
    if had.since is None:  # no start to count from: the workers running now
        steps = [(None, sum(1 for s in spans if s.stop is None))]
    else:
        steps = list(worker_steps(spans, had.since, u.stopped_at))
    recorded = had.workers
    for at, workers in steps:
        if workers != recorded:
            out.append(
                Change(
                    action="rescale",
                    name=u.name,
                    user=u.user,
                    workers=workers,
                    price_per_hour=had.price_micro_per_hour / MICRO,
                    at=at,
                )
            )
            recorded = workers
    if u.stopped_at is not None:
        stop = Change(
            action="stop", name=u.name, user=u.user, workers=recorded, at=u.stopped_at
        )
        return [*out, stop]
    # A new price takes effect when it is seen.
    now = dataclasses.replace(had, workers=recorded)
    return out + _rescale(u, now, recorded, None, None)
