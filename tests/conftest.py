"""Fixtures shared by the test tiers that run real services (started lazily).

- ``ldap_server``: :class:`devcluster.services.ldap.LdapServer`, a private slapd
  seeded with ``DEMO_USERS`` (alice, bob, gina, carol) and the groups
  jupyter-users, gpu-users, jupyter-admins, for the whole session; stopped by its
  PID at the end. Tests that change the directory use unique names.
- ``moto_session``: one moto server on 127.0.0.1 for the whole session, stopped
  by its server thread at the end (also when a test failed). moto keeps its
  state per process, so each folder's ``moto`` fixture decides when to reset it
  (``tests/devcluster`` before every test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from devcluster.services.ldap import LdapServer
    from devcluster.services.moto_server import MotoServer


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    from devcluster.services.ldap import LdapServer  # no import at collection time

    server = LdapServer(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoServer]:
    from devcluster.services.moto_server import (
        MotoServer,  # no import at collection time
    )

    server = MotoServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
