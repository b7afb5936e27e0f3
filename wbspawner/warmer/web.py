"""The warmer's web face: admin page, JSON API and metrics, behind hub OAuth.

This module owns the tornado handlers under the service prefix:

- ``<prefix>``: the admin page (per pool × zone table, the plan with its
  reasons, errors, charts over time with their table), in the hub's page
  layout (:mod:`wbspawner.pages`); users need ``access:services!service=
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

import json
import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from markupsafe import Markup
from tornado import web

from wbspawner.catalog.pricing import format_price
from wbspawner.costs.web import make_cost_handlers
from wbspawner.pages.layout import render, service_layout, standalone_layout
from wbspawner.warmer.report import Timeline


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
        page = render_page(
            self.warmer.status(), self.warmer.timeline(), service_layout(self)
        )
        self.finish(page)


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
        cost_profiles=warmer.source.current,
        cookie_secret=os.urandom(32),
    )


# ------------------------------------------------------------------ the page

CELL_COLUMNS = (
    "pool",
    "zone",
    "target",
    "warm nodes",
    "placeholders running + pending",
    "users",
    "nodes spot / on-demand",
    "warm $/h now",
    "warm $ today",
    "all nodes $/h now",
)
"""The per pool × zone table's headers."""


def _cells(status: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            str(c["pool"]),
            str(c["zone"]),
            str(c["target"]),
            str(c["warm_nodes"]),
            f"{c['placeholders']['running']} + {c['placeholders']['pending']}",
            str(c["users"]),
            f"{c['nodes']['spot']} / {c['nodes']['on_demand']}",
            format_price(c["warm_cost_per_hour"]),
            format_price(c["warm_cost_today"], ""),
            format_price(c["node_cost_per_hour"]),
        )
        for c in status.get("cells") or []
    ]


def _local(at: str | None, zone: str | None) -> str:
    """Return an ISO time as the site's local time, e.g. ``2026-03-04 09:15 CET``."""
    if not at:
        return "not yet"
    when = datetime.fromisoformat(at).astimezone(ZoneInfo(zone or "UTC"))
    return when.strftime("%Y-%m-%d %H:%M:%S %Z")


def _summary(status: dict[str, Any]) -> str:
    plan = status.get("plan") or {}
    totals = status.get("totals") or {}
    budget = plan.get("budget_per_hour")
    return (
        f"Mode {status.get('mode')}"
        f"{' (dry run)' if status.get('dry_run') else ''}; the plan costs "
        f"{format_price(plan.get('cost_per_hour') or 0)}"
        f"{'' if budget is None else ' of a budget of ' + format_price(budget)}; "
        f"warm capacity now {format_price(totals.get('warm_cost_per_hour') or 0)}, "
        f"today {format_price(totals.get('warm_cost_today') or 0, '')}"
    )


def render_page(
    status: dict[str, Any],
    timeline: Timeline,
    layout: dict[str, Any] | None = None,
) -> str:
    """Return the admin page's HTML in the hub's page layout.

    Args:
        status: :meth:`WarmerApp.status`.
        timeline: the charts over time and their table.
        layout: :func:`wbspawner.pages.layout.hub_layout` of the viewer;
            ``None``: a page outside a hub.

    Returns:
        A complete HTML document; every value is escaped (the charts are SVG
        that escapes its own labels).
    """
    plan = status.get("plan") or {}
    return render(
        "warmer.html",
        layout if layout is not None else standalone_layout(),
        page_title="Warm capacity",
        summary=_summary(status),
        updated_at=_local(status.get("updated_at"), status.get("timezone")),
        cell_columns=CELL_COLUMNS,
        cell_rows=_cells(status),
        charts=[Markup(svg) for svg in timeline.charts],
        timezone=str(status.get("timezone") or "UTC"),
        timeline_columns=timeline.columns,
        timeline_rows=timeline.rows,
        decisions=plan.get("decisions") or [],
        errors=status.get("errors") or [],
    )
