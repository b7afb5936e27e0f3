"""Per-user Dask limits: what they are, the check, and its enforcement.

dask-gateway has no per-user or per-group limits upstream (dask/dask-gateway
issues 313 and 452): it only caps one cluster (``cluster_max_*``). This module
owns

- the pure part: a user's limits (user > loosest group > default), the usage
  of one cluster measured from its gateway configuration, and the check of a
  new cluster against the limits, with a message that says what to do;
- what the check needs from the running gateway: the usage of a user's pending
  and running clusters, read from the backend's own state (the database of the
  local backends, the DaskCluster cache of the Kubernetes backend), plus the
  clusters created a moment ago that the backend does not list yet.

The check runs in the options handler (:mod:`wbspawner.gateway.options`), so a
refused cluster is never created and the user gets the reason as the HTTP 422
message. A per-user lock around cluster creation (:class:`UsageLedger`) keeps two
concurrent requests from both passing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dask_gateway_server.models import ClusterStatus

from wbspawner.errors import UserFacingError
from wbspawner.model import DaskLimits, Profiles

ENV_GPUS = "WBSPAWNER_DASK_WORKER_GPUS"
"""Worker environment variable: GPUs per worker, read back to count GPUs."""
_GIB = 2**30


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterUsage:
    """What one cluster holds (or asks for) against a user's Dask limits."""

    name: str = ""
    """Cluster name (empty for a cluster being asked for)."""
    workers: int = 0
    """Its maximum number of workers (``cluster_max_workers``)."""
    cores: float = 0.0
    """Scheduler cores plus cores of every worker it may run."""
    memory_gib: float = 0.0
    """Scheduler memory plus memory of every worker it may run, GiB."""
    gpus: int = 0
    """GPUs of every worker it may run."""


def limits_for(profiles: Profiles, user: str, groups: Collection[str]) -> DaskLimits:
    """Return the Dask limits of a user.

    A user's own limits win; otherwise the loosest of the limits of the groups
    they are in (per field, an absent limit is the loosest); otherwise the
    default limits.

    Args:
        profiles: the profiles.
        user: the user name.
        groups: the user's groups.

    Returns:
        The limits (``None`` fields: no limit).
    """
    dask = profiles.dask
    own = dask.user_limits.get(user)
    if own is not None:
        return own
    matching = [lim for g, lim in sorted(dask.group_limits.items()) if g in groups]
    if not matching:
        return dask.limits

    def loosest(values: list[Any]) -> Any:
        return None if any(v is None for v in values) else max(values)

    return DaskLimits(
        max_clusters=loosest([m.max_clusters for m in matching]),
        max_workers=loosest([m.max_workers for m in matching]),
        max_cores=loosest([m.max_cores for m in matching]),
        max_memory_gib=loosest([m.max_memory_gib for m in matching]),
        max_gpus=loosest([m.max_gpus for m in matching]),
    )


def _n(x: float) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def check_limits(
    limits: DaskLimits,
    existing: Sequence[ClusterUsage],
    requested: ClusterUsage,
    per_worker: ClusterUsage | None = None,
) -> None:
    """Check a new cluster against the user's limits, given their running clusters.

    Args:
        limits: the user's limits (:func:`limits_for`).
        existing: the user's clusters that are pending or running.
        requested: what the new cluster holds at most.
        per_worker: what one worker of the new cluster holds, to tell the user
            how many workers would still fit.

    Raises:
        UserFacingError: the first limit the new cluster would exceed, with the
            numbers and what to do.
    """
    if limits.max_clusters is not None and len(existing) + 1 > limits.max_clusters:
        names = ", ".join(sorted(c.name for c in existing)) or "none"
        raise UserFacingError(
            f"You may run at most {limits.max_clusters} Dask cluster(s) at once and "
            f"you already run {len(existing)} ({names}). Shut one down "
            "(cluster.shutdown()) before starting another.",
            reason="dask-limit",
            status_code=422,
        )
    checks: list[tuple[str, str, float | int | None]] = [
        ("workers", "workers", limits.max_workers),
        ("cores", "CPU cores", limits.max_cores),
        ("memory_gib", "GiB of memory", limits.max_memory_gib),
        ("gpus", "GPUs", limits.max_gpus),
    ]
    for attr, unit, limit in checks:
        if limit is None:
            continue
        used = sum(getattr(c, attr) for c in existing)
        asked = getattr(requested, attr)
        if used + asked <= limit + 1e-9:
            continue
        raise UserFacingError(
            _over_limit(attr, unit, limit, used, asked, requested, per_worker),
            reason="dask-limit",
            status_code=422,
        )


