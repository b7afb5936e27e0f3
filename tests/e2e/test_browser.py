"""A person in a browser: log in, pick 16 GiB, reach the server, stop it.

Headless Debian Chromium driven by Playwright against the real stack (slapd,
devcluster, JupyterHub + configurable-http-proxy). Screenshots of every step are
kept under ``tests/artifacts/`` for people to look at.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devcluster.demo.workbench import NAMESPACE, Workbench
from tests.e2e.browser_support import fill_login, screenshot, wait_pod_gone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1a"]}


def shot(page: Page, name: str) -> None:
    screenshot(page, "browser", name)


def test_bob_starts_16_gib_reaches_his_server_and_stops_it(
    workbench: Workbench, page: Page
) -> None:
    fill_login(page, workbench.url, "bob")
    shot(page, "01-login")
    page.click("#login_submit")

    page.wait_for_url(re.compile(r"/hub/spawn"))
    sizes = page.locator("input[name=profile]")
    expect(sizes).to_have_count(5)
    medium = page.locator("label[for=profile-item-medium]")
    expect(medium).to_contain_text("16 GiB memory")
    expect(medium).to_contain_text(re.compile(r"\$\d+\.\d+/h on-demand"))
    expect(page.locator("#profile-item-medium")).to_be_checked()
    shot(page, "02-spawn-form")
    page.click("#profile-item-medium")
    page.click("#spawn_form button[type=submit]")

    # The wait is explained: autoscaling events become sentences. On a cold
    # pool a node starts; a node another test of the session left (booting,
    # or kept warm for bob's recent spawns) is waited for or taken at once.
    page.wait_for_url(re.compile(r"/hub/spawn-pending/bob"))
    log = page.locator("#progress-log")
    expect(log).to_contain_text(
        re.compile(
            r"Starting a 16 GiB node in us-east-1a"
            r"|Waiting for a free 16 GiB node in us-east-1a"
            r"|Got a 16 GiB node \("
        ),
        timeout=20_000,
    )
    shot(page, "03-progress")
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=150_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=90_000)
    expect(page).to_have_title(re.compile("JupyterLab"))
    shot(page, "04-jupyterlab")
    assert workbench.kube is not None
    pod = workbench.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-bob")
    assert pod is not None
    assert pod["spec"]["nodeSelector"]["wbspawner.io/pool"] == "cpu16"

    page.goto(f"{workbench.url}/hub/home")
    stop = page.locator("#stop")
    expect(stop).to_be_visible()
    shot(page, "05-home-running")
    stop.click()
    expect(stop).to_be_hidden(timeout=60_000)
    expect(page.locator("#start")).to_be_visible()
    shot(page, "06-home-stopped")
    wait_pod_gone(
        workbench, "jupyter-bob", 30, "the pod is still there 30 s after stop"
    )
