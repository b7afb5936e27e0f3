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
- ``RUN_IN_KERNEL``: JavaScript for ``page.evaluate`` that runs code in a new
  kernel of the page's Jupyter server and returns its output.
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

RUN_IN_KERNEL = """
async ({base, code, timeoutMs}) => {
  const xsrf = decodeURIComponent(
    (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "");
  const headers = {"Content-Type": "application/json", "X-XSRFToken": xsrf};
  const started = await fetch(base + "api/kernels", {
    method: "POST", headers, credentials: "same-origin",
    body: JSON.stringify({name: "python3"})});
  if (!started.ok) {
    return {error: `kernel start: ${started.status} ${await started.text()}`};
  }
  const kernel = await started.json();
  const session = Math.random().toString(16).slice(2);
  const msgId = "dask-" + Math.random().toString(16).slice(2);
  const ws = new WebSocket(
    `ws://${location.host}${base}api/kernels/${kernel.id}/channels` +
    `?session_id=${session}`);
  const out = {stdout: "", error: null};
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out")), timeoutMs);
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onopen = () => ws.send(JSON.stringify({
        header: {msg_id: msgId, session, username: "", version: "5.3",
                 msg_type: "execute_request", date: new Date().toISOString()},
        parent_header: {}, metadata: {}, channel: "shell", buffers: [],
        content: {code, silent: false, store_history: false,
                  user_expressions: {}, allow_stdin: false,
                  stop_on_error: true}}));
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.parent_header.msg_id !== msgId) return;
        if (msg.msg_type === "stream") out.stdout += msg.content.text;
        if (msg.msg_type === "error") {
          out.error = msg.content.traceback.join(String.fromCharCode(10));
        }
        if (msg.msg_type === "status" &&
            msg.content.execution_state === "idle") {
          clearTimeout(timer);
          resolve();
        }
      };
    });
  } catch (err) {
    out.error = (out.error || "") + String(err);
  } finally {
    ws.close();
    await fetch(base + "api/kernels/" + kernel.id, {
      method: "DELETE", headers, credentials: "same-origin"});
  }
  return out;
}
"""
"""Run code in a new kernel of the page's server, as JupyterLab's notebook does
(the REST API with the page's XSRF cookie, then the kernel's websocket)."""


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
