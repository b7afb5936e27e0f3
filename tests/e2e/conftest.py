"""Fixtures of the browser tests (started lazily, stopped by PID at the end).

- ``ldap_server``: :class:`devcluster.services.ldap.LdapServer`, a private slapd
  seeded with the demo users (alice, bob, gina, carol) and their groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from devcluster.services.ldap import LdapServer


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    from devcluster.services.ldap import LdapServer

    server = LdapServer(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
