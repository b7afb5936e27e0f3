"""The Dask Gateway backends wbspawner runs, with their per-user options and reaper.

This module owns what ``dask-gateway-server`` loads by class path
(``c.DaskGateway.backend_class``, see :data:`wbspawner.gateway.config.BACKENDS`):

- :class:`WorkbenchBackendMixin`: per-user options from the profiles (re-read
  when they change), the limit check, cost accounting, the owner route of
  :mod:`wbspawner.adapters.gatewayhttp` (for the dashboards front), the reaper of
  :mod:`wbspawner.gateway.reaper` running as a periodic task, asking the hub
  through :class:`wbspawner.adapters.hubapi.HubApi` (on the backend's own
  aiohttp session), and :mod:`wbspawner.adapters.route_watch` on the API server;
- :class:`WorkbenchUnsafeLocalBackend`: local processes, for tests and the demo;
- :class:`WorkbenchKubeBackend`: pods on the workbench's pools, for production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from dask_gateway_server.backends.kubernetes.backend import KubeBackend
from dask_gateway_server.backends.local import UnsafeLocalBackend
from traitlets import Float, List, Unicode, default

from wbspawner.adapters.gatewayhttp import add_owner_route
from wbspawner.adapters.hubapi import HubApi
from wbspawner.adapters.route_watch import route_watch_middleware
from wbspawner.catalog.instances import load_catalog
from wbspawner.gateway.accounting import CostAccountingMixin, WorkerSpansMixin
from wbspawner.gateway.limits import (
    UsageLedger,
    known_clusters,
    usage_from_config,
    user_usage,
)
from wbspawner.gateway.options import (
    BackendKind,
    OptionsContext,
    cluster_options_for,
)
from wbspawner.gateway.reaper import Reaper
from wbspawner.model import Profiles
from wbspawner.profiles.loader import ProfilesSource


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
        Also the credential the dashboards front shows the owner route (the
        front is the same hub service). Empty: no reaper, no owner route.
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
        known = await known_clusters(self, user.name)
        ctx = OptionsContext(
            backend=self.backend_kind,
            existing=self._wb_ledger.merge(user.name, listed, known),
            default_image=self.default_image or None,
        )
        return cluster_options_for(self.profiles(), user, ctx)

    async def setup(self, app: Any) -> None:
        """Load the profiles (an invalid file fails the start), start the reaper.

        Also adds the owner route the dashboards front asks.
        """
        self.profiles()
        app.middlewares.append(route_watch_middleware(self.log))
        add_owner_route(app, self.get_cluster, self.hub_api_token)
        await super().setup(app)
        if self.reap_interval > 0 and self.hub_api_url and self.hub_api_token:
            hub = HubApi(self.hub_api_url, self.hub_api_token, session=self.session)
            reaper = Reaper(
                self.list_clusters,
                self.stop_cluster,
                hub.active_users,
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

    async def stop_cluster(self, cluster_name: str, failed: bool = False) -> None:
        """Stop a cluster; it no longer counts against its owner's limits."""
        await super().stop_cluster(cluster_name, failed=failed)
        self._wb_ledger.release(cluster_name)


class WorkbenchUnsafeLocalBackend(
    WorkbenchBackendMixin, WorkerSpansMixin, UnsafeLocalBackend
):
    """Schedulers and workers as local processes (tests and the demo only).

    ``UnsafeLocalBackend`` runs every cluster as the gateway's own user; never
    use ``LocalBackend`` here (2026.3.0 chowns ``/`` when run as root). It
    starts and stops each worker itself, so accounting counts each worker from
    its own start to its own stop.
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
