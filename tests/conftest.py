"""Fixtures shared by every test package, and the check that ends every run.

The plugin :mod:`process_leftovers` fails the run when a process it started is
still alive at its end (and stops it); ``pytester`` runs small test runs of
their own (the check's tests).

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
    from devcluster.services.moto_server import MotoServer

pytest_plugins = ["process_leftovers", "pytester"]


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
