"""A user's session on the demo stack in Chromium, and a spot notice on its node.

The steps the reclaim browser test and the interruption campaign
(``bench/bench_interruptions.py``) share, on a running
:class:`~devcluster.demo.workbench.Workbench`:

- ``sign_in(page, workbench, user)``: the hub's login form, submitted.
- ``start_server(page, workbench, user, size)``: picks ``size`` on the spawn
  form and waits until the hub sends the browser to the user's server (the hub
  found it ready); returns that moment (``time.time()``).
- ``wait_lab(page)``: waits until JupyterLab shows its main area.
- ``home_dir(workbench, user)``: the folder of the user's home volume.
- ``server_pod(workbench, user)``: the user's server pod (``None``: none).
- ``spot_notice(workbench, user)``: delivers a spot interruption notice to the
  node of the user's server the way an operator's drill does
  (:mod:`devcluster.drill`, in this process); a :class:`Notice`.
- ``wait_stop_reason(page, workbench, timeout)``: reloads the hub's home page
  until it says why the server stopped; the text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from devcluster.controllers.termination import SPOT_INTERRUPTION
from devcluster.demo.workbench import NAMESPACE, Workbench
from devcluster.drill import Api, deliver, node_of_user
from tests.e2e.browser_support import fill_login

SPAWN_TIMEOUT_MS = 150_000
LAB_TIMEOUT_MS = 90_000


@dataclass(frozen=True)
class Notice:
    """A spot interruption notice delivered to a node."""

    node: str
    taint: str
    time_added: str
    """The taint's ``timeAdded`` (RFC 3339, whole seconds, as Kubernetes writes it)."""
    sent: float
    """When the drill annotated the node (``time.time()``)."""

    @property
    def at(self) -> float:
        """When the notice was given, as closely as the two clocks bound it.

        ``timeAdded`` is cut to whole seconds and the drill is sent before the
        handler acts: both are lower bounds, so their maximum is the tightest
        (intervals from it are upper bounds).
        """
        added = datetime.fromisoformat(self.time_added.replace("Z", "+00:00"))
        return max(added.timestamp(), self.sent)


def sign_in(page: Page, workbench: Workbench, user: str) -> None:
    """Open the hub's login page, fill in the user's demo login and submit it."""
    fill_login(page, workbench.url, user)
    page.click("#login_submit")
    # the hub's home or spawn page, or a running server the spawn page sends to
    page.wait_for_url(lambda url: "/hub/login" not in url, wait_until="commit")


def start_server(page: Page, workbench: Workbench, user: str, size: str) -> float:
    """Start ``size`` from the spawn form; when the hub sent the browser to it.

    The browser must be signed in and the user's server stopped (as the hub
    sees it).
    """
    page.goto(f"{workbench.url}/hub/spawn")
    page.click(f"#profile-item-{size}")
    page.click("#spawn_form button[type=submit]")
    # the server's own URL, not the hub's /hub/user/<user>/ or a ?next= naming it
    server = re.compile(rf"^https?://[^/]+/user/{user}/")
    page.wait_for_url(server, timeout=SPAWN_TIMEOUT_MS, wait_until="commit")
    return time.time()


def wait_lab(page: Page) -> None:
    """Wait until JupyterLab shows its main area."""
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=LAB_TIMEOUT_MS)


def home_dir(workbench: Workbench, user: str) -> Path:
    """Return the folder of the user's home volume (its claim must be bound)."""
    kube = workbench.kube
    assert kube is not None
    claims = f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims"
    claim = kube.get(f"{claims}/home-{user}")
    assert claim is not None, f"{user} has no home claim"
    volume = claim["spec"]["volumeName"]
    return workbench.state_dir / "cluster" / "volumes" / volume


def server_pod(workbench: Workbench, user: str) -> dict[str, Any] | None:
    """Return the user's server pod, or ``None`` when there is none."""
    kube = workbench.kube
    assert kube is not None
    return kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-{user}")


def spot_notice(workbench: Workbench, user: str, wait_s: float = 10.0) -> Notice:
    """Deliver a spot interruption notice to the node of the user's server."""
    assert workbench.cluster is not None
    api = Api(workbench.cluster.api)
    node = node_of_user(api, user, NAMESPACE)
    sent = time.time()
    shown = deliver(api, node, SPOT_INTERRUPTION, wait_s)
    return Notice(node, shown["taint"], shown["at"], sent)


def node_labels(workbench: Workbench, node: str) -> dict[str, str]:
    """Return a node's labels (empty when it is gone)."""
    kube = workbench.kube
    assert kube is not None
    found = kube.get(f"/api/v1/nodes/{node}") or {}
    return dict((found.get("metadata") or {}).get("labels") or {})


def wait_stop_reason(
    page: Page, workbench: Workbench, timeout: float, every_s: float = 1.0
) -> str:
    """Reload the hub's home page until it says why the server stopped; the text."""
    reason = page.locator("#wb-stop-reason")
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"{workbench.url}/hub/home")
        if reason.count():
            return reason.inner_text()
        assert time.monotonic() < deadline, "the home page never said why"
        page.wait_for_timeout(every_s * 1000)
