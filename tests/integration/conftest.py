"""Fixtures for the integration tests: real services on loopback, started lazily.

Session-scoped; each starts on first use and is stopped by its PID (or its server
thread) at the end of the session, also when a test failed:

- ``ldap_server``: :class:`devcluster.services.ldap.LdapServer`, a private slapd
  seeded with ``DEMO_USERS`` (alice, bob, gina, carol) and the groups
  jupyter-users, gpu-users, jupyter-admins. Tests that change the directory use
  unique names.
- ``moto``: :class:`devcluster.services.moto_server.MotoServer`, moto on 127.0.0.1; use
  ``moto.client("ec2")``. moto keeps its state per *process* (every MotoServer and
  ``mock_aws`` here share it) and any test may ``moto.reset()`` it: create what a test
  needs in that test, with unique names or tags.

More fixtures live next to this file in their own modules. Keep this file small:
no service starts and no heavy import happen at collection time.
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
    from devcluster.services.ldap import LdapServer

    server = LdapServer(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto(moto_session: MotoServer) -> MotoServer:
    return moto_session
