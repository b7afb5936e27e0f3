"""Fixtures of the browser tests (started lazily, stopped at the end).

``ldap_server`` and ``workbench`` (the demo's stack for one module, configured
by the module's ``workbench_options``) come from ``tests/conftest.py``; the
steps every browser test takes are in ``browser_support``.

- ``browser``: headless Debian Chromium driven by Playwright (one per module).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser_support import launch_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium
