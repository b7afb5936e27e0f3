"""A person in a browser: log in, pick a size with the keyboard only, reach the server.

Headless Debian Chromium driven by Playwright against the real stack (slapd,
devcluster, JupyterHub + configurable-http-proxy). bob logs in, moves from the
default 16 GiB card to 64 GiB with an arrow key, picks its second image with an
arrow key, Tabs to Start and presses Enter; no mouse until his server runs.
axe-core finds nothing serious or critical on the login page, the spawn form
(light and dark) and the progress page. Screenshots of every step are kept
under ``tests/artifacts/browser/`` for people to look at.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devcluster.demo.workbench import NAMESPACE, Workbench
from tests.e2e.browser_support import (
    fill_login,
    screenshot,
    serious_accessibility_problems,
    wait_pod_gone,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16", "mem64"], "zones": ["us-east-1a"]}


def shot(page: Page, name: str) -> None:
    screenshot(page, "browser", name)


def focused(page: Page) -> str:
    """Return the focused element as ``tag#id`` (``tag`` when it has no id)."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''); }"
        )
    )


def tab_to(page: Page, target: str, presses: int = 30) -> None:
    """Press Tab until ``target`` (``tag#id``) has the focus, at most ``presses``."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if focused(page) == target:
            return
    raise AssertionError(f"{target} not reached with Tab; focus is on {focused(page)}")


def test_bob_picks_64_gib_with_the_keyboard_reaches_his_server_and_stops_it(
    workbench: Workbench, page: Page
) -> None:
    fill_login(page, workbench.url, "bob")
    shot(page, "01-login")
    assert serious_accessibility_problems(page) == []
    page.keyboard.press("Enter")  # in the password field: submits the form

    page.wait_for_url(re.compile(r"/hub/spawn"))
    expect(page.locator("input[name=profile]")).to_have_count(5)
    medium = page.locator("#wb-size-medium")
    expect(medium).to_contain_text("16 GiB memory")
    expect(medium).to_contain_text(re.compile(r"\$\d+\.\d+/h on-demand"))
    expect(page.get_by_role("radio", name="16 GiB", exact=True)).to_be_checked()
    # the chosen card offers its images; the others name their default one
    expect(page.locator("#profile-option-medium--image")).to_be_visible()
    expect(page.locator("#profile-option-large--image")).to_be_hidden()
    expect(page.locator("#wb-size-large")).to_contain_text("Image: SciPy")
    shot(page, "02-spawn-form")
    assert serious_accessibility_problems(page) == []
    # The hub follows the system's theme. Loaded again, so that axe reads the
    # colours the page starts with, not those of a transition under way.
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    shot(page, "02-spawn-form-dark")
    assert serious_accessibility_problems(page) == []
    page.emulate_media(color_scheme="light")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")

    tab_to(page, "input#profile-item-medium")  # the group's stop: the checked size
    page.keyboard.press("ArrowDown")
    expect(page.locator("#profile-item-large")).to_be_checked()
    assert focused(page) == "input#profile-item-large"
    page.keyboard.press("Tab")  # the chosen size's image, shown now
    assert focused(page) == "select#profile-option-large--image"
    page.keyboard.press("ArrowDown")
    expect(page.locator("#profile-option-large--image")).to_have_value("datascience")
    page.keyboard.press("Tab")
    assert focused(page) == "button", "Tab after the image does not reach Start"
    expect(page.locator("button:focus")).to_have_text("Start")
    shot(page, "02-spawn-form-keyboard")
    page.keyboard.press("Enter")

    # The wait is explained: autoscaling events become sentences.
    page.wait_for_url(re.compile(r"/hub/spawn-pending/bob"))
    # first, while the node boots (the page leaves for JupyterLab once it runs)
    assert serious_accessibility_problems(page) == []
    log = page.locator("#progress-log")
    expect(log).to_contain_text(
        re.compile(
            r"Starting a 64 GiB node in us-east-1a"
            r"|Waiting for a free 64 GiB node in us-east-1a"
            r"|Got a 64 GiB node \("
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
    assert pod["spec"]["nodeSelector"]["wbspawner.io/pool"] == "mem64"
    assert pod["spec"]["containers"][0]["image"].endswith(
        "datascience-notebook:2026-07-20"
    )

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
