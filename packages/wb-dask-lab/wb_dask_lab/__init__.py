"""Dask in the user's JupyterLab on the workbench (jupyter-server extension).

dask-labextension's sidebar lists the clusters it started and shows their
dashboards in JupyterLab panes. On the workbench:

- "+ NEW" starts a cluster on the hub's Dask Gateway: the dask config file
  this package installs (``<prefix>/etc/dask/wb-dask-lab.yaml``) makes
  ``dask_gateway.GatewayCluster`` the extension's cluster factory;
- a gateway cluster's dashboard is served by the hub's dashboards front to its
  owner only. dask-labextension checks a dashboard from the server (it fetches
  ``individual-plots.json``), with no credential the front would take; this
  extension puts :class:`GatewayDashboardCheck` in place of that check for
  gateway links only (:mod:`wb_dask_lab.links`): it fetches the plots from the
  gateway's address with the server's own hub token, as the dask-gateway
  client does. Every other link goes to dask-labextension's own check. The
  panes themselves load in the browser, with the hub login.

The check's route is dask-labextension's (``dask/dashboard-check/<url>``): the
extension must load after dask-labextension's, which jupyter-server does (it
loads extensions in the order of their names).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote

from dask_labextension.dashboardhandler import DaskDashboardCheckHandler
from tornado import httpclient, web
from tornado.routing import Rule

from wb_dask_lab.links import Gateway, dashboard_base, plots_url

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
        response = await httpclient.AsyncHTTPClient().fetch(
            target,
            headers={"Authorization": f"token {self.token}"},
            follow_redirects=False,
            raise_error=False,
            request_timeout=CHECK_TIMEOUT_S,
        )
        plots: dict[str, Any] = {}
        if response.code == 200:
            try:
                plots = dict(json.loads(response.body))
            except (ValueError, TypeError):
                plots = {}
        else:
            self.log.info("Dask dashboard check: %s answered %s", target, response.code)
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


def _swap_check(app: web.Application) -> int:
    """Route dask-labextension's check to :class:`GatewayDashboardCheck`."""
    swapped = 0
    for host_rule in app.default_router.rules:
        for rule in getattr(host_rule.target, "rules", ()):
            if isinstance(rule, Rule) and rule.target is DaskDashboardCheckHandler:
                rule.target = GatewayDashboardCheck
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
    GatewayDashboardCheck.gateway = gateway
    GatewayDashboardCheck.token = token
    if not _swap_check(serverapp.web_app):
        serverapp.log.warning(
            "wb_dask_lab: dask-labextension's dashboard check is not routed; "
            "gateway dashboards will show as inactive in the Dask sidebar"
        )
        return
    serverapp.log.info(
        "wb_dask_lab: Dask sidebar dashboards checked at %s", gateway.address
    )
