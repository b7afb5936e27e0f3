"""The hub's own database, as a finishing start waits for it.

This module owns one wait: :func:`wait_for_hub_database`, which
``WorkbenchSpawner.start`` runs once the server's pod is Ready and before it
returns. JupyterHub (6.1) writes the server's address to its database as soon
as ``Spawner.start`` returns (``User.spawn``: ``server.port = ...;
db.commit()``). When that write fails because the database is away, its error
handler formats a log line with ``self.name``, which loads the user from the
same database and fails again: the spawn then ends with nothing logged, no
route in the proxy, no cleanup, and the server shown as ready at the random
port it was given before the start (``jupyterhub/user.py``, ``User.spawn``).
That is JupyterHub's behaviour and not ours to change; what is ours is not to
return into it while the database is away. So the spawner waits, within its
start timeout, until the database answers, first on a connection of its own
in a worker thread (a database that does not answer never blocks the hub's
event loop), then through the hub's own session (whose connection may have
died with the server: rolled back, the next statement takes a fresh one).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Log = logging.Logger | logging.LoggerAdapter[Any]


def _ping(session: Session) -> None:
    """Run ``SELECT 1`` on a connection of the session's engine (not its own)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with engine.connect() as connection:
        connection.scalar(select(1))


async def wait_for_hub_database(
    session: Session, timeout: float, log: Log, who: str, every: float = 1.0
) -> bool:
    """Wait until the hub's database answers through ``session``.

    Args:
        session: the hub's database session (``Spawner.db``).
        timeout: seconds to wait at most.
        log: where the wait is logged (once when it starts, once when it ends).
        who: the server, for the log (``Spawner._log_name``).
        every: seconds between two tries.

    Returns:
        Whether the database answers (``False``: still away after ``timeout``).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout, 0.0)
    waited = False
    while True:
        try:
            await asyncio.to_thread(_ping, session)
            session.execute(select(1))
        except DBAPIError as err:
            _rollback(session, log)
            if loop.time() + every > deadline:
                log.warning(
                    "%s: the hub's database is still away; the hub may not "
                    "record the server: %s",
                    who,
                    err.orig or err,
                )
                return False
            if not waited:
                log.warning(
                    "%s: the pod is ready but the hub's database is away; "
                    "waiting for it before the hub records the server: %s",
                    who,
                    err.orig or err,
                )
                waited = True
            await asyncio.sleep(every)
            continue
        if waited:
            log.info("%s: the hub's database is back", who)
        return True


def _rollback(session: Session, log: Log) -> None:
    """Roll the hub's session back (its connection may be dead); never raise."""
    try:
        session.rollback()
    except DBAPIError as err:  # the rollback itself may find the server gone
        log.debug("rollback of the hub's session failed: %s", err)
