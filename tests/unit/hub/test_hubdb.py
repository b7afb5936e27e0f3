"""The wait of a finishing start for the hub's database (``wbspawner.hub.hubdb``).

The database is SQLite in a folder that does not exist yet: every query fails
with ``OperationalError`` (as with a PostgreSQL that refuses connections) until
the folder is made.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from wbspawner.hub.hubdb import wait_for_hub_database

LOG = logging.getLogger("test-hubdb")


def session_in(folder: Path) -> Session:
    return Session(create_engine(f"sqlite:///{folder / 'hub.sqlite'}"))


async def test_waits_until_the_database_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    folder = tmp_path / "later"
    session = session_in(folder)
    asyncio.get_running_loop().call_later(0.1, folder.mkdir)
    assert await wait_for_hub_database(session, 5.0, LOG, "bob", every=0.02)
    assert "bob: the pod is ready but the hub's database is away" in caplog.text
    assert "bob: the hub's database is back" in caplog.text
    session.commit()  # the hub's next commit works on the session


async def test_an_answering_database_is_not_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = session_in(tmp_path)
    assert await wait_for_hub_database(session, 5.0, LOG, "bob")
    assert caplog.text == ""


async def test_gives_up_after_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = session_in(tmp_path / "never")
    began = asyncio.get_running_loop().time()
    assert not await wait_for_hub_database(session, 0.1, LOG, "bob", every=0.02)
    assert asyncio.get_running_loop().time() - began < 2.0
    assert "bob: the hub's database is still away" in caplog.text