def _over_limit(
    attr: str,
    unit: str,
    limit: float,
    used: float,
    asked: float,
    requested: ClusterUsage,
    per_worker: ClusterUsage | None,
) -> str:
    text = (
        f"This Dask cluster would exceed your limit of {_n(limit)} {unit} over all "
        f"your clusters: it needs up to {_n(asked)} ({requested.workers} workers"
        f"{' and its scheduler' if attr in ('cores', 'memory_gib') else ''}), and "
        f"your running clusters already hold {_n(used)}."
    )
    if attr == "gpus" and limit == 0:
        return (
            "GPU workers are not part of your Dask limits (0 GPUs). Pick a CPU "
            "worker size, or ask an admin for GPU access."
        )
    fixed = asked - requested.workers * getattr(per_worker, attr, 0)
    each = getattr(per_worker, attr, 0) if per_worker else 0
    if each > 0:
        fits = int((limit - used - fixed + 1e-9) // each)
        if fits >= 1:
            return (
                f"{text} Ask for max_workers={fits} or fewer, or shut a cluster down."
            )
    return f"{text} Shut a cluster down (cluster.shutdown()) or pick a smaller size."


def _config_value(config: Mapping[str, Any], key: str, default: float = 0) -> float:
    value = config.get(key)
    return float(value) if isinstance(value, int | float) else float(default)


def usage_from_config(name: str, config: Mapping[str, Any]) -> ClusterUsage:
    """Return what a cluster holds, from its gateway configuration.

    The same function counts a new cluster (from the handler's overrides) and the
    clusters already running (from their stored ``config``), so both are
    measured alike on every backend.

    Args:
        name: the cluster's name.
        config: its ``ClusterConfig`` values (``cluster_max_workers``,
            ``worker_cores``, ``worker_memory``, ``scheduler_*`` and
            ``environment``).

    Returns:
        Its usage; a cluster without ``cluster_max_workers`` counts no workers.
    """
    workers = int(_config_value(config, "cluster_max_workers"))
    env = config.get("environment") or {}
    try:
        gpus = int(env.get(ENV_GPUS, 0))
    except (TypeError, ValueError):
        gpus = 0
    cores = _config_value(config, "scheduler_cores", 1) + workers * _config_value(
        config, "worker_cores", 1
    )
    memory = _config_value(config, "scheduler_memory") + workers * _config_value(
        config, "worker_memory"
    )
    return ClusterUsage(
        name=name,
        workers=workers,
        cores=round(cores, 3),
        memory_gib=round(memory / _GIB, 3),
        gpus=workers * gpus,
    )


def worker_usage(config: Mapping[str, Any]) -> ClusterUsage:
    """Return what one more worker of a cluster holds, from its configuration.

    Args:
        config: the cluster's ``ClusterConfig`` values.

    Returns:
        The usage of a single worker (scheduler excluded).
    """
    one = usage_from_config("", {**config, "cluster_max_workers": 1})
    none = usage_from_config("", {**config, "cluster_max_workers": 0})
    return ClusterUsage(
        workers=1,
        cores=round(one.cores - none.cores, 3),
        memory_gib=round(one.memory_gib - none.memory_gib, 3),
        gpus=one.gpus,
    )


def max_workers_bounds(limits: DaskLimits, per_cluster: int) -> tuple[int, int]:
    """Return the default and the maximum of the ``max_workers`` option.

    The maximum is the smaller of the per-cluster cap and the user's worker
    limit; the default shares that budget among the clusters the user may run.

    Args:
        limits: the user's limits.
        per_cluster: ``max_workers_per_cluster`` of the profiles.

    Returns:
        ``(default, maximum)``, both at least 1.
    """
    cap = per_cluster
    if limits.max_workers is not None:
        cap = min(cap, limits.max_workers)
    cap = max(1, cap)
    share = cap // max(1, limits.max_clusters or 1)
    return max(1, min(cap, share)), cap


def default_workers(
    limits: DaskLimits,
    per_cluster: int,
    per_worker: ClusterUsage,
    fixed: ClusterUsage,
) -> int:
    """Return the default ``max_workers`` of a cluster of one worker size.

    The default is the cluster's share of every limit of the user: each limit
    (workers, cores, memory, GPUs) is split evenly among the clusters the user
    may run, and the default is the most workers whose cluster, scheduler
    included, fits one share of each. So a user's default clusters fit their
    limits whatever worker size they pick (a GPU size is bounded by the GPUs).

    Args:
        limits: the user's limits.
        per_cluster: ``max_workers_per_cluster`` of the profiles.
        per_worker: what one worker of the size holds (:func:`worker_usage`).
        fixed: what the cluster holds with no worker (its scheduler).

    Returns:
        The default, at least 1 and at most the worker share of
        :func:`max_workers_bounds`.
    """
    best = max_workers_bounds(limits, per_cluster)[0]
    clusters = max(1, limits.max_clusters or 1)
    budgets: list[tuple[str, float | int | None]] = [
        ("cores", limits.max_cores),
        ("memory_gib", limits.max_memory_gib),
        ("gpus", limits.max_gpus),
    ]
    for attr, limit in budgets:
        each = getattr(per_worker, attr)
        if limit is None or each <= 0:
            continue
        room = limit / clusters - getattr(fixed, attr)
        best = min(best, math.floor((room + 1e-9) / each))
    return max(1, best)


class ClusterRecord(Protocol):
    """What the limits read of a ``dask_gateway_server.models.Cluster``."""

    name: str
    username: str
    config: Mapping[str, Any]


class ClusterLister(Protocol):
    """The part of a dask-gateway ``Backend`` the limits use."""

    async def list_clusters(
        self, username: str | None = None, statuses: Any = None
    ) -> Sequence[Any]:
        """Return the pending and running clusters (of one user)."""
        ...


async def user_usage(backend: ClusterLister, username: str) -> list[ClusterUsage]:
    """Return the usage of a user's pending and running clusters.

    Args:
        backend: the gateway's backend.
        username: the gateway user name.

    Returns:
        One :class:`ClusterUsage` per cluster the backend lists as active.
    """
    clusters = await backend.list_clusters(username=username)
    return [usage_of(c) for c in clusters]


async def known_clusters(backend: ClusterLister, username: str) -> frozenset[str]:
    """Return the names of every cluster of a user the backend knows, in any state.

    Args:
        backend: the gateway's backend.
        username: the gateway user name.

    Returns:
        Names of its pending, running, stopping, stopped and failed clusters.
    """
    clusters = await backend.list_clusters(
        username=username, statuses=list(ClusterStatus)
    )
    return frozenset(c.name for c in clusters)


def usage_of(cluster: ClusterRecord) -> ClusterUsage:
    """Return the usage of one cluster from its stored configuration.

    Args:
        cluster: a cluster model of the backend.

    Returns:
        Its usage (see :func:`~wbspawner.gateway.options.usage_from_config`).
    """
    return usage_from_config(cluster.name, cluster.config or {})


@dataclass(slots=True)
class _Recent:
    usage: ClusterUsage
    at: float


class UsageLedger:
    """Per-user creation locks and the clusters created but not listed yet.

    The Kubernetes backend learns of a new cluster through a watch, a moment
    after it created it; until then :meth:`merge` still counts it.

    Args:
        hold_s: how long a created cluster is counted without being listed.
        clock: monotonic clock in seconds (tests pass a fake).
    """

    def __init__(
        self, hold_s: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold_s = hold_s
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._recent: dict[str, dict[str, _Recent]] = {}

    def lock(self, username: str) -> asyncio.Lock:
        """Return the lock that serialises one user's cluster creations.

        Args:
            username: the gateway user name.

        Returns:
            The user's lock (created on first use).
        """
        return self._locks.setdefault(username, asyncio.Lock())

    def remember(self, username: str, usage: ClusterUsage) -> None:
        """Record a cluster just created, until the backend lists it.

        Args:
            username: its owner.
            usage: its usage (named).
        """
        self._recent.setdefault(username, {})[usage.name] = _Recent(usage, self.clock())

    def release(self, name: str) -> None:
        """Stop counting a cluster that is stopping (whoever stops it).

        Args:
            name: the cluster's name.
        """
        for username, recent in list(self._recent.items()):
            recent.pop(name, None)
            if not recent:
                del self._recent[username]

    def merge(
        self,
        username: str,
        listed: Iterable[ClusterUsage],
        known: Collection[str] = (),
    ) -> tuple[ClusterUsage, ...]:
        """Return the listed clusters plus recent ones the backend does not know yet.

        A recent cluster is dropped once the backend knows it in any state (it
        is then counted only while listed, so not once it stopped), once it is
        listed, or when it is older than ``hold_s``.

        Args:
            username: the owner.
            listed: what the backend lists for the user (pending and running).
            known: names of every cluster of the user the backend knows, stopped
                and failed ones included (:func:`known_clusters`).

        Returns:
            Every cluster to count against the user's limits.
        """
        out = list(listed)
        names = {u.name for u in out} | set(known)
        recent = self._recent.get(username, {})
        now = self.clock()
        for name, entry in list(recent.items()):
            if name in names or now - entry.at > self.hold_s:
                del recent[name]
            else:
                out.append(entry.usage)
        if not recent:
            self._recent.pop(username, None)
        return tuple(out)
