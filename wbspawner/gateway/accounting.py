"""Dask cluster accounting inside the gateway: workers × hours × $/worker-hour.

This module owns what the gateway writes to the accounting database
(:mod:`wbspawner.costs.accounting`, kind ``dask``): one record per cluster and
stretch of constant worker count and price. A cluster's start opens a record, a
change of its running workers (or of the worker price) closes it and opens the
next, its stop closes it, so a cluster's cost is Σ workers × hours × price
exactly. What to record is decided by :func:`wbspawner.gateway.billing.diff_usage`
(pure); this module is the thin shell around it:

- :func:`apply_changes` and :class:`CostBook`: one round against the database,
  in a worker thread so the gateway's event loop is not blocked;
- :class:`CostAccountingMixin`: the backend part. It observes on a timer and
  whenever a cluster starts or stops, a worker starts or stops, or a heartbeat
  reports a different worker count; a database failure is logged and retried,
  never raised into the gateway;
- :class:`WorkerSpansMixin`: for backends that start and stop each worker
  themselves (dask-gateway's database backends: local processes, job queues),
  reports each worker's start and stop;
- :func:`configure_costs`: the database URL from the environment, as the hub
  reads it (:func:`wbspawner.costs.database.configured_url`).

Where the backend reports them, each worker counts from its own start to its
own stop, however brief, and a cluster's record closes when its last worker
stopped. Elsewhere (the Kubernetes backend, whose controller runs the worker
pods; clusters started before the gateway restarted) running workers are those
the scheduler reports in its heartbeat (active and closing), which comes every
``cluster_heartbeat_period`` (15 s by default): a worker that lives shorter than
that may be missed there. Schedulers are not charged: the issue counts
workers × hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dask_gateway_server.backends.base import Backend
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Float, Unicode

from wbspawner.costs.accounting import (
    DEFAULT_DB_URL,
    Start,
    list_open,
    naive_utc,
    open_db,
    record,
    record_price_change,
    record_stop,
)
from wbspawner.costs.database import configured_url
from wbspawner.gateway.billing import (
    Change,
    DaskUsage,
    OpenDask,
    WorkerSpan,
    diff_usage,
    running_workers,
    usage_of,
)
from wbspawner.model import Profiles
from wbspawner.spawn.budget import spending_group

# ------------------------------------------------------------------ database


def apply_changes(session: Session, changes: Sequence[Change], at: datetime) -> None:
    """Write changes to the accounting database.

    Args:
        session: a database session (committed per change).
        changes: from :func:`diff_usage`.
        at: when they were observed (for changes without their own time).
    """
    for c in changes:
        when = c.at or at
        if c.action == "stop":
            record_stop(session, c.user, when, kind="dask", name=c.name)
        elif c.action == "rescale":
            record_price_change(
                session,
                c.user,
                c.price_per_hour,
                when,
                kind="dask",
                name=c.name,
                units=c.workers,
            )
        elif c.usage is not None:
            u = c.usage
            start = Start(
                user=u.user,
                size=u.size,
                pool=u.pool,
                capacity_type=u.capacity_type,
                group=u.group,
                price_per_hour=c.price_per_hour,
                at=when,
                name=u.name,
                units=c.workers,
                kind="dask",
            )
            record(session, start)


class CostBook:
    """The accounting database as the gateway uses it (one round at a time).

    Args:
        url: SQLAlchemy URL; the tables are created on first use.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._sessions: sessionmaker[Session] | None = None
        self._lock = threading.Lock()

    def sync(self, observed: Sequence[DaskUsage], at: datetime) -> list[Change]:
        """Bring the open records in line with the running clusters.

        Blocking: call it in a worker thread.

        Args:
            observed: the clusters running now.
            at: when they were observed.

        Returns:
            The changes written.
        """
        with self._lock:
            if self._sessions is None:
                self._sessions = open_db(self.url)
            with self._sessions() as session:
                records = [
                    OpenDask(
                        name=r.name,
                        user=r.user,
                        workers=r.units,
                        price_micro_per_hour=r.price_micro_per_hour,
                        since=r.started_at,
                    )
                    for r in list_open(session, "dask")
                ]
                changes = diff_usage(observed, records)
                apply_changes(session, changes, at)
        return changes


# ------------------------------------------------------------------ backend


@dataclass(slots=True)
class _Tracked:
    """A cluster whose backend reports each worker's start and stop."""

    started: datetime
    workers: dict[str, WorkerSpan] = field(default_factory=dict)
    ended: datetime | None = None
    """When the backend stopped the cluster itself."""
    model: Any = None
    """The cluster as last listed (its owner, options and configuration)."""


