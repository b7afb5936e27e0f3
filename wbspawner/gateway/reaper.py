"""No zombie clusters: which clusters to stop, and the loop that stops them.

Upstream dask-gateway keeps a user's clusters running (and billing) after the
user's notebook server has stopped (dask/dask-gateway issues 393 and 255). This
module owns the fix:

- :func:`clusters_to_stop`: pure; which clusters belong to users who have no
  active server any more (after a grace period, so a cluster started from a
  server that is just starting is kept).
- :class:`Reaper`: one round = observe (the hub's active users, through
  :class:`wbspawner.adapters.hubapi.HubApi`), decide, stop; any hub error skips
  the round (never stop clusters on missing information).

The backends that run the reaper inside ``dask-gateway-server`` are in
:mod:`wbspawner.gateway.backends`. Idle clusters are stopped by the gateway
itself (``idle_timeout``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRef:
    """A cluster as the reaper sees it."""

    name: str
    username: str
    started_s: float | None
    """Start time, seconds since the epoch (``None``: unknown)."""


def clusters_to_stop(
    clusters: Sequence[ClusterRef],
    active_users: Collection[str],
    now_s: float,
    grace_s: float,
) -> list[ClusterRef]:
    """Return the clusters whose owner has no active server.

    Clusters of JupyterHub services (gateway user names ``service:<name>``) are
    left alone: services have no servers and manage their own clusters.

    Args:
        clusters: the gateway's pending and running clusters.
        active_users: hub users with a pending or running server.
        now_s: the time, seconds since the epoch.
        grace_s: a cluster younger than this is kept.

    Returns:
        The clusters to stop, in the given order.
    """
    return [
        c
        for c in clusters
        if ":" not in c.username
        and c.username not in active_users
        and (c.started_s is None or now_s - c.started_s >= grace_s)
    ]


class Reaper:
    """Stops the clusters of users whose server has stopped.

    Args:
        list_clusters: the backend's ``list_clusters``.
        stop_cluster: the backend's ``stop_cluster``.
        active_users: returns the users with an active server.
        log: the gateway's logger.
        grace_s: clusters younger than this are kept.
        clock: seconds since the epoch (tests pass a fake).
    """

    def __init__(
        self,
        list_clusters: Callable[[], Awaitable[Sequence[Any]]],
        stop_cluster: Callable[[str], Awaitable[None]],
        active_users: Callable[[], Awaitable[Collection[str]]],
        log: Any,
        grace_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.list_clusters = list_clusters
        self.stop_cluster = stop_cluster
        self.active_users = active_users
        self.log = log
        self.grace_s = grace_s
        self.clock = clock

    async def run_once(self) -> list[str]:
        """Run one round: observe, decide, stop.

        Returns:
            Names of the clusters stopped (none when the hub could not be asked).
        """
        try:
            active = await self.active_users()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the hub is down or refused: decide nothing
            self.log.warning("Reaper: cannot list active hub users (%s); skipping", err)
            return []
        refs = [
            ClusterRef(
                name=c.name,
                username=c.username,
                started_s=c.start_time / 1000 if c.start_time else None,
            )
            for c in await self.list_clusters()
        ]
        stopped = []
        for ref in clusters_to_stop(refs, active, self.clock(), self.grace_s):
            self.log.info(
                "Reaper: stopping cluster %s of %s: the user has no running server",
                ref.name,
                ref.username,
            )
            try:
                await self.stop_cluster(ref.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("Reaper: stopping cluster %s failed", ref.name)
                continue
            stopped.append(ref.name)
        return stopped

    async def run_forever(self, interval_s: float) -> None:
        """Run a round every ``interval_s`` seconds until cancelled.

        Args:
            interval_s: seconds between rounds.
        """
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("Reaper: round failed")
            await asyncio.sleep(interval_s)
