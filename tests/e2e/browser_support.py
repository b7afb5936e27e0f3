"""Steps every browser test takes: a fresh context, the hub's login form, screenshots.

- ``new_context(browser)``: a browser context (cookies of its own) with a
  1280×900 window and a 30 s default timeout; the caller closes it.
- ``fill_login(page, url, user)``: opens the hub's login page and types the
  user's name and demo password (``<user>-pw``); the caller submits the form.
- ``screenshot(page, folder, name)``: the whole page as
  ``tests/artifacts/<folder>/<name>.png``, for people to look at.
- ``launch_chromium()``: headless Debian Chromium driven by Playwright, closed
  on the way out (the ``browser`` fixtures).
- ``wait_pod_gone(workbench, name, timeout, why)``: waits until a pod of the
  servers' namespace no longer exists.
- ``serious_accessibility_problems(page)``: what axe-core (axe-playwright-python)
  finds of impact serious or critical on the page, one line each.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from devcluster.demo.workbench import NAMESPACE, Workbench
from tests.paths import REPO

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Start headless Chromium; close it on the way out."""
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: run scripts/setup-system.sh (Debian's chromium)"
    )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    return context


def fill_login(page: Page, url: str, user: str) -> None:
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", f"{user}-pw")


def screenshot(page: Page, folder: str, name: str) -> None:
    (ARTIFACTS / folder).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / folder / f"{name}.png"), full_page=True)


def serious_accessibility_problems(page: Page) -> list[str]:
    """Return axe-core's serious and critical violations: ``rule: target …``."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]


def wait_pod_gone(workbench: Workbench, name: str, timeout: float, why: str) -> None:
    """Wait until pod ``name`` of the servers' namespace is gone, else fail: ``why``."""
    kube = workbench.kube
    assert kube is not None
    deadline = time.monotonic() + timeout
    while kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}") is not None:
        assert time.monotonic() < deadline, why
        time.sleep(0.25)
