"""The warmer's web face: admin page, JSON API and metrics, behind hub OAuth.

This module owns the tornado handlers under the service prefix:

- ``<prefix>``: the admin page (per pool × zone table, the plan with its
  reasons, errors, a timeline plot); users need ``access:services!service=
  <name>`` (granted to the admin group only), everyone else gets 403;
- ``<prefix>oauth_callback``: the hub OAuth callback;
- ``<prefix>api/status``: the page's data as JSON (same access);
- ``<prefix>api/readiness``: per size "ready now" or "about N minutes", for any
  hub user or service with a token (the spawn form reads it);
- ``<prefix>metrics``: Prometheus text (same access as the page unless
  ``metrics_require_auth`` is off);
- ``<prefix>costs`` and ``<prefix>api/costs``: spending per user, group or size
  from the accounting database, with a plot (:mod:`wbspawner.costs.web`; same
  access as the page).

Handlers only render what :class:`~wbspawner.warmer.app.WarmerApp` holds; they
decide nothing.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from wbspawner.catalog.pricing import format_price
from wbspawner.costs.web import make_cost_handlers


class _Base(HubOAuthenticated, web.RequestHandler):
    """Handlers that need the warmer app (in ``settings["warmer"]``)."""

    @property
    def warmer(self) -> Any:
        """The running WarmerApp."""
        return self.settings["warmer"]

    def write_json(self, data: object) -> None:
        """Write ``data`` as JSON."""
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, indent=1, sort_keys=True, default=str))


class PageHandler(_Base):
    """The admin page."""

    @web.authenticated
    def get(self) -> None:
        """Render the page."""
        self.set_header("Cache-Control", "no-store")
        self.finish(render_page(self.warmer.status(), self.warmer.timeline()))


class StatusHandler(_Base):
    """The page's data as JSON."""

    @web.authenticated
    def get(self) -> None:
        """Return the status."""
        self.write_json(self.warmer.status())


class ReadinessHandler(_Base):
    """Per size: ready now, or about how many minutes; any hub identity may read."""

    @property
    def hub_scopes(self) -> None:
        """No scope needed: any user or service the hub identifies may read it."""
        return None

    @web.authenticated
    def get(self) -> None:
        """Return the readiness."""
        self.write_json(self.warmer.readiness())


class MetricsHandler(_Base):
    """Prometheus metrics."""

    def prepare(self) -> None:
        """Require hub access unless metrics are open."""
        if self.warmer.metrics_require_auth and self.current_user is None:
            raise web.HTTPError(403, "metrics need a hub token with access")

    def get(self) -> None:
        """Return the metrics text."""
        body, content_type = self.warmer.metrics_text()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def make_handlers(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """Return the routes under a service prefix.

    Args:
        prefix: the service prefix, e.g. ``/services/warmer/``.

    Returns:
        tornado (pattern, handler) pairs.
    """
    p = prefix if prefix.endswith("/") else prefix + "/"
    return [
        (p.rstrip("/") + "/?", PageHandler),
        (p + "oauth_callback", HubOAuthCallbackHandler),
        (p + "api/status", StatusHandler),
        (p + "api/readiness", ReadinessHandler),
        (p + "metrics", MetricsHandler),
        *make_cost_handlers(p),
    ]


def make_app(warmer: Any, prefix: str) -> web.Application:
    """Return the service's tornado application.

    Args:
        warmer: the running :class:`~wbspawner.warmer.app.WarmerApp`.
        prefix: the service prefix.

    Returns:
        The application (call ``listen``).
    """
    return web.Application(
        make_handlers(prefix),
        warmer=warmer,
        cost_db_url=warmer.cost_db_url,
        cost_timezone=warmer.source.current().warm.timezone,
        cookie_secret=os.urandom(32),
    )


# ------------------------------------------------------------------ the page

_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.err{color:#a00}.muted{color:#777}
"""


def _row(cell: dict[str, Any]) -> str:
    e = html.escape
    values = [
        e(cell["pool"]),
        e(cell["zone"]),
        str(cell["target"]),
        str(cell["warm_nodes"]),
        f"{cell['placeholders']['running']} + {cell['placeholders']['pending']}",
        str(cell["users"]),
        f"{cell['nodes']['spot']} / {cell['nodes']['on_demand']}",
        format_price(cell["warm_cost_per_hour"]),
        format_price(cell["warm_cost_today"], ""),
        format_price(cell["node_cost_per_hour"]),
    ]
    tds = "".join(
        f'<td class="l">{v}</td>' if i < 2 else f"<td>{v}</td>"
        for i, v in enumerate(values)
    )
    return f"<tr>{tds}</tr>"


def render_page(status: dict[str, Any], svg: str) -> str:
    """Return the admin page's HTML.

    Args:
        status: :meth:`WarmerApp.status`.
        svg: the timeline plot.

    Returns:
        A complete HTML document; every value is escaped.
    """
    e = html.escape
    plan = status.get("plan") or {}
    totals = status.get("totals") or {}
    head = (
        "<tr><th class=l>pool</th><th class=l>zone</th><th>target</th>"
        "<th>warm nodes</th><th>placeholders running + pending</th><th>users</th>"
        "<th>nodes spot / on-demand</th><th>warm $/h now</th><th>warm $ today</th>"
        "<th>all nodes $/h now</th></tr>"
    )
    rows = "".join(_row(c) for c in status.get("cells") or [])
    decisions = "".join(
        f"<li><b>{e(d['pool'])}</b> {e(d.get('zone') or '')}: {e(d['message'])}</li>"
        for d in plan.get("decisions") or []
    )
    errors = "".join(
        f"<li class=err>{e(x['at'])} {e(x['pool'])} {e(x['action'])}: "
        f"{e(x['message'])}</li>"
        for x in status.get("errors") or []
    )
    budget = plan.get("budget_per_hour")
    summary = (
        f"mode {e(str(status.get('mode')))}"
        f"{' (dry run)' if status.get('dry_run') else ''}; plan costs "
        f"{format_price(plan.get('cost_per_hour') or 0)}"
        f"{'' if budget is None else ' of a budget of ' + format_price(budget)}; "
        f"warm capacity now {format_price(totals.get('warm_cost_per_hour') or 0)}, "
        f"today {format_price(totals.get('warm_cost_today') or 0, '')}"
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        "<title>wbspawner warmer</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Warm capacity</h1>"
        f"<p>{summary}. <span class=muted>Updated "
        f"{e(str(status.get('updated_at')))}; "
        '<a href="api/status">JSON</a>, <a href="api/readiness">readiness</a>, '
        '<a href="metrics">metrics</a>, <a href="costs">costs</a></span></p>'
        f"<table>{head}{rows}</table>"
        f"<div>{svg}</div>"
        f"<h2>Plan</h2><ul>{decisions or '<li>nothing to decide yet</li>'}</ul>"
        f"<h2>Errors</h2><ul>{errors or '<li class=muted>none</li>'}</ul>"
        "</body></html>"
    )
