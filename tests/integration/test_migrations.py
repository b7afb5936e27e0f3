"""The accounting schema's Alembic migrations, on SQLite and on the real PostgreSQL.

Each test gets a new, empty database of each kind: a SQLite file, or a database
on the session's PostgreSQL (``postgres``). From empty and from the schema the
hub made before migrations existed, :func:`open_db` ends at the newest revision
with exactly the model's tables (Alembic's autogenerate comparison finds
nothing), and keeps the records it found.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from devcluster.services.postgres import PostgresServer
from wbspawner.costs import migrations
from wbspawner.costs.accounting import (
    Base,
    Start,
    UsageRecord,
    list_open,
    open_db,
    record,
    record_stop,
)
from wbspawner.costs.peaks import recent_sessions, record_peak

pytestmark = pytest.mark.integration

_numbers = itertools.count(1)

LEGACY = sa.MetaData()
"""The accounting table as ``create_all`` made it before revision 0001 (frozen
here: the model moves on, databases of that time do not)."""
sa.Table(
    "wbspawner_usage",
    LEGACY,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("user", sa.String(255), nullable=False, index=True),
    sa.Column("group", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.String(64), nullable=False),
    sa.Column("pool", sa.String(64), nullable=False),
    sa.Column("capacity_type", sa.String(16), nullable=False),
    sa.Column("zone", sa.String(32), nullable=False),
    sa.Column("node", sa.String(255), nullable=False),
    sa.Column("units", sa.Integer, nullable=False),
    sa.Column("price_micro_per_hour", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False, index=True),
    sa.Column("stopped_at", sa.DateTime, nullable=True),
)

START = Start(
    user="ada",
    size="large",
    pool="mem64",
    capacity_type="spot",
    price_per_hour=0.5,
    at=datetime(2026, 12, 1, 8),
    zone="us-east-1b",
    node="node-1",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or one on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'costs.sqlite'}"
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = f"migrations_{next(_numbers)}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


def head() -> str | None:
    return ScriptDirectory(str(migrations.SCRIPT_LOCATION)).get_current_head()


def differences(engine: sa.Engine) -> list[object]:
    """What autogenerate would change to make the database the model."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": migrations.VERSION_TABLE,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, Base.metadata))


def revision_of(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return migrations.current_revision(connection)


def test_the_revisions_form_one_line_from_the_baseline() -> None:
    script = ScriptDirectory(str(migrations.SCRIPT_LOCATION))
    revisions = list(script.walk_revisions())  # newest first
    assert revisions[-1].revision == migrations.BASELINE
    assert revisions[-1].down_revision is None
    assert len(script.get_heads()) == 1


def test_an_empty_database_is_migrated_to_the_model(url: str) -> None:
    sessions = open_db(url)
    engine = sessions.kw["bind"]
    try:
        assert revision_of(engine) == head()
        assert differences(engine) == []
        with sessions() as session:
            record(session, START)
            assert [r.user for r in list_open(session, "server")] == ["ada"]
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_is_stamped_and_keeps_its_records(
    url: str,
) -> None:
    engine = sa.create_engine(url)
    LEGACY.create_all(engine)
    usage = LEGACY.tables["wbspawner_usage"]
    with engine.begin() as connection:
        connection.execute(
            usage.insert(),
            {
                "kind": "server",
                "user": "bob",
                "group": "",
                "name": "",
                "size": "small",
                "pool": "cpu4",
                "capacity_type": "on-demand",
                "zone": "us-east-1a",
                "node": "n",
                "units": 1,
                "price_micro_per_hour": 126_000,
                "started_at": datetime(2026, 11, 30, 9),
            },
        )
    assert revision_of(engine) is None
    sessions = open_db(url)
    try:
        assert revision_of(engine) == head()
        assert differences(engine) == []
        with sessions() as session:
            (kept,) = list_open(session, "server")
            assert (kept.user, kept.price_micro_per_hour) == ("bob", 126_000)
    finally:
        sessions.kw["bind"].dispose()
        engine.dispose()


def test_opening_again_changes_nothing(url: str) -> None:
    first = open_db(url)
    with first() as session:
        record(session, START)
    second = open_db(url)
    try:
        engine = second.kw["bind"]
        assert revision_of(engine) == head()
        with engine.connect() as connection:
            versions = connection.execute(
                sa.text(f"SELECT count(*) FROM {migrations.VERSION_TABLE}")
            ).scalar_one()
        assert versions == 1
        with second() as session:
            assert len(list_open(session, "server")) == 1
    finally:
        first.kw["bind"].dispose()
        second.kw["bind"].dispose()


def test_writers_opening_an_empty_database_at_once_all_succeed(url: str) -> None:
    """The hub, the gateway and the warmer start together: one migrates, the
    others wait for it and find the schema current."""
    writers = 4
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []
    opened: list[sa.Engine] = []

    def open_together() -> None:
        try:
            barrier.wait(timeout=30)
            opened.append(open_db(url).kw["bind"])
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [
        threading.Thread(target=open_together, daemon=True) for _ in range(writers)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0.1))
    assert not any(t.is_alive() for t in threads), "a writer still waits after 60 s"
    try:
        assert errors == []
        assert len(opened) == writers
        assert revision_of(opened[0]) == head()
        assert differences(opened[0]) == []
    finally:
        for engine in opened:
            engine.dispose()


