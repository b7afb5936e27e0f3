"""The costs admin page: rendering, the bar chart, the query, and the handlers."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from wbspawner.catalog.pricing import format_price
from wbspawner.costs.accounting import ReportRow, Start, open_db, record, record_stop
from wbspawner.costs.page import (
    CostsQueryError,
    bar_chart_svg,
    costs_data,
    parse_query,
    render_costs,
)
from wbspawner.costs.web import CostsHandler, CostsJsonHandler, make_cost_handlers

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 3, 20, 12, 0)


def rows(*items: tuple[str, Fraction, Fraction]) -> list[ReportRow]:
    return [ReportRow(key=k, hours=h, cost=c) for k, h, c in items]


ROWS = rows(
    ("ada", Fraction(100), Fraction(5040, 100)),
    ("bob", Fraction(30), Fraction(1260, 100)),
    ("cy", Fraction(7, 2), Fraction(441, 1000)),
)


def svg_of(page: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", page, re.S)
    assert match, "no SVG in the page"
    return ET.fromstring(match.group(0))


def bars(svg: ET.Element) -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]


# ------------------------------------------------------------------ rendering


def test_page_has_a_row_per_key_and_the_total() -> None:
    page = render_costs(ROWS, "2026-03", "user")
    total = sum(r.cost for r in ROWS)
    for r in ROWS:
        assert f'>{r.key}</th><td class="wb-num">{float(r.hours):,.2f}</td>' in page
        assert f'<td class="wb-num">{format_price(float(r.cost), "")}</td>' in page
    assert f'<td class="wb-num">{format_price(float(total), "")}</td>' in page
    assert f"Total {format_price(float(total), '')}" in page
    assert "Spending per user, 2026-03" in page
    assert 'href="api/costs?month=2026-03&amp;by=user"' in page


def test_shares_add_up_to_the_whole() -> None:
    page = render_costs(ROWS, "2026-03", "group")
    shares = [int(s) for s in re.findall(r'<td class="wb-num">(\d+)%</td>', page)]
    assert len(shares) == len(ROWS)
    assert abs(sum(shares) - 100) <= len(ROWS)


def test_everything_from_the_database_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    page = render_costs(rows((evil, Fraction(1), Fraction(1))), "2026-03", "size")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    svg = svg_of(page)  # still well-formed XML
    assert [b.findtext(f"{SVG}title") for b in bars(svg)] == [f"{evil}: 1.00"]


def test_empty_month_says_so_and_draws_nothing() -> None:
    page = render_costs([], "2025-12", "user")
    assert "Nothing was recorded for 2025-12." in page
    assert "<svg" not in page
    assert f"Total {format_price(0.0, '')}" in page


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([50.4, 12.6, 0.441], id="three"),
        pytest.param([1.0], id="one"),
        pytest.param([3.0, 0.0, 1.5, 1.5], id="with-zero"),
    ],
)
def test_one_bar_per_row_heights_proportional(values: list[float]) -> None:
    svg = ET.fromstring(
        bar_chart_svg(
            [(f"k{i}", v) for i, v in enumerate(values)], title="t", y_label="USD"
        )
    )
    found = bars(svg)
    assert len(found) == len(values)
    heights = [float(b.get("height", "nan")) for b in found]
    top = max(values)
    tallest = max(heights)
    assert tallest > 0
    for h, v in zip(heights, values, strict=True):
        assert h == pytest.approx(tallest * v / top, abs=0.01)
    bottoms = {
        round(float(b.get("y", "0")) + h, 2)
        for b, h in zip(found, heights, strict=True)
    }
    assert len(bottoms) == 1  # all bars stand on one axis
    xs = [float(b.get("x", "nan")) for b in found]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)


def test_page_chart_follows_the_rows() -> None:
    found = bars(svg_of(render_costs(ROWS, "2026-03", "user")))
    assert [b.findtext(f"{SVG}title", "").split(":")[0] for b in found] == [
        r.key for r in ROWS
    ]


def test_json_document() -> None:
    data = costs_data(ROWS, parse_query("2026-03", "user", NOW))
    assert data["month"] == "2026-03" and data["by"] == "user"
    assert [r["user"] for r in data["rows"]] == ["ada", "bob", "cy"]
    assert data["total"] == pytest.approx(float(sum(r.cost for r in ROWS)))


# ------------------------------------------------------------------ query


@pytest.mark.parametrize(
    ("month", "by", "expected"),
    [
        pytest.param(None, None, ("2026-03", "user"), id="defaults"),
        pytest.param("", " ", ("2026-03", "user"), id="empty-is-default"),
        pytest.param("2025-12", "size", ("2025-12", "size"), id="given"),
    ],
)
def test_parse_query(
    month: str | None, by: str | None, expected: tuple[str, str]
) -> None:
    query = parse_query(month, by, NOW)
    assert (query.month, query.by) == expected


@pytest.mark.parametrize(
    ("month", "by", "message"),
    [
        pytest.param("2026-13", "user", r"month must be YYYY-MM.*'2026-13'", id="m13"),
        pytest.param("march", "user", r"month must be YYYY-MM.*'march'", id="word"),
        pytest.param(
            "2026-03", "pool", r"by must be one of user, group, size", id="by"
        ),
    ],
)
def test_parse_query_refuses(month: str, by: str, message: str) -> None:
    with pytest.raises(CostsQueryError, match=message):
        parse_query(month, by, NOW)


# ------------------------------------------------------------------ handlers


class AdminCosts(CostsHandler):
    """The page with the hub login replaced by a fixed admin (test only)."""

    def get_current_user(self) -> dict[str, Any]:
        return {"name": "admin"}


class AdminCostsJson(CostsJsonHandler):
    def get_current_user(self) -> dict[str, Any]:
        return {"name": "admin"}


@dataclass
class Served:
    url: str
    db_url: str


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    db_url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    with open_db(db_url)() as session:
        for user, hours, price in [("ada", 10, 0.504), ("bob", 2, 0.0441)]:
            at = NOW - timedelta(days=3)
            start = Start(
                user=user,
                size="large",
                pool="mem64",
                capacity_type="spot",
                price_per_hour=price,
                at=at,
                units=2,
                kind="dask",
                name="c-" + user,
            )
            record(session, start)
            record_stop(session, user, at + timedelta(hours=hours), "dask", "c-" + user)
    prefix = "/services/warmer/"
    routes = make_cost_handlers(prefix)
    assert [p for p, _ in routes] == [prefix + "costs", prefix + "api/costs"]
    handlers = {CostsHandler: AdminCosts, CostsJsonHandler: AdminCostsJson}
    app = Application(
        [(p, handlers[h]) for p, h in routes],
        cost_db_url=db_url,
        cost_clock=lambda: NOW,
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield Served(f"http://127.0.0.1:{port}{prefix}", db_url)
    finally:
        server.stop()
        await server.close_all_connections()


async def test_handler_renders_the_month(served: Served) -> None:
    response = await AsyncHTTPClient().fetch(served.url + "costs?by=user")
    page = response.body.decode()
    assert response.code == 200
    assert "Spending per user, 2026-03" in page
    assert '>ada</th><td class="wb-num">20.00</td>' in page  # 2 workers × 10 h
    assert f'<td class="wb-num">{format_price(20 * 0.504, "")}</td>' in page
    assert 'href="/hub/logout"' in page  # in the hub's page layout
    assert len(bars(svg_of(page))) == 2


async def test_json_handler_matches_the_records(served: Served) -> None:
    response = await AsyncHTTPClient().fetch(
        served.url + "api/costs?month=2026-03&by=size"
    )
    data = json.loads(response.body)
    assert data["rows"] == [
        {"size": "large", "hours": 24.0, "cost": pytest.approx(20 * 0.504 + 4 * 0.0441)}
    ]


async def test_other_month_is_empty(served: Served) -> None:
    response = await AsyncHTTPClient().fetch(served.url + "costs?month=2026-02")
    assert "Nothing was recorded for 2026-02." in response.body.decode()


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        pytest.param("costs?month=2026-3", "month must be YYYY-MM", id="page-month"),
        pytest.param("costs?by=%3Cb%3E", "by must be one of", id="page-by"),
        pytest.param("api/costs?by=pool", "by must be one of", id="json-by"),
    ],
)
async def test_bad_query_is_a_400_with_a_message(
    served: Served, path: str, needle: str
) -> None:
    with pytest.raises(HTTPClientError, match="400") as caught:
        await AsyncHTTPClient().fetch(served.url + path)
    response = caught.value.response
    assert response is not None
    body = response.body.decode()
    assert needle in body
    assert "<b>" not in body
    if path.startswith("api/"):
        assert needle in json.loads(body)["message"]
