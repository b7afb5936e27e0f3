"""A person in a browser: log in, pick 16 GiB, reach the server, stop it.

Headless Debian Chromium driven by Playwright against the real stack (slapd,
devcluster, JupyterHub + configurable-http-proxy). Screenshots of every step are
kept under ``tests/artifacts/`` for people to look at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devcluster.demo.workbench import NAMESPACE, Workbench
from devcluster.services.ldap import LdapServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"


@pytest.fixture(scope="module")
def bench(
    ldap_server: LdapServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workbench]:
    with Workbench(
        tmp_path_factory.mktemp("browser"),
        time_factor=0.02,
        pools=["cpu16"],
        zones=["us-east-1a"],
        ldap=ldap_server,
    ) as workbench:
        yield workbench


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_bob_starts_16_gib_reaches_his_server_and_stops_it(
    bench: Workbench, page: Page
) -> None:
    page.goto(f"{bench.url}/hub/login")
    page.fill("#username_input", "bob")
    page.fill("#password_input", "bob-pw")
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

    # The wait is explained: autoscaling events become sentences.
    page.wait_for_url(re.compile(r"/hub/spawn-pending/bob"))
    log = page.locator("#progress-log")
    expect(log).to_contain_text("Starting a 16 GiB node in us-east-1a", timeout=20_000)
    shot(page, "03-progress")
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=150_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=90_000)
    expect(page).to_have_title(re.compile("JupyterLab"))
    shot(page, "04-jupyterlab")
    assert bench.kube is not None
    pod = bench.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-bob")
    assert pod is not None
    assert pod["spec"]["nodeSelector"]["wbspawner.io/pool"] == "cpu16"

    page.goto(f"{bench.url}/hub/home")
    stop = page.locator("#stop")
    expect(stop).to_be_visible()
    shot(page, "05-home-running")
    stop.click()
    expect(stop).to_be_hidden(timeout=60_000)
    expect(page.locator("#start")).to_be_visible()
    shot(page, "06-home-stopped")
    kube = bench.kube
    assert kube is not None
    deadline = time.monotonic() + 30
    while kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-bob") is not None:
        assert time.monotonic() < deadline, "the pod is still there 30 s after stop"
        time.sleep(0.25)
