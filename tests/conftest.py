"""Fixtures shared by every test package.

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
