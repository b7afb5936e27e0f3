"""Dask dashboards in a real browser: the owner sees his, others do not.

Headless Debian Chromium (Playwright) against the demo's stack (slapd,
devcluster, Dask Gateway, JupyterHub with configurable-http-proxy and the
dashboards front it runs). bob's server runs and he has one Dask cluster. In
the browser, with nothing but the hub's login:

- bob opens his cluster's dashboard: the page loads after the hub's OAuth round
  trip, and a websocket the page opens to the scheduler (``/eventstream``, the
  dashboard's own) answers a ping, on cookies alone;
- gina, logged in as herself, gets the refusal page and no websocket;
- a browser that never logged in lands on the hub's login page;
- in bob's JupyterLab, "+ NEW" in the Dask sidebar (dask-labextension with
  packages/wb-dask-lab) starts a cluster on the gateway and lists it; with its
  Task Stream pane open (the dashboard through bob's server and the front), a
  computation on it draws the tasks; a pasted dashboard link of his other
  cluster checks as live, one of no cluster does not.

Screenshots go to ``tests/artifacts/dashboards/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devcluster.demo.workbench import Workbench
from tests.e2e.browser_support import (
    RUN_IN_KERNEL,
    fill_login,
    new_context,
    screenshot,
)
from tests.integration.hub_harness import dask_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PREFIX = "/services/dask-gateway"

# Opens a websocket from the page, sends the scheduler's ping, and reports.
PING = """
async (url) => await new Promise((resolve) => {
  const ws = new WebSocket(url);
  const done = (what) => { try { ws.close(); } catch (e) {} resolve(what); };
  ws.onopen = () => ws.send(JSON.stringify({name: "ping"}));
  ws.onmessage = (event) => {
    if (JSON.parse(event.data).name === "pong") done("pong");
  };
  ws.onerror = () => done("refused");
  setTimeout(() => done("timeout"), 20000);
})
"""


@dataclass
class Stack:
    bench: Workbench
    cluster: str

    def dashboard(self, path: str) -> str:
        return f"{self.bench.url}{PREFIX}/clusters/{self.cluster}/{path}"


def _log_in(context: BrowserContext, url: str, user: str) -> Page:
    page = context.new_page()
    fill_login(page, url, user)
    page.click("#login_submit")
    # The hub sends a user with a running server on to it (no need to load it).
    page.wait_for_url(
        re.compile(r"/(hub/(spawn|home)|user/[^/]+/)"), wait_until="commit"
    )
    return page


def _xsrf(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "_xsrf")


def _start_server_and_token(context: BrowserContext, page: Page, url: str) -> str:
    """Start bob's server and make him a token, through the REST API as himself."""
    headers = {"X-XSRFToken": _xsrf(context)}
    started = page.request.post(
        f"{url}/hub/api/users/bob/server", headers=headers, data={"profile": "medium"}
    )
    assert started.status in (201, 202), started.text()
    deadline = time.monotonic() + 150
    while not page.request.get(f"{url}/hub/api/users/bob").json()["server"]:
        assert time.monotonic() < deadline, "bob's server did not start in 150 s"
        time.sleep(1)
    made = page.request.post(
        f"{url}/hub/api/users/bob/tokens",
        headers=headers,
        data={"note": "dashboards e2e", "expires_in": 900},
    )
    assert made.ok, made.text()
    return str(made.json()["token"])


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1a"], "warmer": False}


@pytest.fixture(scope="module")
def stack(workbench: Workbench, browser: Browser) -> Iterator[Stack]:
    context = new_context(browser)
    try:
        page = _log_in(context, workbench.url, "bob")
        token = _start_server_and_token(context, page, workbench.url)
    finally:
        context.close()
    with dask_cluster(workbench, token) as cluster:
        yield Stack(workbench, cluster)


def shot(page: Page, name: str) -> None:
    screenshot(page, "dashboards", name)


def test_bob_sees_his_dashboard_and_its_websocket(
    stack: Stack, browser: Browser
) -> None:
    context = new_context(browser)
    try:
        page = _log_in(context, stack.bench.url, "bob")
        response = page.goto(stack.dashboard("info/main/workers.html"))
        assert response is not None and response.status == 200
        expect(page.locator("body")).to_contain_text("Worker")
        shot(page, "01-bob-workers")
        assert any(c["name"] == "service-dask-gateway" for c in context.cookies())
        ws = "ws" + stack.dashboard("eventstream").removeprefix("http")
        assert page.evaluate(PING, ws) == "pong"
    finally:
        context.close()


