"""Dask in the user's JupyterLab on the workbench (jupyter-server extension).

dask-labextension's sidebar lists the clusters it started and shows their
dashboards in JupyterLab panes. On the workbench:

- "+ NEW" starts a cluster on the hub's Dask Gateway: the dask config file
  this package installs (``<prefix>/etc/dask/wb-dask-lab.yaml``) makes
  ``dask_gateway.GatewayCluster`` the extension's cluster factory;
- a gateway cluster's dashboard is served by the hub's dashboards front to its
  owner only, and dask-labextension reaches dashboards from the server with
  no credential the front would take. For gateway dashboards only
  (:mod:`wb_dask_lab.links`), this extension puts its own handlers in place
  of dask-labextension's two, which send the server's own hub token to the
  gateway's address, as the dask-gateway client does:

  - :class:`GatewayDashboardProxy`: the panes of a cluster chosen in the
    sidebar (``dask/dashboard/<cluster id>/<plot>``, websockets included),
    relayed from the cluster's dashboard at the gateway;
  - :class:`GatewayDashboardCheck`: the check of a dashboard link pasted into
    the sidebar (``dask/dashboard-check/<url>``), whose panes then load in the
    browser straight from the hub with its login.

  Every other cluster and link goes to dask-labextension's own handlers.

The routes are dask-labextension's: this extension must load after it, which
jupyter-server does (it loads extensions in the order of their names).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from dask_labextension import dashboardhandler
from dask_labextension.dashboardhandler import (
    DaskDashboardCheckHandler,
    DaskDashboardHandler,
)
from jupyter_server_proxy.handlers import ProxyHandler
from tornado import httpclient, web
from tornado.routing import Rule

from wb_dask_lab.links import Gateway, cluster_of, dashboard_base, plots_url

CHECK_TIMEOUT_S = 10.0
"""Seconds one check of a gateway dashboard may take."""


class GatewayDashboardCheck(DaskDashboardCheckHandler):
    """dask-labextension's dashboard check, with the hub token for gateway links."""

    gateway: Gateway | None = None
    token: str = ""

    @web.authenticated
    async def get(self, url: str) -> None:
        """Answer whether ``url`` is a live dashboard, and its plots."""
        link = unquote(url)
        target = plots_url(link, self.gateway) if self.gateway else None
        if target is None:
            await super().get(url)
            return
        plots: dict[str, Any] = {}
        try:
            response = await httpclient.AsyncHTTPClient().fetch(
                target,
                headers={"Authorization": f"token {self.token}"},
                follow_redirects=False,
                raise_error=False,
                request_timeout=CHECK_TIMEOUT_S,
            )
        except (OSError, httpclient.HTTPClientError) as err:  # no answer at all
            self.log.info("Dask dashboard check: %s: %s", target, err)
        else:
            if response.code == 200:
                try:
                    plots = dict(json.loads(response.body))
                except (ValueError, TypeError):
                    plots = {}
            else:
                self.log.info("Dask dashboard check: %s: %s", target, response.code)
        self.finish(
            json.dumps(
                {
                    "url": dashboard_base(link),
                    "isActive": bool(plots),
                    "effectiveUrl": None,
                    "plots": plots,
                }
            )
        )


HEADERS_KEPT_BACK = ("Cookie", "Authorization", "X-XSRFToken", "Host")
"""The browser's credentials for this server (and its host) do not go on."""


class GatewayDashboardProxy(DaskDashboardHandler):
    """dask-labextension's dashboard proxy, reaching gateway clusters' dashboards.

    dask-labextension relays ``<host>:<port>/<plot>`` of a cluster's dashboard
    link, which loses a gateway link's path; this relays
    ``<gateway address>/clusters/<name>/<plot>`` with the server's hub token.
    """

    gateway: Gateway | None = None
    token: str = ""
    _base: str | None = None
    """``<gateway address>/clusters/<name>`` while relaying a gateway dashboard."""

    def _gateway_base(self, cluster_id: str) -> str | None:
        model = dashboardhandler.manager.get_cluster(cluster_id)
        if model is None or self.gateway is None:
            return None
        name = cluster_of(str(model.get("dashboard_link") or ""), self.gateway)
        return None if name is None else f"{self.gateway.address}/clusters/{name}"

    def _host_port(self) -> tuple[str, int]:
        url = urlsplit(self._base or "")
        return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)

    def proxy(self, cluster_id: str, proxied_path: str) -> Any:
        """Relay a request to the cluster's dashboard."""
        self._base = self._gateway_base(cluster_id)
        if self._base is None:
            return super().proxy(cluster_id, proxied_path)
        return ProxyHandler.proxy(self, *self._host_port(), proxied_path)

    async def open(self, cluster_id: str, proxied_path: str) -> Any:
        """Open a websocket to the cluster's dashboard."""
        self._base = self._gateway_base(cluster_id)
        if self._base is None:
            return await super().open(cluster_id, proxied_path)
        return await self.proxy_open(*self._host_port(), proxied_path)

    def _check_host_allowlist(self, host: str) -> bool:
        # The host of the gateway's own address, which the client reaches too.
        return self._base is not None or bool(super()._check_host_allowlist(host))

    def get_client_uri(
        self, protocol: str, host: str, port: int, proxied_path: str
    ) -> str:
        """Return the upstream URL: the path under the cluster's dashboard."""
        if self._base is None:
            return str(super().get_client_uri(protocol, host, port, proxied_path))
        scheme, _, rest = self._base.partition("://")
        if protocol == "ws":
            scheme = "wss" if scheme == "https" else "ws"
        path = quote(proxied_path.lstrip("/"), safe=":/@!$&'()*+,;=-._~")
        query = f"?{self.request.query}" if self.request.query else ""
        return f"{scheme}://{rest}/{path}{query}"

    def proxy_request_headers(self) -> Any:
        """Return the request headers, with the server's token for the front."""
        headers = super().proxy_request_headers()
        if self._base is not None:
            for name in HEADERS_KEPT_BACK:
                if name in headers:
                    del headers[name]
            headers["Authorization"] = f"token {self.token}"
        return headers


def _swap(app: web.Application, old: type, new: type) -> int:
    """Route what goes to handler ``old`` to ``new``; return how many routes."""
    swapped = 0
    for host_rule in app.default_router.rules:
        for rule in getattr(host_rule.target, "rules", ()):
            if isinstance(rule, Rule) and rule.target is old:
                rule.target = new
                swapped += 1
    return swapped


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "wb_dask_lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    gateway = Gateway.from_env(dict(os.environ))
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if gateway is None or not token:
        serverapp.log.info("wb_dask_lab: no Dask Gateway behind a hub; nothing to do")
        return
    for handler in (GatewayDashboardCheck, GatewayDashboardProxy):
        handler.gateway = gateway
        handler.token = token
    swapped = _swap(
        serverapp.web_app, DaskDashboardCheckHandler, GatewayDashboardCheck
    ) * _swap(serverapp.web_app, DaskDashboardHandler, GatewayDashboardProxy)
    if not swapped:
        serverapp.log.warning(
            "wb_dask_lab: dask-labextension's dashboard routes are not there; "
            "gateway dashboards will show as inactive in the Dask sidebar"
        )
        return
    serverapp.log.info(
        "wb_dask_lab: Dask sidebar dashboards reached at %s", gateway.address
    )
