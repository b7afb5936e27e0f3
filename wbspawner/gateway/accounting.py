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
  whenever a cluster starts, stops or reports a different worker count in its
  heartbeat; a database failure is logged and retried, never raised into the
  gateway;
- :func:`configure_costs`: the database URL from ``WBSPAWNER_COST_DB_URL``.

Running workers are those the scheduler reports in its heartbeat (active and
closing). Schedulers are not charged: the issue counts workers × hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dask_gateway_server.backends.base import Backend
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Float, Unicode

from wbspawner.costs.accounting import (
    DEFAULT_DB_URL,
    Start,
    list_open,
    open_db,
    record,
    record_price_change,
    record_stop,
)
from wbspawner.gateway.billing import (
    Change,
    DaskUsage,
    OpenDask,
    diff_usage,
    running_workers,
    usage_of,
)
from wbspawner.model import Profiles
from wbspawner.spawn.budget import spending_group

ENV_DB_URL = "WBSPAWNER_COST_DB_URL"
"""The accounting database URL (the same variable the hub reads)."""


# ------------------------------------------------------------------ database


def apply_changes(session: Session, changes: Sequence[Change], at: datetime) -> None:
    """Write changes to the accounting database.

    Args:
        session: a database session (committed per change).
        changes: from :func:`diff_usage`.
        at: when they were observed.
    """
    for c in changes:
        if c.action == "stop":
            record_stop(session, c.user, at, kind="dask", name=c.name)
        elif c.action == "rescale":
            record_price_change(
                session,
                c.user,
                c.price_per_hour,
                at,
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
                at=at,
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
                    )
                    for r in list_open(session, "dask")
                ]
                changes = diff_usage(observed, records)
                apply_changes(session, changes, at)
        return changes


# ------------------------------------------------------------------ backend


class CostAccountingMixin(Backend):
    """Records the gateway's Dask clusters in the accounting database.

    Configure through ``c.WorkbenchBackendMixin.cost_db_url`` (this class is a
    base of :class:`~wbspawner.gateway.backends.WorkbenchBackendMixin`).
    """

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
            await self.record_costs()  # clusters stopped at shutdown

    async def start_cluster(self, user: Any, cluster_options: Any) -> str:
        """Start a cluster; remember whose group pays for it."""
        name: str = await super().start_cluster(user, cluster_options)
        with contextlib.suppress(Exception):  # never fail a start over accounting
            self._wb_cost_groups[name] = spending_group(self.profiles(), user.groups)
        self._wb_cost_wake.set()
        return name

    async def stop_cluster(self, cluster_name: str, failed: bool = False) -> None:
        """Stop a cluster; its record is closed now."""
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

    async def record_costs(self) -> list[Change]:
        """Run one round: observe the clusters, diff with the records, write.

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
                at = self.cost_now()
                observed = await self._wb_cost_observe()
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

    async def _wb_cost_observe(self) -> list[DaskUsage]:
        clusters = await self.list_clusters()
        listed = {c.name for c in clusters}
        self._wb_cost_stopped &= listed  # forget clusters that are gone
        profiles = self.profiles()
        return [
            usage_of(
                c,
                profiles,
                self._wb_cost_workers.get(c.name),
                self._wb_cost_groups.get(c.name, ""),
            )
            for c in clusters
            if c.name not in self._wb_cost_stopped
        ]


def configure_costs(c: Any, environ: Mapping[str, str]) -> str:
    """Set the gateway's accounting database from the environment.

    Args:
        c: the traitlets config of ``dask-gateway-server``.
        environ: the environment (``WBSPAWNER_COST_DB_URL``).

    Returns:
        The URL set (:data:`~wbspawner.costs.accounting.DEFAULT_DB_URL`, a file
        in the gateway's working directory, when the variable is unset).
    """
    url = (environ.get(ENV_DB_URL) or "").strip() or DEFAULT_DB_URL
    c.WorkbenchBackendMixin.cost_db_url = url
    return url