class CostAccountingMixin(Backend):
    """Records the gateway's Dask clusters in the accounting database.

    Configure through ``c.WorkbenchBackendMixin.cost_db_url`` (this class is a
    base of :class:`~wbspawner.gateway.backends.WorkbenchBackendMixin`).
    """

    cost_tracks_workers: bool = False
    """Whether the backend reports each worker's start and stop
    (:meth:`cost_worker_started`, :meth:`cost_worker_stopped`)."""

    cost_db_url = Unicode(
        DEFAULT_DB_URL,
        help="""
        Accounting database (SQLAlchemy URL) Dask clusters are recorded in.

        The hub records servers in the same database; point both at one URL
        (``WBSPAWNER_COST_DB_URL``). Empty: no Dask accounting.
        """,
        config=True,
    )
    cost_interval = Float(
        30.0,
        min=0.0,
        help="""
        Seconds between two accounting rounds when nothing happens.

        Starts, stops and heartbeats with a new worker count trigger a round at
        once; 0 turns Dask accounting off.
        """,
        config=True,
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb_cost_task: asyncio.Task[None] | None = None
        self._wb_cost_book: CostBook | None = None
        self._wb_cost_wake = asyncio.Event()
        # One round at a time: a round observes, then writes in a thread; two
        # interleaved rounds could write an older observation over a newer one.
        self._wb_cost_round = asyncio.Lock()
        self._wb_cost_workers: MutableMapping[str, int] = {}
        self._wb_cost_groups: MutableMapping[str, str] = {}
        self._wb_cost_stopped: set[str] = set()
        self._wb_cost_tracked: dict[str, _Tracked] = {}

    def profiles(self) -> Profiles:
        """Return the profiles in force (the subclass reads them)."""
        raise NotImplementedError

    def cost_now(self) -> datetime:
        """Return the time changes are recorded at (tests may override it)."""
        return datetime.now(UTC)

    async def setup(self, app: Any) -> None:
        """Set up the backend, then start recording costs."""
        await super().setup(app)
        if self.cost_db_url and self.cost_interval > 0:
            self._wb_cost_book = CostBook(self.cost_db_url)
            self._wb_cost_task = asyncio.ensure_future(self._wb_cost_loop())
            self.log.info(
                "Costs: Dask clusters are recorded (every %gs and on changes)",
                self.cost_interval,
            )

    async def cleanup(self) -> None:
        """Stop recording, clean up the backend, then record the final state."""
        if self._wb_cost_task is not None:
            self._wb_cost_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wb_cost_task
        await super().cleanup()
        if self._wb_cost_book is not None:
            await self.record_costs(final=True)  # clusters stopped at shutdown

    async def start_cluster(self, user: Any, cluster_options: Any) -> str:
        """Start a cluster; remember whose group pays for it."""
        name: str = await super().start_cluster(user, cluster_options)
        if self.cost_tracks_workers and self._wb_cost_book is not None:
            self._wb_cost_tracked[name] = _Tracked(started=self._wb_cost_time())
        with contextlib.suppress(Exception):  # never fail a start over accounting
            self._wb_cost_groups[name] = spending_group(self.profiles(), user.groups)
        self._wb_cost_wake.set()
        return name

    async def stop_cluster(self, cluster_name: str, failed: bool = False) -> None:
        """Stop a cluster; its record is closed now (or when its workers stopped)."""
        await super().stop_cluster(cluster_name, failed=failed)
        self._wb_cost_stopped.add(cluster_name)
        self._wb_cost_wake.set()

    async def on_cluster_heartbeat(self, cluster_name: str, msg: Any) -> None:
        """Handle a heartbeat; a new running-worker count is recorded at once."""
        await super().on_cluster_heartbeat(cluster_name, msg)
        workers = running_workers(msg)
        if self._wb_cost_workers.get(cluster_name) != workers:
            self._wb_cost_workers[cluster_name] = workers
            self._wb_cost_wake.set()

    def cost_worker_started(self, cluster_name: str, worker_name: str) -> None:
        """Count a worker from now on (the backend has just started it).

        Args:
            cluster_name: its cluster.
            worker_name: the worker.
        """
        tracked = self._wb_cost_tracked.get(cluster_name)
        if tracked is not None and worker_name not in tracked.workers:
            tracked.workers[worker_name] = WorkerSpan(start=self._wb_cost_time())
            self._wb_cost_wake.set()

    def cost_worker_stopped(self, cluster_name: str, worker_name: str) -> None:
        """Stop counting a worker (the backend has just stopped it).

        Args:
            cluster_name: its cluster.
            worker_name: the worker.
        """
        tracked = self._wb_cost_tracked.get(cluster_name)
        span = tracked.workers.get(worker_name) if tracked else None
        if tracked is not None and span is not None and span.stop is None:
            at = max(span.start, self._wb_cost_time())
            tracked.workers[worker_name] = dataclasses.replace(span, stop=at)
            self._wb_cost_wake.set()

    def cost_cluster_ended(self, cluster_name: str) -> None:
        """Record that the backend stopped a cluster: its workers are gone too.

        Args:
            cluster_name: the cluster.
        """
        tracked = self._wb_cost_tracked.get(cluster_name)
        if tracked is None or tracked.ended is not None:
            return
        for worker_name in list(tracked.workers):
            self.cost_worker_stopped(cluster_name, worker_name)
        tracked.ended = self._wb_cost_time()
        self._wb_cost_wake.set()

    def _wb_cost_time(self) -> datetime:
        return naive_utc(self.cost_now())

    async def _wb_cost_loop(self) -> None:
        while True:
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11, wait_for
            # swallows a cancellation that arrives in the loop iteration in
            # which the event is set (it returns the result instead), and
            # cleanup() then waits for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cost_interval):
                    await self._wb_cost_wake.wait()
            await self.record_costs()

    async def record_costs(self, final: bool = False) -> list[Change]:
        """Run one round: observe the clusters, diff with the records, write.

        Args:
            final: the gateway is shutting down: clusters it no longer lists
                are stopped now, even if a worker's stop was not reported.

        Returns:
            The changes written (none when the round failed; it is logged).
        """
        book = self._wb_cost_book
        if book is None:
            return []
        try:
            async with self._wb_cost_round:
                # This round covers every change signalled so far.
                self._wb_cost_wake.clear()
                observed = await self._wb_cost_observe(final)
                at = self.cost_now()  # after observing: no reported event is later
                changes = await asyncio.to_thread(book.sync, observed, at)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the database is down: retry next round
            self.log.warning(
                "Costs: Dask usage not recorded (%s: %s); will retry",
                type(err).__name__,
                err,
            )
            return []
        for c in changes:
            if c.action == "stop":
                self.log.info("Costs: cluster %s of %s: stopped", c.name, c.user)
                self._wb_cost_workers.pop(c.name, None)
                self._wb_cost_groups.pop(c.name, None)
                self._wb_cost_tracked.pop(c.name, None)
                continue
            self.log.info(
                "Costs: cluster %s of %s: %s, %d worker(s) at $%.6f/h each",
                c.name,
                c.user,
                c.action,
                c.workers,
                c.price_per_hour,
            )
        return changes

    async def _wb_cost_observe(self, final: bool = False) -> list[DaskUsage]:
        clusters = await self.list_clusters()
        listed = {c.name for c in clusters}
        self._wb_cost_stopped &= listed  # forget clusters that are gone
        profiles = self.profiles()
        out = []
        for c in clusters:
            tracked = self._wb_cost_tracked.get(c.name)
            if tracked is not None:
                tracked.model = c
            elif c.name not in self._wb_cost_stopped:
                out.append(
                    usage_of(
                        c,
                        profiles,
                        self._wb_cost_workers.get(c.name),
                        self._wb_cost_groups.get(c.name, ""),
                    )
                )
        now = self._wb_cost_time()
        for name, tracked in list(self._wb_cost_tracked.items()):
            if tracked.model is None:  # stopped before a round saw it listed
                tracked.model = await self.get_cluster(name)
            if tracked.model is None:
                continue
            gone = name not in listed or name in self._wb_cost_stopped
            spans = tuple(tracked.workers.values())
            running = any(s.stop is None for s in spans)
            stopped_at = tracked.ended
            if stopped_at is None and gone and (final or not running):
                stopped_at = now
            usage = usage_of(
                tracked.model, profiles, None, self._wb_cost_groups.get(name, "")
            )
            out.append(
                dataclasses.replace(
                    usage,
                    spans=spans,
                    started_at=tracked.started,
                    stopped_at=stopped_at,
                )
            )
        return out


class WorkerSpansMixin(CostAccountingMixin):
    """Reports each worker's start and stop, for backends that run workers.

    For dask-gateway's database backends (``DBBackendBase``: local processes,
    job queues), which start and stop every worker themselves through
    ``do_start_worker`` and ``do_stop_worker``. Put it before the backend class
    in the bases.
    """

    cost_tracks_workers = True

    async def do_start_worker(self, worker: Any) -> AsyncIterator[Any]:
        """Start a worker (the backend's); it counts once the backend has it."""
        counted = False
        async for state in super().do_start_worker(worker):
            if not counted:  # the first state: the process or job exists
                self.cost_worker_started(worker.cluster.name, worker.name)
                counted = True
            yield state
        if not counted:
            self.cost_worker_started(worker.cluster.name, worker.name)

    async def do_stop_worker(self, worker: Any) -> None:
        """Stop a worker (the backend's); it stops counting."""
        try:
            await super().do_stop_worker(worker)
        finally:
            self.cost_worker_stopped(worker.cluster.name, worker.name)

    async def do_stop_cluster(self, cluster: Any) -> None:
        """Stop a cluster (the backend's); its last workers stop counting."""
        try:
            await super().do_stop_cluster(cluster)
        finally:
            self.cost_cluster_ended(cluster.name)


def configure_costs(c: Any, environ: Mapping[str, str]) -> str:
    """Set the gateway's accounting database from the environment, as the hub finds it.

    Args:
        c: the traitlets config of ``dask-gateway-server``.
        environ: the environment (``WBSPAWNER_COST_DB_URL``, or
            ``WBSPAWNER_COST_DB_URL_FILE``, or ``WBSPAWNER_STATE_DIR``).

    Returns:
        The URL set (:data:`~wbspawner.costs.accounting.DEFAULT_DB_URL`, a file
        in the gateway's working directory, when the environment names none).

    Raises:
        AccountingDbError: the file said to hold the URL cannot be read.
    """
    url = configured_url(environ) or DEFAULT_DB_URL
    c.WorkbenchBackendMixin.cost_db_url = url
    return url
