"""The costs admin page and its JSON API: tornado handlers behind hub OAuth.

This module owns two handlers, mounted by the admin service (the warmer) under
its prefix:

- ``<prefix>costs``: :class:`CostsHandler`, the page of
  :func:`wbspawner.costs.page.render_costs`, in the hub's page layout;
- ``<prefix>api/costs``: :class:`CostsJsonHandler`, the same data as JSON.

Both take ``?month=YYYY-MM`` (default: this month) and ``?by=user|group|size``
(default: ``user``); a bad value gets a 400 that says what is allowed. Access is
the service's (``access:services!service=<name>``, granted to admins only).
The application's settings carry ``cost_db_url`` (the accounting database) and
may carry ``cost_clock`` (returns the current UTC time), ``cost_currency``,
``cost_timezone`` (where a day ends, for what culling saved; default UTC) and
``cost_profiles`` (returns the profiles in force, for what right-sizing would
save; without it the page shows no saving).
The report is read in a worker thread; handlers decide nothing themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from wbspawner.costs.accounting import ReportRow, open_db, report
from wbspawner.costs.culls import Saving, savings
from wbspawner.costs.page import (
    NO_RIGHTSIZING,
    CostsQuery,
    CostsQueryError,
    costs_data,
    parse_query,
    render_costs,
)
from wbspawner.costs.rightsize import Rightsizing, month_runs, rightsizing
from wbspawner.model import Profiles
from wbspawner.pages.layout import render, service_layout


def load_report(
    url: str, query: CostsQuery, now: datetime, tz: ZoneInfo | None = None
) -> tuple[list[ReportRow], list[Saving]]:
    """Return a month's report and culls' savings from the database (blocking).

    Args:
        url: SQLAlchemy URL of the accounting database.
        query: month and grouping.
        now: the time open records run to.
        tz: the site's time zone (where a day ends); ``None``: UTC.

    Returns:
        The report rows, most expensive first, and what each cull saved.
    """
    sessions = open_db(url)
    try:
        with sessions() as session:
            rows = report(session, by=query.by, month=query.month, now=now)
            saved = savings(session, tz or ZoneInfo("UTC"), query.month, now)
            return rows, saved
    finally:
        bind = sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()


def load_rightsizing(
    url: str, month: str, now: datetime, profiles: Profiles
) -> Rightsizing:
    """Return what right-sizing would save in a month (blocking).

    Args:
        url: SQLAlchemy URL of the accounting database.
        month: ``YYYY-MM``.
        now: the time open records run to.
        profiles: the profiles in force (sizes and prices).

    Returns:
        The figure of :func:`wbspawner.costs.rightsize.rightsizing`.
    """
    sessions = open_db(url)
    try:
        with sessions() as session:
            runs = month_runs(session, month, now)
    finally:
        bind = sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()
    return rightsizing(runs, profiles)


Report = tuple[CostsQuery, list[ReportRow], list[Saving], Rightsizing]
"""The query, its rows, what culls saved and what right-sizing would save."""


class _CostsBase(HubOAuthenticated, web.RequestHandler):
    """Reads the query and the report; subclasses write them."""

    def _now(self) -> datetime:
        clock: Callable[[], datetime] | None = self.settings.get("cost_clock")
        return clock() if clock else datetime.now(UTC)

    async def _report(self) -> Report | None:
        """Return the query and its rows, or ``None`` after writing a 400."""
        now = self._now()
        try:
            query = parse_query(
                self.get_argument("month", None), self.get_argument("by", None), now
            )
        except CostsQueryError as err:
            self.bad_request(str(err))
            return None
        url = self.settings["cost_db_url"]
        tz = ZoneInfo(str(self.settings.get("cost_timezone") or "UTC"))
        rows, saved = await asyncio.to_thread(load_report, url, query, now, tz)
        current: Callable[[], Profiles] | None = self.settings.get("cost_profiles")
        fits = NO_RIGHTSIZING
        if current is not None:
            fits = await asyncio.to_thread(
                load_rightsizing, url, query.month, now, current()
            )
        return query, rows, saved, fits

    @property
    def currency(self) -> str:
        """Currency of the costs."""
        return str(self.settings.get("cost_currency") or "USD")

    def bad_request(self, message: str) -> None:
        """Answer 400 with the message (subclasses choose the format)."""
        raise NotImplementedError


class CostsHandler(_CostsBase):
    """The costs page."""

    @web.authenticated
    async def get(self) -> None:
        """Render the page for ``?month=&by=``."""
        found = await self._report()
        if found is None:
            return
        query, rows, saved, fits = found
        self.set_header("Cache-Control", "no-store")
        page = render_costs(
            rows,
            query.month,
            query.by,
            currency=self.currency,
            savings=saved,
            rightsizing=fits,
            layout=service_layout(self),
        )
        self.finish(page)

    def bad_request(self, message: str) -> None:
        """Answer 400 with a page in the hub's layout that says what is wrong."""
        self.set_status(400)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        page = render(
            "wb-message.html",
            service_layout(self),
            page_title="Bad request",
            message=message,
            back_href="costs",
            back_text="This month's costs",
        )
        self.finish(page)


class CostsJsonHandler(_CostsBase):
    """The costs page's data as JSON."""

    @web.authenticated
    async def get(self) -> None:
        """Return the report for ``?month=&by=``."""
        found = await self._report()
        if found is None:
            return
        query, rows, saved, fits = found
        data = costs_data(rows, query, self.currency, saved, fits)
        self._write_json(200, data)

    def bad_request(self, message: str) -> None:
        """Answer 400 with ``{"message": ...}``."""
        self._write_json(400, {"message": message})

    def _write_json(self, status: int, data: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, indent=1, sort_keys=True))


def make_cost_handlers(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """Return the routes of the costs page and API under a service prefix.

    The application also needs ``cost_db_url`` in its settings.

    Args:
        prefix: the service prefix, e.g. ``/services/warmer/``.

    Returns:
        tornado (pattern, handler) pairs.
    """
    p = prefix if prefix.endswith("/") else prefix + "/"
    return [(p + "costs", CostsHandler), (p + "api/costs", CostsJsonHandler)]
