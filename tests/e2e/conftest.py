"""Fixtures of the browser tests (started lazily, stopped by PID at the end).

- ``ldap_server``: :class:`devcluster.services.ldap.LdapServer`, a private slapd
  seeded with the demo users (alice, bob, gina, carol) and their groups.
- ``browser``: headless Debian Chromium driven by Playwright (one per module).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from devcluster.services.ldap import LdapServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

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


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    from devcluster.services.ldap import LdapServer

    server = LdapServer(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
