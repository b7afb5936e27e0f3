"""A private PostgreSQL server on loopback, for the tests and the benchmarks.

This module owns the local PostgreSQL that the hub's and the accounting
databases run on in the tests: its cluster (``initdb`` into a fresh temporary
folder, a superuser with a random password, password logins only), its process
(``postgres`` in the foreground on a free ``127.0.0.1`` port, our PID, its Unix
socket inside that folder, stopped by PID with a fast shutdown) and the
databases it holds (:meth:`PostgresServer.create_database`). It uses Debian's
``postgresql`` binaries under ``/usr/lib/postgresql/<major>/bin`` (the newest
major installed), which ``scripts/setup-system.sh`` installs without starting
the package's own cluster. Nothing under ``/etc/postgresql`` or
``/var/lib/postgresql`` is read or written.

PostgreSQL refuses to run as root. Run as root (as CI is), the cluster belongs
to the package's system user ``postgres`` and every server process runs as it;
otherwise, as the current user. That is also why the cluster's folder is a
temporary folder of its own (``tempfile.mkdtemp``), not under a test's state
folder: pytest's temporary folders are private to the user that made them. The
server's log is written by this process, next to the caller's other logs.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from devcluster.services.procs import Proc, free_port

PG_LIB = Path("/usr/lib/postgresql")
"""Where Debian installs each PostgreSQL major version (``<major>/bin``)."""
RUN_AS_ROOT_USER = "postgres"
"""The system user (made by Debian's package) the server runs as under root."""
SUPERUSER = "wbspawner"
"""The cluster's superuser; its password is random, per cluster."""
DRIVER = "postgresql+psycopg"
"""SQLAlchemy's dialect and driver in every URL this module hands out."""
_SETUP_HINT = "run scripts/setup-system.sh as root (or `make system`) to install it"


def postgres_bin_dir(root: Path = PG_LIB) -> Path:
    """Return the ``bin`` folder of the newest PostgreSQL major version installed.

    Args:
        root: where the versions are installed (Debian's layout).

    Raises:
        RuntimeError: no PostgreSQL server is installed there.
    """
    found = []
    for candidate in root.glob("*/bin"):
        major = candidate.parent.name
        if major.isdigit() and (candidate / "initdb").is_file():
            found.append((int(major), candidate))
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server under {root}/<version>/bin (initdb, postgres): "
            f"{_SETUP_HINT}"
        )
    return max(found)[1]


def _run_as() -> tuple[int, int] | None:
    """``(uid, gid)`` the server must run as, or ``None`` for this process's."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(RUN_AS_ROOT_USER)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root and the user {RUN_AS_ROOT_USER} "
            f"is missing: {_SETUP_HINT}"
        ) from None
    return entry.pw_uid, entry.pw_gid


class PostgresServer:
    """A private PostgreSQL cluster and its server on ``host:port``.

    ``start()`` makes the cluster on first use (``initdb``), starts the server
    and waits until it accepts a login; ``stop()`` stops it by its PID and keeps
    the cluster, so a later ``start()`` brings the same databases back on the
    same port (a database restart, as an operator's). ``close()`` (or leaving
    the ``with`` block) stops it and deletes the cluster.

    Args:
        log_dir: Folder for the server's and ``initdb``'s logs.
        host: Loopback address to listen on.
        port: TCP port (0: a free one, chosen at the first start).
        start_timeout: Seconds to wait for the server to accept a login.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 30.0,
    ) -> None:
        self.log_dir = Path(log_dir).resolve()
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.password = secrets.token_urlsafe(24)
        self.cluster_dir: Path | None = None
        self.proc: Proc | None = None

    @property
    def log_path(self) -> Path:
        """File receiving the server's output."""
        return self.log_dir / "postgres.log"

    @property
    def data_dir(self) -> Path:
        """The cluster's data folder (``initdb``'s ``-D``)."""
        assert self.cluster_dir is not None, "the cluster is not made yet"
        return self.cluster_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """Folder of the server's Unix socket (inside the cluster's folder)."""
        assert self.cluster_dir is not None, "the cluster is not made yet"
        return self.cluster_dir / "socket"

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of ``database``, with the superuser's login."""
        login = f"{SUPERUSER}:{self.password}"
        return f"{DRIVER}://{login}@{self.host}:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """Make the cluster if needed, start the server, wait until it answers.

        Returns:
            self.

        Raises:
            RuntimeError: PostgreSQL is not installed, the server is already
                running, or ``initdb`` failed.
            TimeoutError: the server did not accept a login within
                ``start_timeout``.
            ProcessExitedError: the server exited while starting (its log
                tail says why).
        """
        if self.proc is not None and self.proc.running:
            raise RuntimeError(f"postgres already running: {self.proc.describe()}")
        bin_dir = postgres_bin_dir()
        user = _run_as()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.cluster_dir is None:
            self._initdb(bin_dir, user)
        if self.port == 0:
            self.port = free_port(self.host)
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            # A throwaway cluster: no waiting for the disk (a clean stop still
            # writes everything), and room for several stacks' connection pools.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ]
        self.proc = Proc.start(argv, self.log_path, cwd=self.cluster_dir, user=user)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server by its PID (fast shutdown; no-op when not running)."""
        if self.proc is not None:
            # SIGINT: PostgreSQL's fast shutdown ends every session and writes a
            # checkpoint; its SIGTERM would wait for clients to leave.
            self.proc.stop(timeout, first=signal.SIGINT)
            self.proc = None

    def close(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop()
        if self.cluster_dir is not None:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            self.cluster_dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """Return an autocommit connection to ``database`` as the superuser."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname=database,
            connect_timeout=5,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """Create the (new, empty) database ``name``; return its URL.

        Raises:
            psycopg.errors.DuplicateDatabase: it exists already.
        """
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name`` (ending its sessions); no error if absent."""
        with self.connect() as conn:
            statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(statement.format(sql.Identifier(name)))

    def databases(self) -> list[str]:
        """Return the names of the databases (templates left out)."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def _initdb(self, bin_dir: Path, user: tuple[int, int] | None) -> None:
        cluster = Path(tempfile.mkdtemp(prefix="wbspawner-pg-"))
        self.cluster_dir = cluster
        try:
            password_file = cluster / "password"
            password_file.write_text(self.password + "\n")
            if user is not None:
                for path in (cluster, password_file):
                    os.chown(path, *user)
            argv = [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
            with (self.log_dir / "initdb.log").open("ab") as log:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cluster,
                    user=user[0] if user else None,
                    group=user[1] if user else None,
                    extra_groups=[] if user else None,
                    timeout=120,
                    check=False,
                )
            password_file.unlink()
            if done.returncode != 0:
                tail = (self.log_dir / "initdb.log").read_text(errors="replace")
                raise RuntimeError(
                    f"initdb failed (exit {done.returncode}); "
                    f"{self.log_dir / 'initdb.log'} ends with:\n{tail[-2000:]}"
                )
            self.socket_dir.mkdir()
            if user is not None:
                os.chown(self.socket_dir, *user)
        except BaseException:
            shutil.rmtree(cluster, ignore_errors=True)
            self.cluster_dir = None
            raise

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            self.proc.check_running()
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                problem = str(exc).strip().splitlines()[0] if str(exc) else "refused"
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"postgres on {self.host}:{self.port} did not accept a login "
                    f"within {self.start_timeout:g} s ({problem}); "
                    f"{self.proc.describe()} log tail:\n{self.proc.tail()}"
                )
            time.sleep(0.1)
