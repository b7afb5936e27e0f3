"""Fixtures of the browser tests (started lazily, stopped at the end).

``ldap_server`` and ``workbench`` (the demo's stack for one module, configured
by the module's ``workbench_options``) come from ``tests/conftest.py``; the
steps every browser test takes are in ``browser_support``.

- ``browser``: headless Debian Chromium driven by Playwright (one per module).
- ``page``: a page in a fresh browser context (cookies of its own), closed
  after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser_support import launch_chromium, new_context

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()
