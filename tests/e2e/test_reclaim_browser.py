"""A spot reclaim on the real stack: bob's unsaved typing is on his home afterwards.

bob starts 16 GiB in headless Chromium and types into a new notebook without
saving. An operator's drill (``python -m devcluster.drill spot-interruption
--user bob``) delivers a spot interruption notice to his node: devcluster's
aws-node-termination-handler cordons and drains it, the server pod's
``preStop`` hook (``wb_lab_notices.stopping``) asks bob's JupyterLab to save,
JupyterLab shows why within 10 s and saves, and once the node is gone the
notebook on bob's home volume holds what he typed. The hub's home page says
why, also after a hub restart, and the accounting records the run as ended by
a reclaim. His next start is Ready in the same zone on capacity that is not
being reclaimed (the spot type reclaimed there is avoided: on-demand here, the
pool's spot group starting only that type), the progress says why, and his
home's files are byte-identical; a plain stop then is recorded as a stop.
Screenshots: ``tests/artifacts/reclaim/``.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devcluster.demo.workbench import NAMESPACE, Workbench
from tests.e2e.browser_support import screenshot, wait_pod_gone
from tests.e2e.session_support import (
    home_dir,
    sign_in,
    start_server,
    wait_lab,
    wait_stop_reason,
)
from tests.integration.hub_harness import hub_log, restart_hub, wait_until
from tests.paths import REPO
from wbspawner.costs.accounting import UsageRecord, open_db

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

TYPED = "print('typed before the reclaim, never saved')"


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1a"]}


def home_digests(workbench: Workbench) -> dict[str, str]:
    """Return sha256 of every file of bob's home but the servers' own hidden state.

    JupyterLab and jupyter-server write under hidden folders at every start
    (runtime files, workspaces); bob's files are the others.
    """
    root = home_dir(workbench, "bob")
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not any(p.startswith(".") for p in path.relative_to(root).parts)
    }


def bob_node(workbench: Workbench) -> dict[str, str]:
    """Return the labels of the node bob's server pod runs on."""
    kube = workbench.kube
    assert kube is not None
    pod = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-bob")
    assert pod is not None and pod["spec"].get("nodeName"), "bob's pod has no node"
    node = kube.get(f"/api/v1/nodes/{pod['spec']['nodeName']}")
    assert node is not None
    labels: dict[str, str] = node["metadata"]["labels"]
    return labels


def bob_runs(workbench: Workbench) -> list[UsageRecord]:
    """Return bob's server runs in the accounting database, oldest first."""
    with open_db(workbench.cost_db)() as session:
        query = session.query(UsageRecord).filter(
            UsageRecord.user == "bob", UsageRecord.kind == "server"
        )
        return list(query.order_by(UsageRecord.id))


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
    first = bob_node(workbench)
    assert first["wbspawner.io/capacity"] == "spot"

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

    # The reason is in the hub's database: a restarted hub still says it.
    restart_hub(workbench)
    page.goto(f"{workbench.url}/hub/home")
    expect(reason).to_contain_text("AWS reclaimed its spot node")
    runs = bob_runs(workbench)
    assert [r.stop_cause for r in runs] == ["reclaim"]

    # His next start: same zone, not the spot type reclaimed there, his files
    # as they were.
    before = home_digests(workbench)
    assert "Untitled.ipynb" in before
    page.click("#start")
    page.wait_for_url(re.compile(r"/hub/spawn"))
    page.click("#profile-item-medium")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=150_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=90_000)
    screenshot(page, "reclaim", "03-next-start-ready")
    second = bob_node(workbench)
    zone = "topology.kubernetes.io/zone"
    itype = "node.kubernetes.io/instance-type"
    assert second[zone] == first[zone]
    assert second["wbspawner.io/capacity"] == "on-demand" or (
        second[itype] != first[itype]
    ), f"the next start went to spot {second[itype]} again"
    assert f"({first[itype]} in {first[zone]}) was reclaimed" in hub_log(workbench)
    assert home_digests(workbench) == before
    page.goto(f"{workbench.url}/hub/home")
    expect(page.locator("#stop")).to_be_visible()
    assert reason.count() == 0  # the reason explained the last stop only

    # A plain stop is recorded as one.
    page.click("#stop")
    wait_pod_gone(workbench, "jupyter-bob", 60, "bob's pod outlived his stop")

    def closed() -> list[UsageRecord] | None:
        found = bob_runs(workbench)
        return found if all(r.stopped_at for r in found) and len(found) == 2 else None

    runs = wait_until(closed, 30, "the second run closed")
    assert [r.stop_cause for r in runs] == ["reclaim", "stop"]
    page.goto(f"{workbench.url}/hub/home")
    assert reason.count() == 0
