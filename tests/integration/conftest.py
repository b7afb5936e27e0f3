"""Fixtures for the integration tests: real services on loopback, started lazily.

Session-scoped; each starts on first use and is stopped by its PID (or its server
thread) at the end of the session, also when a test failed:

- ``ldap_server`` (tests/conftest.py): the session's slapd with the demo users.
- ``workbench`` (tests/conftest.py): the demo's whole stack for one module; the
  module overrides ``workbench_options`` to say which pools and zones it runs.
- ``moto``: :class:`devcluster.services.moto_server.MotoServer`, moto on 127.0.0.1; use
  ``moto.client("ec2")``. moto keeps its state per *process* (every MotoServer and
  ``mock_aws`` here share it) and any test may ``moto.reset()`` it: create what a test
  needs in that test, with unique names or tags.
- ``moto_credentials``: this process's AWS SDK uses moto's dummy keys and no
  profile, config or credentials file of the machine (the CLI's clients, run
  in-process, then reach moto only).
- ``bob_left_stopped``: stops bob's server after a test, whatever it did.
- ``bob``, ``alice`` (module): the demo users' sessions with the hub of the module's
  ``bench`` fixture (each module that uses them defines ``bench``: its stack),
  logged in with their demo passwords.

More fixtures live next to this file in their own modules. Keep this file small:
no service starts and no heavy import happen at collection time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from devcluster.demo.workbench import Workbench
    from devcluster.services.moto_server import MotoServer
    from tests.integration.hub_harness import HubUser


@pytest.fixture(scope="session")
def moto(moto_session: MotoServer) -> MotoServer:
    return moto_session


@pytest.fixture
def moto_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="module")
def bob(bench: Workbench) -> HubUser:
    from tests.integration.hub_harness import logged_in  # no import at collection

    return logged_in(bench, "bob")


@pytest.fixture
def bob_left_stopped(bench: Workbench, bob: HubUser) -> Iterator[None]:
    """bob has no server after the test, also when it failed (modules whose
    tests spawn him use it: ``pytest.mark.usefixtures("bob_left_stopped")``)."""
    yield
    from tests.integration.hub_harness import leave_stopped  # no import at collection

    leave_stopped(bench, bob)


@pytest.fixture(scope="module")
def alice(bench: Workbench) -> HubUser:
    from tests.integration.hub_harness import logged_in  # no import at collection

    return logged_in(bench, "alice")
