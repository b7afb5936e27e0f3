"""Where the accounting database is, and how a reader opens it without harm.

This module owns two rules that the hub and the admin tools share:

- where the database is: ``WBSPAWNER_COST_DB_URL`` (or the file
  ``WBSPAWNER_COST_DB_URL_FILE`` names, a mounted Secret), else the SQLite file
  :data:`DB_FILE` in the hub's state directory (``WBSPAWNER_STATE_DIR``), as
  :attr:`wbspawner.hub.settings.Settings.cost_db` finds it
  (:func:`url_in_state_dir`, :func:`configured_url`);
- how a reader (``wbspawner cost report``) opens it: only when it exists, never
  creating a file or a table, every failure (a malformed URL, a missing driver
  or file, a refused connection, a database without the accounting table) one
  :class:`AccountingDbError` whose message names the database without its
  password (:func:`read_report`).

The writers (the hub, the gateway) open it with
:func:`wbspawner.costs.accounting.open_db`, which creates the tables or migrates
them to the newest schema (:mod:`wbspawner.costs.migrations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from wbspawner.costs.accounting import GroupBy, ReportRow, UsageRecord, report
from wbspawner.errors import WbError

DB_URL_ENV = "WBSPAWNER_COST_DB_URL"
"""The accounting database's SQLAlchemy URL, as the hub reads it."""
DB_URL_FILE_ENV = "WBSPAWNER_COST_DB_URL_FILE"
"""A file holding that URL (the hub's Secret, mounted), when the URL is unset."""
STATE_DIR_ENV = "WBSPAWNER_STATE_DIR"
"""The hub's state directory, where the SQLite database is by default."""
DB_FILE = "wbspawner-costs.sqlite"
"""The file name of the default SQLite database."""


class AccountingDbError(WbError):
    """The accounting database cannot be read; the message says why, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def url_in_state_dir(state_dir: str | Path) -> str:
    """Return the URL of the default SQLite database in a hub's state directory.

    Args:
        state_dir: the hub's state directory.

    Returns:
        ``sqlite:///<state_dir>/wbspawner-costs.sqlite``.
    """
    return f"sqlite:///{Path(state_dir) / DB_FILE}"


def configured_url(environ: Mapping[str, str]) -> str | None:
    """Return the database URL the environment names, as the hub would find it.

    Args:
        environ: the environment (``WBSPAWNER_COST_DB_URL``,
            ``WBSPAWNER_COST_DB_URL_FILE``, ``WBSPAWNER_STATE_DIR``).

    Returns:
        The URL, or ``None`` when the environment names none of them.

    Raises:
        AccountingDbError: the file holding the URL cannot be read, or is empty.
    """
    url = environ.get(DB_URL_ENV, "").strip()
    if url:
        return url
    url_file = environ.get(DB_URL_FILE_ENV, "").strip()
    if url_file:
        try:
            url = Path(url_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AccountingDbError(
                f"{DB_URL_FILE_ENV} {url_file!r} cannot be read: {exc.strerror}"
            ) from None
        if not url:
            raise AccountingDbError(f"{DB_URL_FILE_ENV} {url_file!r} is empty")
        return url
    state_dir = environ.get(STATE_DIR_ENV, "").strip()
    return url_in_state_dir(state_dir) if state_dir else None


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _open_existing(url: str) -> tuple[Engine, str]:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AccountingDbError(
            f"{url!r} is not a database URL (e.g. sqlite:////srv/jupyterhub/"
            f"{DB_FILE} or postgresql://user@host/db)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:"):
            raise AccountingDbError(f"{shown} is an empty in-memory database")
        if not Path(path).is_file():
            raise AccountingDbError(
                f"no accounting database at {path} (the hub creates it when the "
                "first server starts; is this the hub's state directory?)"
            )
    try:
        engine = create_engine(parsed)
        has_table = inspect(engine).has_table(UsageRecord.__tablename__)
    except (SQLAlchemyError, ImportError) as exc:  # ImportError: no DB driver
        raise AccountingDbError(f"cannot read {shown}: {_first_line(exc)}") from None
    if not has_table:
        engine.dispose()
        raise AccountingDbError(
            f"{shown} holds no accounting records (no table "
            f"{UsageRecord.__tablename__}); is it the hub's accounting database?"
        )
    return engine, shown


def read_report(
    url: str, by: GroupBy = "user", month: str | None = None
) -> list[ReportRow]:
    """Return a month's spending from an existing database, creating nothing.

    Args:
        url: the database's SQLAlchemy URL.
        by: ``user``, ``group`` or ``size``.
        month: ``YYYY-MM`` (default: this month).

    Returns:
        The rows of :func:`wbspawner.costs.accounting.report`.

    Raises:
        AccountingDbError: the database cannot be read (the reason in one line).
    """
    engine, shown = _open_existing(url)
    try:
        with sessionmaker(engine)() as session:
            return report(session, by=by, month=month)
    except SQLAlchemyError as exc:
        raise AccountingDbError(f"cannot read {shown}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
