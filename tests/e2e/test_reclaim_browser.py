"""A spot reclaim on the real stack: bob's unsaved typing is on his home afterwards.

bob starts 16 GiB in headless Chromium and types into a new notebook without
saving. An operator's drill (``python -m devcluster.drill spot-interruption
--user bob``) delivers a spot interruption notice to his node: devcluster's
aws-node-termination-handler cordons and drains it, the server pod's
``preStop`` hook (``wb_lab_notices.stopping``) asks bob's JupyterLab to save,
JupyterLab shows why within 10 s and saves, and once the node is gone the
notebook on bob's home volume holds what he typed. Screenshot:
``tests/artifacts/reclaim/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devcluster.demo.workbench import Workbench
from tests.e2e.browser_support import screenshot, wait_pod_gone
from tests.e2e.session_support import (
    home_dir,
    sign_in,
    start_server,
    wait_lab,
    wait_stop_reason,
)
from tests.paths import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TYPED = "print('typed before the reclaim, never saved')"


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1a"]}


def test_a_reclaim_saves_what_bob_typed(workbench: Workbench, page: Page) -> None:
    sign_in(page, workbench, "bob")
    start_server(page, workbench, "bob", "medium")
    wait_lab(page)

    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    editor.click()
    page.keyboard.type(TYPED)
    page.locator(".jp-mod-dirty").first.wait_for()
    notebook = home_dir(workbench, "bob") / "Untitled.ipynb"
    assert notebook.is_file(), f"{notebook} was not created"
    assert TYPED not in notebook.read_text(encoding="utf-8")

    assert workbench.cluster is not None
    sent = time.monotonic()
    drill = subprocess.run(
        [
            sys.executable,
            "-m",
            "devcluster.drill",
            "spot-interruption",
            "--user",
            "bob",
            "--kubeconfig",
            str(workbench.cluster.kubeconfig),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert drill.returncode == 0, drill.stderr
    assert json.loads(drill.stdout)["notice"] == "spot-interruption"

    # One notification: the pod's preStop hook and the hub send the same
    # notice id; the hub's says why (the node's aws-node-termination-handler
    # taint), and JupyterLab says what it saved.
    notice = page.get_by_text(
        "This server's spot node will be reclaimed in about 2 minutes. "
        "Your open document was saved."
    )
    notice.wait_for(timeout=10_000)
    shown_s = time.monotonic() - sent
    page.wait_for_timeout(1000)  # the toast's slide-in, for the picture only
    screenshot(page, "reclaim", "01-notice-in-jupyterlab")
    assert shown_s < 10, f"the notice took {shown_s:.1f} s"
    # One notification of the stop (JupyterLab's own news prompt may be beside it).
    assert page.locator(".Toastify__toast", has_text="This server").count() == 1

    wait_pod_gone(workbench, "jupyter-bob", 90, "bob's pod outlived the reclaim")
    assert TYPED in notebook.read_text(encoding="utf-8")

    # The hub's home page says why, once the hub has seen the server stop.
    wait_stop_reason(page, workbench, 90, every_s=2)
    reason = page.locator("#wb-stop-reason")
    expect(reason).to_contain_text(
        "Your server was stopped because AWS reclaimed its spot node."
    )
    expect(page.locator("#start")).to_be_visible()
    screenshot(page, "reclaim", "02-home-says-why")
