"""A reclaim notice in a real JupyterLab: shown at once, and typed work saved.

bob's JupyterLab (a real ``jupyter lab`` with the wb-lab-notices extension,
in headless Chromium) has a notebook with text typed into a cell and not
saved. A notice that asks for saving is sent through the server's API: within
10 s JupyterLab shows it (screenshot in tests/artifacts/lab_notices/), saves the
notebook, says so, and reports one saved document back to the server; the
file on disk then holds the typed text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.e2e.browser_support import new_context, screenshot
from tests.lab_support import Lab, running_lab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TYPED = "print('typed, never saved')"
MESSAGE = "This server's spot node will be reclaimed in about 2 minutes."


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


def test_a_reclaim_notice_is_shown_and_saves_typed_work(
    lab: Lab, browser: Browser
) -> None:
    notebook = lab.new_notebook("analysis.ipynb")
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{lab.url}/lab/tree/{notebook.name}?token={lab.token}")
        editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
        editor.click()
        page.keyboard.type(TYPED)
        page.locator(".jp-mod-dirty").first.wait_for()  # JupyterLab knows it is unsaved
        assert TYPED not in notebook.read_text(encoding="utf-8")

        sent_at = time.monotonic()
        sent = lab.api(
            "POST",
            "wbspawner/notices",
            json={
                "id": "reclaim-1",
                "kind": "reclaim",
                "message": MESSAGE,
                "save": True,
            },
        )
        assert sent.status_code == 201, sent.text
        toast = page.get_by_text(f"{MESSAGE} Your open document was saved.")
        toast.wait_for(timeout=10_000)
        shown_s = time.monotonic() - sent_at
        page.wait_for_timeout(1000)  # the toast's slide-in, for the picture only
        screenshot(page, "lab_notices", "reclaim-notice")
        assert shown_s < 10, f"the notice took {shown_s:.1f} s"
    finally:
        context.close()

    record = lab.api("GET", "wbspawner/notices/reclaim-1").json()
    assert [(r["documents"], r["failed"]) for r in record["reports"]] == [(1, [])]
    assert TYPED in notebook.read_text(encoding="utf-8")


CULL = (
    "This server has been idle for 50 minutes; it will stop at 15:10 EST "
    "and it costs $2.02/h. Keep it running?"
)


def test_a_cull_warning_has_a_keep_running_button(lab: Lab, browser: Browser) -> None:
    """The culler's warning shows the $/hour and a "Keep running" button; the
    click reaches the server (kept on the notice, and use the culler sees)."""
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{lab.url}/lab?token={lab.token}")
        page.locator(".jp-LabShell").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)  # the event stream subscribed
        before = lab.api("GET", "api/status").json()["last_activity"]
        sent = lab.api(
            "POST",
            "wbspawner/notices?no_track_activity=1",
            json={"id": "cull-browser", "kind": "cull", "message": CULL},
        )
        assert sent.status_code == 201, sent.text
        page.get_by_text(CULL).wait_for(timeout=10_000)
        button = page.get_by_role("button", name="Keep running")
        button.wait_for(timeout=5_000)
        page.wait_for_timeout(1000)  # the toast's slide-in, for the picture only
        screenshot(page, "lab_notices", "cull-warning")
        button.click()
        page.get_by_text("This server keeps running").wait_for(timeout=10_000)
        record = lab.api("GET", "wbspawner/notices/cull-browser").json()
        assert len(record["kept"]) == 1
    finally:
        context.close()
    assert lab.api("GET", "api/status").json()["last_activity"] > before
