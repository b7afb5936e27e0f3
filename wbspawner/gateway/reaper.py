"""No zombie clusters: the gateway backends wbspawner runs, and their reaper.

Upstream dask-gateway keeps a user's clusters running (and billing) after the
user's notebook server has stopped (dask/dask-gateway issues 393 and 255). This
module owns the fix and the backends that carry it:

- :func:`clusters_to_stop`: pure; which clusters belong to users who have no
  active server any more (after a grace period, so a cluster started from a
  server that is just starting is kept).
- :class:`HubUsers`: asks the hub API which users have an active server, with
  the gateway's service token (role scopes ``list:users``, ``read:servers``).
- :class:`Reaper`: one round = observe, decide, stop; any hub error skips the
  round (never stop clusters on missing information).
- :class:`WorkbenchBackendMixin` and the two backends (local processes for tests
  and the demo, Kubernetes for production): per-user options from the profiles
  (re-read when they change), the limit check, and the reaper running as a
  periodic task inside ``dask-gateway-server``.

Idle clusters are stopped by the gateway itself (``idle_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from dask_gateway_server.backends.kubernetes.backend import KubeBackend
from dask_gateway_server.backends.local import UnsafeLocalBackend
from traitlets import Float, List, Unicode, default

from wbspawner.catalog.instances import load_catalog
from wbspawner.gateway.accounting import CostAccountingMixin
from wbspawner.gateway.limits import UsageLedger, usage_from_config, user_usage
from wbspawner.gateway.options import (
    BackendKind,
    OptionsContext,
    cluster_options_for,
)
from wbspawner.model import Profiles
from wbspawner.profiles.loader import ProfilesSource

PAGINATION = "application/jupyterhub-pagination+json"
"""Accept header that makes the hub API page lists instead of truncating them."""


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


class HubUsers:
    """Which hub users have an active server, from the hub's REST API.

    Args:
        session: an aiohttp session (owned by the caller).
        api_url: the hub API, e.g. ``http://127.0.0.1:8081/hub/api``.
        token: the gateway's service token.
    """

    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str):
        self.session = session
        self.api_url = api_url.rstrip("/")
        self.token = token

    async def active(self) -> set[str]:
        """Return the names of users with a pending or running server.

        Returns:
            User names.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200.
        """
        names: set[str] = set()
        offset = 0
        headers = {"Authorization": f"token {self.token}", "Accept": PAGINATION}
        while True:
            async with self.session.get(
                f"{self.api_url}/users",
                params={"state": "active", "offset": str(offset), "limit": "200"},
                headers=headers,
                raise_for_status=True,
                timeout=aiohttp.ClientTimeout(total=20),
            ) as resp:
                page = await resp.json()
            for user in page.get("items", []):
                if user.get("servers", {"": True}):
                    names.add(user["name"])
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return names
            offset = int(following["offset"])


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


class WorkbenchBackendMixin(CostAccountingMixin):
    """Workbench behaviour shared by the backends below (put it first in bases).

    Per-user cluster options come from the profiles (re-read when the files
    change), checked against the user's limits and running clusters; when a hub
    API URL and token are set, a reaper stops the clusters of users without a
    running server. Clusters are recorded for cost accounting (the base class).
    """

    backend_kind: BackendKind = "kube"
    profiles_paths = List(
        Unicode(),
        help="""
        Profiles directories or files, merged in order.

        Re-read when they change (checked at most every
        ``profiles_reload_interval`` seconds); an invalid edit is logged and the
        last good profiles stay in force.
        """,
        config=True,
    )
    profiles_reload_interval = Float(
        5.0, help="Seconds between two checks of the profiles files.", config=True
    )
    catalog_path = Unicode(
        None,
        allow_none=True,
        help="Instance catalogue JSON; ``None`` uses the packaged catalogue.",
        config=True,
    )
    default_image = Unicode(
        "",
        help="""
        Image of a cluster whose client sends none.

        Empty: the image of the user's default server size. Notebooks normally
        send their own image (``DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE``).
        """,
        config=True,
    )
    hub_api_url = Unicode(
        "",
        help="JupyterHub API URL the reaper asks, e.g. http://hub:8081/hub/api.",
        config=True,
    )
    hub_api_token = Unicode(
        "",
        help="""
        The gateway's JupyterHub service token, for the reaper.

        Its service needs a role with ``list:users`` and ``read:servers``.
        Empty: no reaper.
        """,
        config=True,
    )
    reap_interval = Float(
        30.0,
        min=0.0,
        help="Seconds between two reaper rounds; 0 turns the reaper off.",
        config=True,
    )
    reap_grace = Float(
        60.0,
        min=0.0,
        help="Seconds a new cluster is kept even though its owner has no server.",
        config=True,
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb_source: ProfilesSource | None = None
        self._wb_ledger = UsageLedger()
        self._wb_configs: dict[str, dict[str, Any]] = {}
        self._wb_reaper: asyncio.Task[None] | None = None

    @default("cluster_options")
    def _default_cluster_options(self) -> Any:
        return self.workbench_cluster_options

    def profiles(self) -> Profiles:
        """Return the profiles in force, re-reading them when the files changed."""
        if self._wb_source is None:
            catalog = load_catalog(self.catalog_path) if self.catalog_path else None
            self._wb_source = ProfilesSource(
                list(self.profiles_paths),
                catalog,
                self.log,
                interval_s=self.profiles_reload_interval,
            )
        return self._wb_source.current()

    async def workbench_cluster_options(self, user: Any) -> Any:
        """Return the options of one user (the default ``cluster_options``).

        Args:
            user: the gateway user.

        Returns:
            The user's :class:`~dask_gateway_server.options.Options`.
        """
        listed = await user_usage(self, user.name)
        ctx = OptionsContext(
            backend=self.backend_kind,
            existing=self._wb_ledger.merge(user.name, listed),
            default_image=self.default_image or None,
        )
        return cluster_options_for(self.profiles(), user, ctx)

    async def setup(self, app: Any) -> None:
        """Load the profiles (an invalid file fails the start), start the reaper."""
        self.profiles()
        await super().setup(app)
        if self.reap_interval > 0 and self.hub_api_url and self.hub_api_token:
            hub = HubUsers(self.session, self.hub_api_url, self.hub_api_token)
            reaper = Reaper(
                self.list_clusters,
                self.stop_cluster,
                hub.active,
                self.log,
                grace_s=self.reap_grace,
            )
            self._wb_reaper = asyncio.ensure_future(
                reaper.run_forever(self.reap_interval)
            )
            self.log.info("Reaper: every %gs, asks %s", self.reap_interval, hub.api_url)

    async def cleanup(self) -> None:
        """Stop the reaper, then clean up the backend."""
        if self._wb_reaper is not None:
            self._wb_reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wb_reaper
        await super().cleanup()

    async def process_cluster_options(self, user: Any, request: Any) -> Any:
        """Validate a request (handler and limit check); keep its config."""
        options, config = await super().process_cluster_options(user, request)
        self._wb_configs[user.name] = config.to_dict()
        return options, config

    async def start_cluster(self, user: Any, cluster_options: Any) -> str:
        """Create a cluster; one at a time per user, so limits hold under races."""
        async with self._wb_ledger.lock(user.name):
            name: str = await super().start_cluster(user, cluster_options)
            config = self._wb_configs.pop(user.name, None)
            if config is not None:
                self._wb_ledger.remember(user.name, usage_from_config(name, config))
            return name


class WorkbenchUnsafeLocalBackend(WorkbenchBackendMixin, UnsafeLocalBackend):
    """Schedulers and workers as local processes (tests and the demo only).

    ``UnsafeLocalBackend`` runs every cluster as the gateway's own user; never
    use ``LocalBackend`` here (2026.3.0 chowns ``/`` when run as root).
    """

    backend_kind: BackendKind = "local"
    extra_path = List(
        Unicode(),
        help="""
        Directories put first on the PATH of schedulers and workers.

        Lets ``dask scheduler`` / ``dask worker`` resolve to the gateway's own
        Python environment.
        """,
        config=True,
    )

    def get_env(self, cluster: Any) -> dict[str, str]:
        """Return the process environment, with :attr:`extra_path` first on PATH."""
        env: dict[str, str] = super().get_env(cluster)
        if self.extra_path:
            parts = [*self.extra_path, env.get("PATH", "")]
            env["PATH"] = os.pathsep.join(p for p in parts if p)
        return env


class WorkbenchKubeBackend(WorkbenchBackendMixin, KubeBackend):
    """Schedulers and workers as pods on the workbench's pools (production)."""

    backend_kind: BackendKind = "kube"