def test_the_hubs_own_alembic_version_table_is_left_alone(url: str) -> None:
    """JupyterHub's schema version lives in ``alembic_version``; an operator may
    keep the hub's and the accounting tables in one database."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        )
        connection.execute(
            sa.text("INSERT INTO alembic_version VALUES ('4621fec11365')")
        )
    sessions = open_db(url)
    try:
        with engine.connect() as connection:
            hub = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert hub.scalars().all() == ["4621fec11365"]
        assert revision_of(engine) == head()
    finally:
        sessions.kw["bind"].dispose()
        engine.dispose()


def test_downgrade_to_nothing_and_back(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        migrations.upgrade(engine)
        with engine.begin() as connection:
            command.downgrade(migrations.alembic_config(connection), "base")
        tables = set(sa.inspect(engine).get_table_names())
        assert tables == {migrations.VERSION_TABLE}
        migrations.upgrade(engine)
        assert revision_of(engine) == head()
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_from_the_baseline_a_closed_record_keeps_no_cause_and_new_stops_say_theirs(
    url: str,
) -> None:
    """Revision 0002 adds ``stop_cause``: records closed before it have none,
    a stop recorded after it says why."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrations.alembic_config(connection), migrations.BASELINE)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO wbspawner_usage (kind, "user", "group", name, size,'
                    " pool, capacity_type, zone, node, units, price_micro_per_hour,"
                    " started_at, stopped_at) VALUES ('server', 'old', '', '', 'small',"
                    " 'cpu4', 'spot', 'us-east-1a', 'n', 1, 42000,"
                    " '2026-11-30 09:00:00', '2026-11-30 10:00:00')"
                )
            )
        sessions = open_db(url)
        try:
            assert revision_of(engine) == head()
            with sessions() as session:
                record(session, START)
                record_stop(session, "ada", datetime(2026, 12, 1, 11), cause="reclaim")
                causes = {
                    r.user: r.stop_cause for r in session.query(UsageRecord).all()
                }
            assert causes == {"old": None, "ada": "reclaim"}
        finally:
            sessions.kw["bind"].dispose()
    finally:
        engine.dispose()


def test_from_0002_records_have_no_peak_and_new_runs_keep_their_highest(
    url: str,
) -> None:
    """Revision 0003 adds ``peak_memory_mib``: a run recorded before it has none
    (and is left out of the advice), a run after it keeps its highest sample."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrations.alembic_config(connection), "0002")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO wbspawner_usage (kind, "user", "group", name, size,'
                    " pool, capacity_type, zone, node, units, price_micro_per_hour,"
                    " started_at, stopped_at, stop_cause) VALUES ('server', 'ada',"
                    " '', '', 'xlarge', 'mem128', 'spot', 'us-east-1a', 'n', 1,"
                    " 420000, '2026-11-30 09:00:00', '2026-11-30 10:00:00', 'stop')"
                )
            )
        sessions = open_db(url)
        try:
            assert revision_of(engine) == head()
            assert differences(engine) == []
            with sessions() as session:
                record(session, START)
                for sample in (900, 2500, 1200):
                    record_peak(session, "ada", sample)
                record_stop(session, "ada", datetime(2026, 12, 1, 11))
                assert record_peak(session, "ada", 9999) is None  # none open
                peaks = {r.size: r.peak_memory_mib for r in session.query(UsageRecord)}
                assert peaks == {"xlarge": None, "large": 2500}
                (last,) = recent_sessions(session, "ada")
            assert (last.size, last.peak_mib, last.capacity_type) == (
                "large",
                2500,
                "spot",
            )
        finally:
            sessions.kw["bind"].dispose()
    finally:
        engine.dispose()
