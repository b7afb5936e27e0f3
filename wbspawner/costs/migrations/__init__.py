"""The accounting schema's history as Alembic migrations, and applying it.

This package owns how the accounting database's tables change: every change is
a revision in ``versions/`` (the first, :data:`BASELINE`, is the schema the
hub created with ``create_all`` before migrations existed), and
:func:`upgrade` brings any database to the newest one. It does not know the
model (:mod:`wbspawner.costs.accounting` does, and passes its metadata where
autogenerate needs it), so it imports nothing from it.

- There is no ``alembic.ini``: :func:`alembic_config` builds the configuration
  in code, with the connection to use in ``config.attributes``; ``env.py``
  runs online only.
- Alembic's version table is :data:`VERSION_TABLE`, not ``alembic_version``:
  JupyterHub keeps its own schema's version in ``alembic_version``, and an
  operator may put both in one database.
- The hub, the gateway and the warmer open the database at about the same
  time. Migrations run in one transaction under a lock: PostgreSQL's
  transaction-scoped advisory lock, SQLite's ``BEGIN IMMEDIATE`` (its
  database-wide write lock); whoever comes second finds the schema current.
- A database made by the old ``create_all`` (the accounting table, no version
  table) is stamped as :data:`BASELINE`, then upgraded.

A new revision, from a database at head and the changed model::

    from alembic import command
    from sqlalchemy import create_engine
    from wbspawner.costs.accounting import Base
    from wbspawner.costs.migrations import alembic_config

    with create_engine(url).begin() as connection:
        config = alembic_config(connection, Base.metadata)
        command.revision(config, message="what changes", autogenerate=True)

then review the file it writes in ``versions/`` (name it ``vNNNN_<slug>.py``,
``revision = "NNNN"``) and extend tests/integration/test_migrations.py (SQLite and
PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

SCRIPT_LOCATION = Path(__file__).resolve().parent
"""This folder: ``env.py``, ``script.py.mako`` and ``versions/``."""
VERSION_TABLE = "wbspawner_alembic_version"
"""Where Alembic records the accounting schema's revision."""
BASELINE = "0001"
"""The revision whose schema the hub made with ``create_all`` before migrations."""
BASELINE_TABLE = "wbspawner_usage"
"""The table a database of that time holds (the usage records)."""
LOCK_KEY = 0x77627370_0001
"""PostgreSQL advisory lock held while migrating (a 64-bit number of our own)."""


def alembic_config(connection: Connection, metadata: MetaData | None = None) -> Config:
    """Return an Alembic configuration that migrates over ``connection``.

    Args:
        connection: an open connection, in the transaction migrations run in.
        metadata: the model's metadata, for autogenerate (``None`` otherwise).

    Returns:
        The configuration ``alembic.command`` functions take.
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = metadata
    return config


def current_revision(connection: Connection) -> str | None:
    """Return the database's accounting schema revision (``None``: none recorded)."""
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    )
    return context.get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the accounting database to the newest revision (no-op when it is).

    An empty database gets every table; one the old ``create_all`` made is
    stamped as :data:`BASELINE` first. Safe to call from several processes at
    once (see the module docstring).

    Args:
        engine: the accounting database's engine.
    """
    with _locked(engine) as connection:
        config = alembic_config(connection)
        found = inspect(connection)
        if not found.has_table(VERSION_TABLE) and found.has_table(BASELINE_TABLE):
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a transaction no other migration runs beside."""
    backend = engine.url.get_backend_name()
    # An in-memory SQLite database lives in its engine's connection: no other
    # process shares it, and another engine would open another database.
    in_memory = engine.url.database in (None, "", ":memory:")
    if backend == "sqlite" and not in_memory:
        with _sqlite_immediate(engine) as connection:
            yield connection
        return
    with engine.begin() as connection:
        if backend == "postgresql":
            # Released with the transaction, also when this process dies.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
            )
        yield connection


@contextmanager
def _sqlite_immediate(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes SQLite's write lock at its start, DDL included.

    Python's sqlite3 begins transactions itself, late and not before DDL; with
    its own handling off, the transaction is SQLAlchemy's and begins with
    ``BEGIN IMMEDIATE``, so a second process waits (its busy timeout) instead of
    creating the same tables.
    """
    own = create_engine(engine.url, poolclass=NullPool)

    @event.listens_for(own, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(own, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with own.begin() as connection:
            yield connection
    finally:
        own.dispose()
