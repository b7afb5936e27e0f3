"""The admin pages inside the hub, and a user's own spending on the home page.

Headless Chromium against the real stack (slapd, devcluster, JupyterHub with
the warmer service): alice (an admin) opens the warmer and costs pages from the
hub's Services menu and finds the hub's navbar, theme and logout; bob gets 403;
gina's home page shows her month's cost per size and her group's budget. axe-core
finds nothing serious or critical on any of these pages. Screenshots are kept
under ``tests/artifacts/hub-pages/``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devcluster.demo.workbench import Workbench
from tests.e2e.browser_support import (
    fill_login,
    screenshot,
    serious_accessibility_problems,
)
from tests.integration.cost_support import seed_spending

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

WARMER = "/services/warmer/"


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1a"]}


@pytest.fixture(scope="module")
def gina_spent(workbench: Workbench) -> str:
    """Two hours of gina's 16 GiB server this month ($1.50), recorded once."""
    seed_spending(workbench.cost_db, "gina", zone="us-east-1a")
    return "$1.50"


def log_in(page: Page, workbench: Workbench, user: str) -> None:
    fill_login(page, workbench.url, user)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r"/hub/(spawn|home)"))


def open_warmer(page: Page, url: str, timeout: float = 60) -> int:
    """Open the warmer's page (through hub OAuth); return its HTTP status."""
    deadline = time.monotonic() + timeout
    while True:
        response = page.goto(url)
        assert response is not None
        # 502/503: the proxy has no route yet, the service is still starting
        if response.status not in (502, 503) or time.monotonic() > deadline:
            return response.status
        time.sleep(1)


def test_alice_opens_the_admin_pages_from_the_hubs_services_menu(
    workbench: Workbench, page: Page, gina_spent: str
) -> None:
    log_in(page, workbench, "alice")
    page.goto(f"{workbench.url}/hub/home")
    # the hub's own menu lists both pages (templates/page.html)
    page.click("nav >> text=Services")
    menu = page.locator(".dropdown-menu")
    expect(menu.get_by_role("link", name="Warm capacity")).to_be_visible()
    expect(menu.get_by_role("link", name="Costs")).to_be_visible()
    # dark mode chosen on the hub's page (headless Chromium starts light)
    # carries over to the service's
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")
    page.click("#dark-theme-toggle")
    theme = "dark"
    expect(page.locator("html")).to_have_attribute("data-bs-theme", theme)

    assert open_warmer(page, workbench.url + WARMER) == 200
    expect(page.locator("h1")).to_have_text("Warm capacity")
    expect(page.locator("nav.navbar")).to_be_visible()
    expect(page.locator("#logout")).to_have_attribute("href", "/hub/logout")
    expect(page.locator("#login_widget")).to_contain_text("alice")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", theme)
    expect(page.locator("figure.wb-chart svg").first).to_be_visible()
    screenshot(page, "hub-pages", f"01-warmer-{theme}")
    assert serious_accessibility_problems(page) == []

    page.click("nav >> text=Services")
    page.locator(".dropdown-menu").get_by_role("link", name="Costs").click()
    page.wait_for_url(re.compile(r"/services/warmer/costs"))
    expect(page.locator("h1")).to_contain_text("Spending per user")
    expect(page.locator("#wb-costs-table")).to_contain_text("gina")
    expect(page.locator("#wb-costs-table")).to_contain_text(gina_spent)
    expect(page.locator("figure.wb-chart svg")).to_be_visible()
    expect(page.locator("#logout")).to_be_visible()
    screenshot(page, "hub-pages", f"02-costs-{theme}")
    assert serious_accessibility_problems(page) == []


def test_bob_gets_403_and_no_services_menu(workbench: Workbench, page: Page) -> None:
    log_in(page, workbench, "bob")
    page.goto(f"{workbench.url}/hub/home")
    expect(page.locator("nav.navbar")).to_be_visible()
    expect(page.locator("nav >> text=Services")).to_have_count(0)
    assert open_warmer(page, workbench.url + WARMER) == 403
    assert open_warmer(page, workbench.url + WARMER + "costs") == 403


def test_gina_sees_her_spending_and_her_groups_budget_on_the_home_page(
    workbench: Workbench, page: Page, gina_spent: str
) -> None:
    log_in(page, workbench, "gina")
    page.goto(f"{workbench.url}/hub/home")
    panel = page.locator("#wb-spending")
    expect(panel).to_contain_text("16 GiB")
    expect(page.locator("#wb-spending-total")).to_have_text(gina_spent)
    expect(page.locator("#wb-budget")).to_contain_text(
        re.compile(r"Your group gpu-users has used \$\d+\.\d\d of its \$3,000\.00")
    )
    screenshot(page, "hub-pages", "03-home-spending")
    assert serious_accessibility_problems(page) == []
