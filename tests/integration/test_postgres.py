"""The private PostgreSQL the hub stacks keep their databases on.

The session's server (``postgres``) is checked as the stacks use it; a server of
a test's own is stopped, restarted and deleted.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from devcluster.services.descendants import still_alive
from devcluster.services.postgres import (
    RUN_AS_ROOT_USER,
    SUPERUSER,
    PostgresServer,
    postgres_bin_dir,
)

pytestmark = pytest.mark.integration


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


def test_the_server_runs_as_an_unprivileged_user(postgres: PostgresServer) -> None:
    assert postgres.proc is not None
    expected = (
        pwd.getpwnam(RUN_AS_ROOT_USER).pw_uid if os.geteuid() == 0 else os.getuid()
    )
    assert _uid_of(postgres.proc.pid) == expected != 0


def test_it_listens_on_loopback_with_its_socket_in_its_own_folder(
    postgres: PostgresServer,
) -> None:
    with postgres.connect() as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()
        sockets = conn.execute("SHOW unix_socket_directories").fetchone()
    assert listen == ("127.0.0.1",)
    assert sockets == (str(postgres.socket_dir),)
    assert postgres.cluster_dir is not None
    assert postgres.socket_dir.parent == postgres.cluster_dir


def test_a_wrong_password_is_refused(postgres: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(
            host=postgres.host,
            port=postgres.port,
            user=SUPERUSER,
            password="not-" + postgres.password,
            dbname="postgres",
            connect_timeout=5,
        )


def test_each_stack_gets_new_empty_databases(
    postgres: PostgresServer, stack_databases: Callable[[str], dict[str, str]]
) -> None:
    first, second = stack_databases("Some Module"), stack_databases("Some Module")
    urls = [*first.values(), *second.values()]
    assert len(set(urls)) == 4
    names = [url.rpartition("/")[2] for url in urls]
    assert set(names) <= set(postgres.databases())
    engine = sa.create_engine(first["hub_db_url"])
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_restart_keeps_the_databases_and_the_port(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path).start()
    try:
        url = server.create_database("kept")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (n integer)"))
            conn.execute(sa.text("INSERT INTO t VALUES (42)"))
        engine.dispose()
        assert server.proc is not None
        first_pid, port = server.proc.pid, server.port
        idle = server.connect("kept")  # a client still connected: fast shutdown
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
        idle.close()
        assert not still_alive([first_pid])
        server.start()
        assert server.port == port
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT n FROM t")).scalar_one() == 42
        engine.dispose()
    finally:
        cluster = server.cluster_dir
        server.close()
    assert cluster is not None and not cluster.exists()
    assert server.proc is None


def test_no_postgresql_installed_fails_with_the_setup_hint(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"no PostgreSQL server .*setup-system"):
        postgres_bin_dir(tmp_path)


def test_the_newest_major_version_is_chosen(tmp_path: Path) -> None:
    for major in ("9", "15", "13"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "initdb").touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)  # no initdb: a client only
    assert postgres_bin_dir(tmp_path) == tmp_path / "15" / "bin"
