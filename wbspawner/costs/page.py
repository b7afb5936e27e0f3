"""The costs admin page: a month's spending per user, group or size, as HTML.

This module owns what the admin page and its JSON API show of the accounting
database's report (:func:`wbspawner.costs.accounting.report`): the query
(``month`` and ``by``, checked here so bad values get a clear message), a
table with hours, cost and share per key and the month's total, and a bar
chart drawn as inline SVG (one bar per row, height proportional to the cost; no
JavaScript). Every value taken from the database or the query is escaped.

Pure: no I/O; the tornado handlers in :mod:`wbspawner.costs.web` call it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from html import escape
from typing import Any, cast
from urllib.parse import urlencode

from wbspawner.catalog.pricing import format_price
from wbspawner.costs.accounting import GroupBy, ReportRow
from wbspawner.costs.culls import Saving

GROUP_BY: tuple[GroupBy, ...] = ("user", "group", "size")
"""What the report can be grouped by, in the order the page offers it."""
MONTH_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")

BAR_W, BAR_GAP = 36, 12
"""Width of a bar and the gap between two bars, pixels."""
LEFT, TOP, BOTTOM, PLOT_H = 72, 28, 84, 200
"""Margins around the plot area and its height, pixels (labels sit below)."""
LABEL_MAX = 14
"""Axis labels are cut to this many characters (the bar's tooltip has it all)."""


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


def costs_data(
    rows: Sequence[ReportRow],
    query: CostsQuery,
    currency: str = "USD",
    savings: Sequence[Saving] = (),
) -> dict[str, Any]:
    """Return the report as the JSON API's document.

    Args:
        rows: the report rows, most expensive first.
        query: month and grouping.
        currency: currency of the costs.
        savings: what each cull of the month saved.

    Returns:
        ``month``, ``by``, ``currency``, ``rows`` (key, hours, cost),
        ``total`` (numbers as floats, rounded to 1/1000 hour and 1/10000 cent)
        and ``culling`` (:func:`savings_data`).
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
    }


def bar_chart_svg(
    bars: Sequence[tuple[str, float]], *, title: str, y_label: str
) -> str:
    """Return a bar chart as inline-safe SVG: one bar per item, heights ∝ value.

    Args:
        bars: ``(label, value)`` pairs, values ≥ 0, drawn left to right.
        title: chart title.
        y_label: y axis label.

    Returns:
        SVG text; every label is escaped. Each bar is a ``rect`` with
        ``class="bar"``.
    """
    top = max((v for _, v in bars), default=0.0)
    scale = PLOT_H / top if top > 0 else 0.0
    width = LEFT + max(1, len(bars)) * (BAR_W + BAR_GAP) + BAR_GAP
    height = TOP + PLOT_H + BOTTOM
    base = TOP + PLOT_H
    mid_y = TOP + PLOT_H / 2
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="11" role="img">'
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
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top:.4g}</text>',
        f'<text x="{LEFT - 4}" y="{base + 4}" text-anchor="end">0</text>',
    ]
    for i, (label, value) in enumerate(bars):
        x = LEFT + BAR_GAP + i * (BAR_W + BAR_GAP)
        h = max(0.0, value) * scale
        mid = x + BAR_W / 2
        short = label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"
        parts.append(
            f'<rect class="bar" x="{x}" y="{base - h:.2f}" width="{BAR_W}" '
            f'height="{h:.2f}" fill="#1f77b4"><title>{escape(label)}: '
            f"{value:.2f}</title></rect>"
        )
        parts.append(
            f'<text x="{mid}" y="{base + 12}" text-anchor="end" '
            f'transform="rotate(-45 {mid} {base + 12})">{escape(short)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.total td{font-weight:bold}.muted{color:#777}
"""


def _form(query: CostsQuery) -> str:
    options = "".join(
        f'<option value="{g}"{" selected" if g == query.by else ""}>{g}</option>'
        for g in GROUP_BY
    )
    return (
        '<form method="get" action="">'
        f'<label>month <input name="month" value="{escape(query.month)}" '
        'pattern="[0-9]{4}-[0-9]{2}" size="8"></label> '
        f'<label>by <select name="by">{options}</select></label> '
        '<button type="submit">show</button></form>'
    )


def _table(rows: Sequence[ReportRow], query: CostsQuery, total: Fraction) -> str:
    head = (
        f'<tr><th class="l">{escape(query.by)}</th><th>hours</th><th>cost</th>'
        "<th>share</th></tr>"
    )
    body = "".join(
        f'<tr><td class="l">{escape(r.key)}</td><td>{float(r.hours):,.2f}</td>'
        f"<td>{escape(format_price(float(r.cost), ''))}</td>"
        f"<td>{float(r.cost / total) if total else 0.0:.0%}</td></tr>"
        for r in rows
    )
    hours = sum((r.hours for r in rows), start=Fraction(0))
    foot = (
        f'<tr class="total"><td class="l">total</td><td>{float(hours):,.2f}</td>'
        f"<td>{escape(format_price(float(total), ''))}</td><td></td></tr>"
    )
    return f"<table>{head}{body}{foot}</table>"


def _savings(savings: Sequence[Saving]) -> str:
    data = savings_data(savings)
    saved = escape(format_price(data["saved"], ""))
    return (
        f'<p id="culling-saved">Culling saved {saved} this month '
        f"({data['culls']} idle server(s) stopped, {data['hours']:,.2f} node hours)."
        f' <span class="muted">{escape(SAVINGS_DEFINITION)}</span></p>'
    )


def render_costs(
    rows: Sequence[ReportRow],
    month: str,
    by: GroupBy,
    *,
    currency: str = "USD",
    json_href: str = "api/costs",
    savings: Sequence[Saving] = (),
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

    Returns:
        A complete HTML document; every value is escaped.
    """
    query = CostsQuery(month=month, by=by)
    total = sum((r.cost for r in rows), start=Fraction(0))
    title = f"Spending per {by}, {month}"
    if rows:
        chart = bar_chart_svg(
            [(r.key, float(r.cost)) for r in rows],
            title=title,
            y_label=currency,
        )
        body = f"{_table(rows, query, total)}<div>{chart}</div>"
    else:
        body = f'<p class="muted">Nothing was recorded for {escape(month)}.</p>'
    link = escape(f"{json_href}?{urlencode({'month': month, 'by': by})}")
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>wbspawner costs {escape(month)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{_form(query)}</p>"
        f"<p>Total {escape(format_price(float(total), ''))} ({escape(currency)}), "
        "user servers and Dask workers, at the $/hour in force when they ran. "
        f'<span class="muted"><a href="{link}">JSON</a></span></p>'
        f"{_savings(savings)}{body}</body></html>"
    )
