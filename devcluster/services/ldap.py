"""A private OpenLDAP ``slapd`` on loopback, seeded with the demo directory.

This module owns the local LDAP server that tests, benchmarks and the demo log in
against: its ``slapd.conf`` (mdb database, memberof overlay, the core/cosine/nis/
inetorgperson schemas and openssh-lpk's, for people's SSH keys), its process
(foreground, our PID, stopped by PID), and the seeding with the demo directory
(:mod:`devcluster.services.ldap_seed`, re-exported here). It uses Debian's
``slapd`` and ``ldap-utils`` binaries, which ``scripts/setup-system.sh``
installs without configuring or starting the system daemon. Nothing under
``/etc/ldap`` is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ldap3

from devcluster.pki import ServerCert, make_server_cert
from devcluster.services.ldap_seed import (
    ADMIN_PASSWORD,
    ADMINS_GROUP,
    BASE_DN,
    DEMO_GROUPS,
    DEMO_USERS,
    GPU_GROUP,
    USERS_GID,
    USERS_GROUP,
    DemoUser,
    groups_dn,
    hash_password,
    people_dn,
    seed_ldif,
    user_attributes,
)
from devcluster.services.procs import Proc, free_port

__all__ = [
    "ADMINS_GROUP",
    "ADMIN_PASSWORD",
    "BASE_DN",
    "DEMO_GROUPS",
    "DEMO_USERS",
    "GPU_GROUP",
    "USERS_GID",
    "USERS_GROUP",
    "DemoUser",
    "LdapServer",
    "hash_password",
    "seed_ldif",
    "slapd_conf",
]

SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = "/etc/ldap/schema"
LPK_SCHEMA = Path(__file__).with_name("openssh-lpk.schema")
"""``sshPublicKey`` and ``ldapPublicKey`` (Debian's slapd does not ship them)."""
MODULE_DIR = "/usr/lib/ldap"
_SETUP_HINT = "run scripts/setup-system.sh as root (or `make system`) to install it"


def slapd_conf(
    state_dir: Path,
    base_dn: str,
    admin_dn: str,
    admin_pw: str,
    tls: ServerCert | None = None,
) -> str:
    """Return a ``slapd.conf`` for a private instance keeping its files in state_dir.

    With ``tls`` the server offers StartTLS with that certificate.
    """
    schemas = ("core", "cosine", "nis", "inetorgperson")
    lines = [f"include {SCHEMA_DIR}/{name}.schema" for name in schemas]
    lines.append(f"include {LPK_SCHEMA}")
    if tls is not None:
        lines += [
            f"TLSCACertificateFile {tls.ca_file}",
            f"TLSCertificateFile {tls.cert_file}",
            f"TLSCertificateKeyFile {tls.key_file}",
        ]
    lines += [
        f"pidfile {state_dir / 'slapd.pid'}",
        f"argsfile {state_dir / 'slapd.args'}",
        f"modulepath {MODULE_DIR}",
        "moduleload back_mdb",
        "moduleload memberof",
        "database mdb",
        "maxsize 104857600",
        f'suffix "{base_dn}"',
        f'rootdn "{admin_dn}"',
        f"rootpw {hash_password(admin_pw)}",
        f"directory {state_dir / 'data'}",
        "index objectClass eq",
        "index uid,memberUid,member eq",
        "overlay memberof",
        "access to attrs=userPassword by self write by anonymous auth by * none",
        "access to * by * read",
    ]
    return "\n".join(lines) + "\n"


def _require_binary(path: str) -> str:
    found = shutil.which(path)
    if found is None:
        raise RuntimeError(f"{path} not found: {_SETUP_HINT}")
    return found


class LdapServer:
    """A private slapd on ``host:port`` keeping its database in ``state_dir``.

    ``start()`` writes the config, starts slapd in the foreground, waits until the
    admin can bind, and seeds :func:`seed_ldif` when the directory is empty; a
    restart on the same ``state_dir`` keeps the data (and the port).

    Args:
        state_dir: Folder for slapd.conf, the mdb files, the pid file and the log.
        host: Loopback address to listen on.
        port: TCP port (0: a free one, chosen at the first start).
        base_dn: Suffix of the directory.
        admin_password: Password of ``cn=admin,<base_dn>`` (the rootdn).
        users: The people (and through them the groups) seeded at first start.
        start_timeout: Seconds to wait for slapd to answer binds.
        tls: offer StartTLS with a certificate for ``host`` signed by a CA of
            its own (``tls_cert.ca_file``), as a production directory does.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base_dn: str = BASE_DN,
        admin_password: str = ADMIN_PASSWORD,
        users: Iterable[DemoUser] = DEMO_USERS,
        start_timeout: float = 10.0,
        tls: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.host = host
        self.port = port
        self.base_dn = base_dn
        self.admin_dn = f"cn=admin,{base_dn}"
        self.admin_password = admin_password
        self.users = tuple(users)
        self.start_timeout = start_timeout
        self.tls = tls
        self.tls_cert: ServerCert | None = None
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        """``ldap://host:port`` of the server."""
        return f"ldap://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """File receiving slapd's output."""
        return self.state_dir / "slapd.log"

    def user_dn(self, uid: str) -> str:
        """Return the DN of user ``uid``."""
        return f"uid={uid},{people_dn(self.base_dn)}"

    def group_dn(self, name: str) -> str:
        """Return the DN of group ``name``."""
        return f"cn={name},{groups_dn(self.base_dn)}"

    def start(self) -> LdapServer:
        """Start slapd, wait until it answers, seed it if empty; return self.

        Raises:
            RuntimeError: slapd or ldap-utils are not installed, or seeding failed.
            TimeoutError: slapd did not answer binds within ``start_timeout``.
        """
        if self.proc is not None and self.proc.running:
            raise RuntimeError(f"slapd already running: {self.proc.describe()}")
        slapd = _require_binary(SLAPD)
        _require_binary("ldapadd")
        (self.state_dir / "data").mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        conf = self.state_dir / "slapd.conf"
        if self.tls and self.tls_cert is None:
            self.tls_cert = make_server_cert(
                self.state_dir / "tls", "slapd", [self.host], ("localhost",)
            )
        conf.write_text(
            slapd_conf(
                self.state_dir,
                self.base_dn,
                self.admin_dn,
                self.admin_password,
                self.tls_cert,
            )
        )
        # Foreground (-d) so the PID is ours; "none" still prints fatal errors
        # (a bad config, a busy port) to the log, where "-d 0" prints nothing.
        (self.state_dir / "slapd.pid").unlink(missing_ok=True)
        argv = [slapd, "-f", str(conf), "-h", f"{self.url}/", "-d", "none"]
        self.proc = Proc.start(argv, self.log_path)
        try:
            self._wait_ready()
            if not self._seeded():
                self._seed()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop slapd by its PID (no-op when not running)."""
        if self.proc is not None:
            self.proc.stop(timeout)
            self.proc = None

    def __enter__(self) -> LdapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bind_ok(self, dn: str, password: str) -> bool:
        """Return whether a simple bind as ``dn`` with ``password`` succeeds."""
        server = ldap3.Server(self.host, port=self.port, connect_timeout=2)
        conn = ldap3.Connection(server, dn, password, receive_timeout=5)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    @contextmanager
    def admin_connection(self) -> Iterator[Any]:
        """Yield an ``ldap3.Connection`` bound as the admin (unbound afterwards)."""
        server = ldap3.Server(self.host, port=self.port, connect_timeout=2)
        conn = ldap3.Connection(
            server, self.admin_dn, self.admin_password, receive_timeout=5
        )
        if not conn.bind():
            raise RuntimeError(f"admin bind to {self.url} failed: {conn.result}")
        try:
            yield conn
        finally:
            conn.unbind()

    def add_user(
        self,
        uid: str,
        password: str,
        uid_number: int,
        groups: Iterable[str] = (),
        *,
        name: str | None = None,
    ) -> str:
        """Add a user, also to ``groups`` (created when missing); return its DN."""
        dn = self.user_dn(uid)
        attrs = user_attributes(
            uid, name or f"{uid.title()} User", password, uid_number
        )
        values: dict[str, list[str]] = {}
        for key, value in attrs:
            values.setdefault(key, []).append(value)
        with self.admin_connection() as conn:
            _check(conn, conn.add(dn, attributes=values), f"add {dn}")
            for group in groups:
                self._add_member(conn, group, dn)
        return dn

    def set_password(self, uid: str, password: str) -> None:
        """Replace the password of user ``uid``."""
        dn = self.user_dn(uid)
        change = {"userPassword": [(ldap3.MODIFY_REPLACE, [hash_password(password)])]}
        with self.admin_connection() as conn:
            _check(conn, conn.modify(dn, change), f"set password of {dn}")

    def set_ssh_keys(self, uid: str, keys: Iterable[str]) -> None:
        """Replace the ``sshPublicKey`` values of user ``uid`` (none: remove all)."""
        dn = self.user_dn(uid)
        change = {"sshPublicKey": [(ldap3.MODIFY_REPLACE, list(keys))]}
        with self.admin_connection() as conn:
            _check(conn, conn.modify(dn, change), f"set SSH keys of {dn}")

    def group_members(self, name: str) -> list[str]:
        """Return the member DNs of group ``name`` (empty if it does not exist)."""
        with self.admin_connection() as conn:
            found = conn.search(
                self.group_dn(name), "(objectClass=*)", "BASE", attributes=["member"]
            )
            if not found:
                return []
            return [str(v) for v in conn.entries[0].member.values]

    def _add_member(self, conn: Any, group: str, member_dn: str) -> None:
        group_dn = self.group_dn(group)
        if conn.search(group_dn, "(objectClass=*)", "BASE"):
            change = {"member": [(ldap3.MODIFY_ADD, [member_dn])]}
            _check(conn, conn.modify(group_dn, change), f"add {member_dn} to {group}")
        else:
            attrs = {"objectClass": ["groupOfNames"], "cn": group, "member": member_dn}
            _check(conn, conn.add(group_dn, attributes=attrs), f"add {group_dn}")

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            self.proc.check_running()
            try:
                # slapd writes its pid file after binding its listeners, so our PID
                # there means the port is ours (not another server's).
                if not self._pid_file_is_ours():
                    problem = "no pid file yet"
                elif self.bind_ok(self.admin_dn, self.admin_password):
                    return
                else:
                    problem = "admin bind refused"
            except Exception as exc:  # ldap3 raises many types while slapd starts
                problem = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"slapd at {self.url} did not accept the admin bind within "
                    f"{self.start_timeout:g} s ({problem}); {self.proc.describe()} "
                    f"log tail:\n{self.proc.tail()}"
                )
            time.sleep(0.05)

    def _pid_file_is_ours(self) -> bool:
        assert self.proc is not None
        try:
            text = (self.state_dir / "slapd.pid").read_text().strip()
        except FileNotFoundError:
            return False
        return text == str(self.proc.pid)

    def _seeded(self) -> bool:
        with self.admin_connection() as conn:
            return bool(conn.search(self.base_dn, "(objectClass=*)", "BASE"))

    def _seed(self) -> None:
        ldif = self.state_dir / "seed.ldif"
        ldif.write_text(seed_ldif(self.base_dn, self.users))
        argv = ["ldapadd", "-x", "-H", self.url, "-D", self.admin_dn]
        argv += ["-w", self.admin_password, "-f", str(ldif)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(
                f"seeding {self.url} with {ldif} failed (exit {done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )


def _check(conn: Any, ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"LDAP {what} failed: {conn.result}")
