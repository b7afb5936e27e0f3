"""The costs admin page: a month's spending per user, group or size, as HTML.

This module owns what the admin page and its JSON API show of the accounting
database's report (:func:`wbspawner.costs.accounting.report`): the query
(``month`` and ``by``, checked here so bad values get a clear message), a
table with hours, cost and share per key and the month's total, and a bar
chart drawn as inline SVG (one bar per row, height proportional to the cost,
round value ticks, the currency on the axis, a legend; no JavaScript) that the
table states in text; what culling saved, and what right-sizing would save
(:mod:`wbspawner.costs.rightsize`: a table per user and size). The page is
the template ``costs.html`` of :mod:`wbspawner.pages`, in the hub's page
layout. Every value taken from the database or the query is escaped.

Pure: no I/O; the tornado handlers in :mod:`wbspawner.costs.web` call it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from html import escape
from typing import Any, cast
from urllib.parse import urlencode

from markupsafe import Markup

from wbspawner.catalog.pricing import format_price
from wbspawner.costs.accounting import GroupBy, ReportRow
from wbspawner.costs.culls import Saving
from wbspawner.costs.rightsize import DEFINITION as RIGHTSIZE_DEFINITION
from wbspawner.costs.rightsize import Rightsizing
from wbspawner.pages.layout import render, standalone_layout
from wbspawner.pages.svg import format_tick, nice_ticks
from wbspawner.spawn.advice import gib_text

GROUP_BY: tuple[GroupBy, ...] = ("user", "group", "size")
"""What the report can be grouped by, in the order the page offers it."""
MONTH_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")

BAR_W, BAR_GAP = 36, 12
"""Width of a bar and the gap between two bars, pixels."""
LEFT, TOP, BOTTOM, PLOT_H = 72, 28, 84, 200
"""Margins around the plot area and its height, pixels (labels sit below)."""
LABEL_MAX = 14
"""Axis labels are cut to this many characters (the bar's tooltip has it all)."""
LEGEND_W = 260
"""The chart is at least this wide past its left margin, for the legend."""
BAR_COLOR = "#1f77b4"


class CostsQueryError(ValueError):
    """The page was asked for a month or grouping that does not exist."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CostsQuery:
    """What the page shows."""

    month: str
    """``YYYY-MM``."""
    by: GroupBy


def parse_query(month: str | None, by: str | None, now: datetime) -> CostsQuery:
    """Return the page's query from its ``?month=&by=`` arguments.

    Args:
        month: ``YYYY-MM``; missing or empty: the month of ``now``.
        by: ``user``, ``group`` or ``size``; missing or empty: ``user``.
        now: the current time (UTC).

    Returns:
        The query.

    Raises:
        CostsQueryError: a value is malformed; the message says what is allowed.
    """
    month = (month or "").strip() or now.strftime("%Y-%m")
    by = (by or "").strip() or "user"
    if not MONTH_RE.fullmatch(month):
        raise CostsQueryError(
            f"month must be YYYY-MM with a month 01..12, e.g. "
            f"{now.strftime('%Y-%m')}; got {month!r}"
        )
    if by not in GROUP_BY:
        raise CostsQueryError(f"by must be one of {', '.join(GROUP_BY)}; got {by!r}")
    return CostsQuery(month=month, by=cast(GroupBy, by))


SAVINGS_DEFINITION = (
    "What culling saved: for each idle server the culler stopped, its price per "
    "hour times the hours from the stop until its user started a server again "
    "or until the end of that day (midnight, site time), whichever came first; "
    "a stop not yet followed by a start counts up to now."
)
"""The definition the page states next to the figure."""


def savings_data(savings: Sequence[Saving]) -> dict[str, Any]:
    """Return what culling saved as the JSON API's ``culling`` member.

    Args:
        savings: one per culled run of the month.

    Returns:
        ``culls``, ``hours``, ``saved`` (floats) and ``definition``.
    """
    hours = sum((s.hours for s in savings), start=Fraction(0))
    saved = sum((s.cost for s in savings), start=Fraction(0))
    return {
        "culls": len(savings),
        "hours": round(float(hours), 3),
        "saved": round(float(saved), 6),
        "definition": SAVINGS_DEFINITION,
    }


NO_RIGHTSIZING = Rightsizing(rows=(), saving=Fraction(0), unmeasured_hours=Fraction(0))
"""Nothing to right-size (no measured run, or the page was not given the data)."""


def rightsizing_data(found: Rightsizing) -> dict[str, Any]:
    """Return what right-sizing would save as the JSON API's ``rightsizing`` member.

    Args:
        found: the month's figure (:func:`wbspawner.costs.rightsize.rightsizing`).

    Returns:
        ``saved`` (USD), ``unmeasured_hours``, ``definition`` and ``rows`` (user,
        size, advised, sessions, peak_mib, hours, cost, saving), numbers as floats.
    """
    return {
        "saving": round(float(found.saving), 6),
        "unmeasured_hours": round(float(found.unmeasured_hours), 3),
        "definition": RIGHTSIZE_DEFINITION,
        "rows": [
            {
                "user": r.user,
                "size": r.size,
                "advised": r.advised,
                "sessions": r.sessions,
                "peak_mib": r.peak_mib,
                "hours": round(float(r.hours), 3),
                "cost": round(float(r.cost), 6),
                "saving": round(float(r.saving), 6),
            }
            for r in found.rows
        ],
    }


def _rightsize_rows(found: Rightsizing) -> list[dict[str, Any]]:
    """Return the page's right-size table rows, formatted."""
    return [
        {
            "user": r.user,
            "size": r.size,
            "advised": r.advised,
            "sessions": r.sessions,
            "peak": gib_text(r.peak_mib),
            "hours": f"{float(r.hours):,.2f}",
            "cost": format_price(float(r.cost), ""),
            "saving": format_price(float(r.saving), ""),
        }
        for r in found.rows
    ]


def costs_data(
    rows: Sequence[ReportRow],
    query: CostsQuery,
    currency: str = "USD",
    savings: Sequence[Saving] = (),
    rightsizing: Rightsizing = NO_RIGHTSIZING,
) -> dict[str, Any]:
    """Return the report as the JSON API's document.

    Args:
        rows: the report rows, most expensive first.
        query: month and grouping.
        currency: currency of the costs.
        savings: what each cull of the month saved.
        rightsizing: what right-sizing would save in the month.

    Returns:
        ``month``, ``by``, ``currency``, ``rows`` (key, hours, cost),
        ``total`` (numbers as floats, rounded to 1/1000 hour and 1/10000 cent),
        ``culling`` (:func:`savings_data`) and ``rightsizing``
        (:func:`rightsizing_data`).
    """
    total = sum((r.cost for r in rows), start=Fraction(0))
    return {
        "month": query.month,
        "by": query.by,
        "currency": currency,
        "rows": [
            {
                query.by: r.key,
                "hours": round(float(r.hours), 3),
                "cost": round(float(r.cost), 6),
            }
            for r in rows
        ],
        "total": round(float(total), 6),
        "culling": savings_data(savings),
        "rightsizing": rightsizing_data(rightsizing),
    }


def bar_chart_svg(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    y_label: str,
    legend: str = "",
) -> str:
    """Return a bar chart as inline-safe SVG: one bar per item, heights ∝ value.

    Args:
        bars: ``(label, value)`` pairs, values ≥ 0, drawn left to right.
        title: chart title.
        y_label: y axis label, with the unit.
        legend: what a bar is (``""``: no legend).

    Returns:
        SVG text; every label is escaped. Each bar is a ``rect`` with
        ``class="bar"``; the value axis has round ticks (1, 2, 2.5, 5 × 10^k).
    """
    ticks = nice_ticks(max((v for _, v in bars), default=0.0))
    top = ticks[-1]
    scale = PLOT_H / top
    width = LEFT + max(1, len(bars)) * (BAR_W + BAR_GAP) + BAR_GAP
    width = max(width, LEFT + LEGEND_W)
    height = TOP + PLOT_H + BOTTOM
    base = TOP + PLOT_H
    mid_y = TOP + PLOT_H / 2
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="11" fill="currentColor" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    axis = (
        f'<line x1="{LEFT}" y1="{base}" x2="{width - BAR_GAP // 2}" y2="{base}" '
        'stroke="#999"/>'
    )
    y_title = (
        f'<text x="12" y="{mid_y}" text-anchor="middle" '
        f'transform="rotate(-90 12 {mid_y})">{escape(y_label)}</text>'
    )
    parts = [
        svg,
        f'<text x="{LEFT}" y="16" font-size="13">{escape(title)}</text>',
        axis,
        y_title,
    ]
    for tick in ticks:
        y = base - tick * scale
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.2f}" x2="{width - BAR_GAP // 2}" '
            f'y2="{y:.2f}" stroke="#999" stroke-opacity="0.3"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.2f}" text-anchor="end">'
            f"{format_tick(tick)}</text>"
        )
    for i, (label, value) in enumerate(bars):
        x = LEFT + BAR_GAP + i * (BAR_W + BAR_GAP)
        h = max(0.0, value) * scale
        mid = x + BAR_W / 2
        short = label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"
        parts.append(
            f'<rect class="bar" x="{x}" y="{base - h:.2f}" width="{BAR_W}" '
            f'height="{h:.2f}" fill="{BAR_COLOR}"><title>{escape(label)}: '
            f"{value:.2f}</title></rect>"
        )
        parts.append(
            f'<text x="{mid}" y="{base + 12}" text-anchor="end" '
            f'transform="rotate(-45 {mid} {base + 12})">{escape(short)}</text>'
        )
    if legend:
        parts.append(
            f'<rect x="{LEFT}" y="{height - 14}" width="12" height="10" '
            f'fill="{BAR_COLOR}"/><text x="{LEFT + 16}" y="{height - 5}">'
            f"{escape(legend)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render_costs(
    rows: Sequence[ReportRow],
    month: str,
    by: GroupBy,
    *,
    currency: str = "USD",
    json_href: str = "api/costs",
    savings: Sequence[Saving] = (),
    rightsizing: Rightsizing = NO_RIGHTSIZING,
    layout: Mapping[str, Any] | None = None,
) -> str:
    """Return the costs page: table, total and bar chart of a month's spending.

    Args:
        rows: the report rows (:func:`~wbspawner.costs.accounting.report`), most
            expensive first.
        month: ``YYYY-MM`` the rows are for.
        by: what the rows are grouped by.
        currency: currency of the costs.
        json_href: link to the same data as JSON, relative to the page.
        savings: what each cull of the month saved (shown with its definition).
        rightsizing: what right-sizing would save (a table, with its definition).
        layout: the hub page's variables
            (:func:`wbspawner.pages.layout.hub_layout`); ``None``: a page
            outside a hub.

    Returns:
        A complete HTML document in the hub's page layout; every value is
        escaped.
    """
    total = sum((r.cost for r in rows), start=Fraction(0))
    hours = sum((r.hours for r in rows), start=Fraction(0))
    title = f"Spending per {by}, {month}"
    chart = ""
    if rows:
        chart = bar_chart_svg(
            [(r.key, float(r.cost)) for r in rows],
            title=title,
            y_label=f"cost, {currency}",
            legend=f"cost per {by} in {month}",
        )
    saved = savings_data(savings)
    return render(
        "costs.html",
        layout if layout is not None else standalone_layout(),
        page_title=title,
        month=month,
        by=by,
        group_by=GROUP_BY,
        currency=currency,
        total=format_price(float(total), ""),
        total_hours=f"{float(hours):,.2f}",
        json_href=f"{json_href}?{urlencode({'month': month, 'by': by})}",
        saved=format_price(saved["saved"], ""),
        culls=saved["culls"],
        cull_hours=f"{saved['hours']:,.2f}",
        savings_definition=SAVINGS_DEFINITION,
        rightsize_saving=format_price(float(rightsizing.saving), ""),
        rightsize_unmeasured=f"{float(rightsizing.unmeasured_hours):,.2f}",
        rightsize_definition=RIGHTSIZE_DEFINITION,
        rightsize_rows=_rightsize_rows(rightsizing),
        rows=[
            {
                "key": r.key,
                "hours": f"{float(r.hours):,.2f}",
                "cost": format_price(float(r.cost), ""),
                "share": f"{float(r.cost / total) if total else 0.0:.0%}",
            }
            for r in rows
        ],
        chart=Markup(chart),
    )
