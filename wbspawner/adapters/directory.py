"""The directory's view of one person for the SSH service: keys and groups.

This module owns the SSH service's LDAP reads, with ldap3 (the library the
hub's authenticator uses): the person's entry (found from the bind DN
templates, or searched for by a lookup account), its ``sshPublicKey`` values
(the openssh-lpk schema's attribute) and which of the hub's groups list them
as a member (``member``/``uniqueMember`` with the entry's DN, or ``memberUid``
with the name, as ldapauthenticator checks). Every read is bounded by a
timeout; the calls block, so the service runs them in a thread.
:class:`DirectoryError` is a directory that does not answer.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

KEY_ATTRIBUTE = "sshPublicKey"
"""The openssh-lpk schema's attribute holding a person's public keys."""


@dataclass(frozen=True, slots=True)
class Account:
    """What the directory says about one person, as far as SSH cares."""

    name: str
    """The login name (the hub user name)."""
    keys: tuple[str, ...]
    """``sshPublicKey`` values, as written in the directory."""
    groups: tuple[str, ...]
    """The hub groups (of those asked about) the person is a member of."""


class DirectoryError(Exception):
    """The directory could not be asked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryConfig:
    """Where the directory is and how people and groups are found in it."""

    server: str
    port: int
    tls: str = "starttls"
    """``starttls``, ``ldaps`` or ``insecure`` (a local test directory only)."""
    ca_file: str | None = None
    user_dn_templates: tuple[str, ...] = ()
    """DN templates of people (``{username}`` replaced), tried in order."""
    group_dn_template: str = ""
    """DN of a hub group (``{group}`` replaced)."""
    lookup_user: str | None = None
    """DN of an account that searches for people (and reads their keys)."""
    lookup_password: str | None = None
    user_search_base: str | None = None
    user_attribute: str = "uid"
    timeout: int = 10
    """Seconds for connecting and for each read."""


class Directory:
    """Reads people's keys and groups.

    Args:
        config: the directory settings.
    """

    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config

    def _connection(self) -> ldap3.Connection:
        cfg = self.config
        tls = None
        if cfg.tls != "insecure":
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=cfg.ca_file)
        server = ldap3.Server(
            cfg.server,
            port=cfg.port,
            use_ssl=cfg.tls == "ldaps",
            tls=tls,
            connect_timeout=int(cfg.timeout),  # ldap3 packs whole seconds
        )
        conn = ldap3.Connection(
            server,
            user=cfg.lookup_user,
            password=cfg.lookup_password,
            receive_timeout=int(cfg.timeout),
            raise_exceptions=False,
        )
        if cfg.tls == "starttls":
            conn.open()
            conn.start_tls()
        if not conn.bind():
            raise DirectoryError(f"bind to the directory refused: {conn.result}")
        return conn

    def account(self, name: str, groups: Sequence[str]) -> Account | None:
        """Return a person's keys and which of ``groups`` they are in.

        Args:
            name: the login name.
            groups: hub group names to check.

        Returns:
            The account, or ``None`` when the directory has no such person.

        Raises:
            DirectoryError: the directory did not answer.
        """
        try:
            conn = self._connection()
            try:
                found = self._entry(conn, name)
                if found is None:
                    return None
                dn, keys = found
                member_of = tuple(g for g in groups if self._member(conn, g, dn, name))
                return Account(name=name, keys=keys, groups=member_of)
            finally:
                conn.unbind()
        except (LDAPException, OSError) as err:
            raise DirectoryError(f"{type(err).__name__}: {err}") from None

    def _entry(
        self, conn: ldap3.Connection, name: str
    ) -> tuple[str, tuple[str, ...]] | None:
        cfg = self.config
        attrs = [KEY_ATTRIBUTE]
        if cfg.lookup_user and cfg.user_search_base:
            what = f"({cfg.user_attribute}={escape_filter_chars(name)})"
            conn.search(cfg.user_search_base, what, attributes=attrs)
            if len(conn.entries) == 1:
                return _found(conn)
            return None
        for template in cfg.user_dn_templates:
            dn = template.format(username=escape_rdn(name))
            conn.search(
                dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attrs
            )
            if conn.entries:
                return _found(conn)
        return None

    def _member(self, conn: ldap3.Connection, group: str, dn: str, name: str) -> bool:
        what = (
            f"(|(member={escape_filter_chars(dn)})"
            f"(uniqueMember={escape_filter_chars(dn)})"
            f"(memberUid={escape_filter_chars(name)}))"
        )
        base = self.config.group_dn_template.format(group=group)
        conn.search(base, what, search_scope=ldap3.BASE, attributes=["cn"])
        return bool(conn.entries)


def _found(conn: ldap3.Connection) -> tuple[str, tuple[str, ...]]:
    entry = conn.entries[0]
    values = entry.entry_attributes_as_dict.get(KEY_ATTRIBUTE) or []
    keys = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)
    return str(entry.entry_dn), keys
