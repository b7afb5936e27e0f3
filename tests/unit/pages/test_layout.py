"""The admin pages render inside JupyterHub's own page.html, with its navbar."""

from __future__ import annotations

import re

from wbspawner.pages.layout import hub_layout, render, standalone_layout
from wbspawner.pages.svg import line_chart_svg
from wbspawner.warmer.report import Timeline
from wbspawner.warmer.web import render_page

STATUS = {
    "updated_at": "2026-03-04T14:00:00+00:00",
    "timezone": "America/New_York",
    "mode": "placeholders",
    "cells": [],
    "plan": {"decisions": [{"pool": "mem64", "zone": "a", "message": "<keep>"}]},
    "errors": [],
}


def layout(name: str = "alice", admin: bool = True) -> dict[str, object]:
    return hub_layout(
        {"name": name, "admin": admin},
        hub_prefix="/jh/hub/",
        base_url="/jh/",
        services=[{"name": "warmer", "href": "/jh/services/warmer/"}],
    )


def timeline() -> Timeline:
    chart = line_chart_svg([], title="t", x_label="x", y_label="y")
    return Timeline(
        charts=(chart,), columns=("local time", "n"), rows=(("09:00", "1"),)
    )


def test_warmer_page_has_the_hubs_navbar_theme_and_logout() -> None:
    page = render_page(STATUS, timeline(), layout())
    assert '<nav class="navbar' in page
    assert 'href="/jh/hub/logout"' in page and 'id="logout"' in page
    assert 'href="/jh/hub/static/css/style.min.css"' in page
    assert "/jh/hub/static/js/darkmode.js" in page
    assert 'id="dark-theme-toggle"' in page
    assert 'href="/jh/hub/admin"' in page  # an admin sees the hub's Admin link
    assert "<title>Warm capacity · JupyterHub</title>" in page


def test_services_menu_lists_both_admin_pages() -> None:
    page = render_page(STATUS, timeline(), layout())
    assert (
        '<a class="dropdown-item" href="/jh/services/warmer/">Warm capacity</a>' in page
    )
    assert '<a class="dropdown-item" href="/jh/services/warmer/costs">Costs</a>' in page


def test_page_values_and_the_user_name_are_escaped() -> None:
    page = render_page(STATUS, timeline(), layout(name='x"</script>'))
    assert "&lt;keep&gt;" in page and "<keep>" not in page
    assert 'x"</script>' not in page
    assert 'user: "x\\"\\u003c/script\\u003e"' in page


def test_charts_come_with_a_table() -> None:
    page = re.sub(r">\s+<", "><", render_page(STATUS, timeline(), layout()))
    assert 'aria-describedby="wb-timeline-table"' in page
    assert '<th scope="row">09:00</th><td class="wb-num">1</td>' in page
    assert "Updated 2026-03-04 09:00:00 EST" in page


def test_a_plain_user_sees_no_admin_link() -> None:
    page = render("wb-admin.html", layout(name="bob", admin=False), page_title="x")
    assert 'href="/jh/hub/admin"' not in page


def test_standalone_layout_renders() -> None:
    assert "<nav" in render("wb-admin.html", standalone_layout(), page_title="x")