def test_gina_is_refused_bobs_dashboard_and_websocket(
    stack: Stack, browser: Browser
) -> None:
    context = new_context(browser)
    try:
        page = _log_in(context, stack.bench.url, "gina")
        response = page.goto(stack.dashboard("info/main/workers.html"))
        assert response is not None and response.status == 403
        expect(page.locator("body")).to_contain_text("Only the cluster's owner")
        shot(page, "02-gina-refused")
        ws = "ws" + stack.dashboard("eventstream").removeprefix("http")
        assert page.evaluate(PING, ws) == "refused"
    finally:
        context.close()


def test_a_stranger_lands_on_the_login_page(stack: Stack, browser: Browser) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(stack.dashboard("info/main/workers.html"))
        page.wait_for_url(re.compile(r"/hub/login"))
        expect(page.locator("#login_submit")).to_be_visible()
        shot(page, "03-stranger-login")
    finally:
        context.close()


SIDEBAR_CELL = """
import dask.array as da
from dask_gateway import Gateway

gateway = Gateway()  # the hub set DASK_GATEWAY__* for bob
(name,) = [c.name for c in gateway.list_clusters() if c.name != {known!r}]
cluster = gateway.connect(name)
cluster.scale(1)
client = cluster.get_client()
client.wait_for_workers(1, timeout=240)
total = da.ones((2000, 2000), chunks=(250, 250)).sum().compute()
print("SIDEBAR-SUM", int(total), name, flush=True)
client.close()
"""
"""A notebook cell: a worker for the sidebar's cluster, and tasks to draw."""

TASKS_DRAWN = """
() => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  const names = [];
  for (const doc of docs) {
    for (const model of doc.all_models) {
      const data = model.data;
      if (!data) continue;
      const column = data instanceof Map ? data.get("name") : data.name;
      const duration = data instanceof Map ? data.get("duration") : data.duration;
      if (!column || !duration) continue;
      // "start" is the plot's own invisible placeholder, not a task
      for (const name of column) if (name !== "start") names.push(name);
    }
  }
  return names.length >= 10 ? names : null;
}
"""
"""The names of the task rectangles the page's Task Stream holds, once ten are."""


def test_bob_starts_a_cluster_in_the_dask_sidebar_and_sees_its_task_stream(
    stack: Stack, browser: Browser
) -> None:
    url = stack.bench.url
    context = new_context(browser)
    try:
        page = _log_in(context, url, "bob")
        page.goto(f"{url}/user/bob/lab")
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
        page.locator('.jp-SideBar [data-id="dask-dashboard-launcher"]').click()
        sidebar = page.locator("#dask-dashboard-launcher")
        sidebar.get_by_role("button", name="NEW").click()
        item = sidebar.locator(".dask-ClusterListingItem")
        expect(item).to_have_count(1, timeout=180_000)
        expect(item).to_contain_text("GatewayCluster")
        expect(item).to_contain_text(f"{PREFIX}/clusters/")

        # The cluster's dashboard, checked and shown through bob's server.
        item.click()
        task_stream = sidebar.get_by_role("button", name="Task Stream", exact=True)
        expect(task_stream).to_be_enabled(timeout=60_000)
        task_stream.click()
        pane = page.locator(".dask-DaskDashboard-widget iframe").first
        expect(pane.content_frame.locator("canvas").first).to_be_visible(timeout=60_000)
        plot = next(f for f in page.frames if "individual-task-stream" in f.url)

        code = SIDEBAR_CELL.format(known=stack.cluster)
        result = page.evaluate(
            RUN_IN_KERNEL, {"base": "/user/bob/", "code": code, "timeoutMs": 300_000}
        )
        assert result["error"] is None, result
        assert "SIDEBAR-SUM 4000000" in result["stdout"], result

        names = plot.wait_for_function(TASKS_DRAWN, timeout=60_000).json_value()
        assert any("sum" in name for name in names), names
        news = page.get_by_role("button", name="No", exact=True)
        if news.is_visible():  # JupyterLab's question about its news feed
            news.click()
        page.wait_for_timeout(1000)  # the plot's last redraw, for the picture only
        shot(page, "04-lab-dask-sidebar-task-stream")

        # A dashboard link pasted into the sidebar (here: bob's cluster made
        # outside JupyterLab) is checked by his server with its own token.
        check = f"{url}/user/bob/dask/dashboard-check/"
        pasted = page.request.get(check + quote(stack.dashboard("status"), safe=""))
        assert pasted.json()["isActive"], pasted.text()
        assert "Individual Task Stream" in pasted.json()["plots"], pasted.text()
        unknown = stack.dashboard("status").replace(stack.cluster, "0" * 32)
        refused = page.request.get(check + quote(unknown, safe=""))
        assert refused.json()["isActive"] is False, refused.text()

        item.locator(".dask-ClusterListingItem-stop").click()
        expect(item).to_have_count(0, timeout=60_000)
    finally:
        context.close()
