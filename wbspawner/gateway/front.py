"""``python -m wbspawner.gateway.front``: the dashboards front of Dask Gateway.

dask-gateway serves every cluster's dashboard at
``/services/dask-gateway/clusters/<name>/`` to anyone who asks (upstream relies
on the name being hard to guess). This process is the hub's ``dask-gateway``
service instead: the hub's proxy sends the whole prefix here, and the front

- passes the gateway's API (``<prefix>/api/…``) through untouched (the gateway
  authenticates it itself);
- lets a dashboard request through only for the cluster's owner or a hub
  admin (:func:`~wbspawner.gateway.front_policy.may_view`), identified by
  JupyterHub's own service auth (:class:`jupyterhub.services.auth.HubOAuth`):
  the service's OAuth cookie in a browser, which is sent through the hub's
  OAuth flow when it has none, or a hub token in the ``Authorization`` header
  (``token``, ``Bearer``, or ``jupyterhub`` as ``dask_gateway`` sends it);
  others get 403, an unknown cluster 404, an unidentified client 401;
- streams each response through as it arrives, websockets included, with the
  hub's credentials kept from the scheduler
  (:mod:`~wbspawner.gateway.front_policy`).

Hub permissions: none beyond the service's own. The front identifies a request
by asking ``GET /hub/api/user`` with the request's own token (any token may
identify itself, admin flag included), and completes OAuth with the service's
token as its client secret; the owner of a cluster comes from the gateway's
owner route (:func:`~wbspawner.adapters.gatewayhttp.add_owner_route`) with the
same token.

Settings come from the gateway's variables (:class:`~wbspawner.gateway.config.
GatewaySettings`): ``WBSPAWNER_DASK_GATEWAY_URL`` (the gateway's proxy),
``…_FRONT_URL`` (where to listen), ``…_API_TOKEN[_FILE]`` or
``JUPYTERHUB_API_TOKEN``, ``…_HUB_API_URL`` or ``JUPYTERHUB_API_URL``. Tornado
handlers: :mod:`~wbspawner.gateway.front_web`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import secrets
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuth
from traitlets import Float, Int, default
from traitlets.config import Application

from wbspawner.adapters.gatewayhttp import GatewayHttp, Timeouts
from wbspawner.adapters.parent import PARENT_PID_HELP, watch_parent
from wbspawner.gateway.config import (
    ACCESS_SCOPE,
    PREFIX,
    SERVICE_NAME,
    GatewaySettings,
    GatewaySettingsError,
)
from wbspawner.gateway.front_web import FrontContext, OwnerCache, make_app
from wbspawner.service import HUB_LOG_DATEFMT, HUB_LOG_FORMAT


class FrontAuth(HubOAuth):
    """JupyterHub's service OAuth, also reading ``Authorization: jupyterhub …``.

    ``dask_gateway.JupyterHubAuth`` sends its token with the scheme
    ``jupyterhub``; HubAuth itself knows only ``token`` and ``Bearer``.
    """

    auth_header_pat = re.compile(r"(?:token|bearer|jupyterhub)\s+(.+)", re.IGNORECASE)


class DashboardFront(Application):
    """The hub's ``dask-gateway`` service: the gateway, dashboards for owners only."""

    name = "wbspawner-dask-front"
    description = "Dask Gateway behind the hub: dashboards for their owners only."

    connect_timeout = Float(
        10.0, config=True, help="Seconds to connect to the gateway's proxy."
    )
    request_timeout = Float(
        300.0,
        config=True,
        help="""
        Seconds one relayed request may take, streaming included.

        The gateway's API long-polls a starting cluster for less than this.
        """,
    )
    owner_timeout = Float(
        15.0, config=True, help="Seconds one owner lookup at the gateway may take."
    )
    owner_cache_seconds = Float(
        300.0, config=True, help="Seconds a cluster's confirmed owner is remembered."
    )
    auth_cache_seconds = Int(
        60,
        config=True,
        help="""
        Seconds the hub's answer about a token is remembered.

        Short, so that a revoked token or a removed admin flag takes effect soon.
        """,
    )
    max_clients = Int(
        100, config=True, help="Requests to the gateway in flight at once."
    )
    max_body_size = Int(
        16 * 2**20,
        config=True,
        help="Bytes a request body may have (bodies are read whole; the API's are "
        "small JSON).",
    )
    websocket_max_message_size = Int(
        32 * 2**20, config=True, help="Bytes one websocket message may have."
    )
    websocket_ping_interval = Float(
        30.0,
        config=True,
        help="Seconds between pings on idle websockets (0: none), on both sides.",
    )
    parent_pid = Int(0, config=True, help=PARENT_PID_HELP)

    aliases = {"log-level": "Application.log_level"}

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    @default("log_format")
    def _default_log_format(self) -> str:
        return HUB_LOG_FORMAT  # the front's lines sit in the hub's log

    @default("log_datefmt")
    def _default_log_datefmt(self) -> str:
        return HUB_LOG_DATEFMT

    def settings_from_env(self) -> GatewaySettings:
        """Return the gateway settings the front needs, checked.

        Raises:
            GatewaySettingsError: the gateway URL, the front URL, the token or
                the hub API URL is missing.
        """
        settings = GatewaySettings.from_env(os.environ)
        missing = [
            name
            for name, value in (
                ("URL", settings.url),
                ("FRONT_URL", settings.front_url),
                ("API_TOKEN", settings.api_token),
                ("HUB_API_URL", settings.hub_api_url),
            )
            if not value
        ]
        if missing:
            raise GatewaySettingsError(
                "the dashboards front needs WBSPAWNER_DASK_GATEWAY_"
                + ", WBSPAWNER_DASK_GATEWAY_".join(missing)
            )
        return settings

    def make_auth(self, settings: GatewaySettings) -> FrontAuth:
        """Return the hub auth of the ``dask-gateway`` service."""
        return FrontAuth(
            api_url=settings.hub_api_url or "",
            api_token=settings.api_token or "",
            oauth_client_id=f"service-{SERVICE_NAME}",
            base_url=PREFIX + "/",
            oauth_redirect_uri=PREFIX + "/oauth_callback",
            access_scopes={ACCESS_SCOPE},
            cache_max_age=self.auth_cache_seconds,
        )

    def make_gateway(self, settings: GatewaySettings) -> GatewayHttp:
        """Return the client of the gateway's proxy."""
        return GatewayHttp(
            settings.url or "",
            PREFIX,
            settings.api_token or "",
            timeouts=Timeouts(
                connect=self.connect_timeout,
                request=self.request_timeout,
                owner=self.owner_timeout,
            ),
            max_clients=self.max_clients,
            max_message_size=self.websocket_max_message_size,
        )

    async def serve(self, settings: GatewaySettings) -> None:
        """Listen on the front URL until cancelled or the managing hub is gone.

        Args:
            settings: from :meth:`settings_from_env`.
        """
        from tornado.httpserver import HTTPServer

        gateway = self.make_gateway(settings)
        context = FrontContext(
            gateway=gateway,
            auth=self.make_auth(settings),
            owners=OwnerCache(gateway.owner_of, self.owner_cache_seconds),
            log=self.log,
        )
        app = make_app(
            context,
            cookie_secret=secrets.token_bytes(32),
            websocket_max_message_size=self.websocket_max_message_size,
            websocket_ping_interval=self.websocket_ping_interval or None,
        )
        url = urlsplit(settings.front_url or "")
        server = HTTPServer(app, max_body_size=self.max_body_size)
        server.listen(url.port or 80, _bind_host(url.hostname or ""))
        self.log.info(
            "Dask dashboards front on %s, forwarding to %s",
            settings.front_url,
            settings.url,
        )
        stop = asyncio.Event()
        watch = watch_parent(self.parent_pid, stop, self.log, "dask-gateway front")
        try:
            await stop.wait()
        finally:
            if watch is not None:
                watch.stop()
            server.stop()
            gateway.close()

    def start(self) -> None:
        """Run the front until interrupted."""
        try:
            settings = self.settings_from_env()
        except GatewaySettingsError as err:  # the operator's to fix: no traceback
            self.log.critical("Cannot start: %s", err)
            self.exit(1)
        # Tornado's loggers (access, errors, JupyterHub's service auth) write
        # through the application's handler, with its level and layout.
        for name in ("tornado.access", "tornado.application", "tornado.general"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.parent = self.log
        try:
            asyncio.run(self.serve(settings))
        except KeyboardInterrupt:
            pass


def _bind_host(host: str) -> str:
    """Listen on a loopback or literal address as given, on all for a name.

    A Kubernetes Service name (``dask-dashboards``) is how others reach the
    front, not an address of its own pod.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1" if host == "localhost" else ""
    return host


def main(argv: list[str] | None = None) -> None:
    """Run the front (``python -m wbspawner.gateway.front``)."""
    DashboardFront.launch_instance(argv)


if __name__ == "__main__":
    main()
