"""LDAP login: the authenticator's settings and the hook that maps groups.

This module owns how a directory account becomes a hub user:

- :func:`authenticator_config` turns :class:`~wbspawner.hub.settings.LdapSettings` and
  the profiles' groups into ``LDAPAuthenticator`` trait values: StartTLS or LDAPS
  with certificate checks in production, a plain connection only when the
  settings say the server is the local test directory; the allowed groups are
  the profiles' user and admin groups;
- :class:`GroupMapper` is the ``post_auth_hook``: LDAP group DNs become hub group
  names (``manage_groups``), membership of an admin group makes a hub admin, and
  the account's ``uidNumber``/``gidNumber`` are put in ``auth_state`` as numbers
  so the server runs as the user;
- :func:`posix_ids` reads them back for the spawner;
- :func:`not_in_group_message` is what a person in none of the groups is told,
  :data:`DIRECTORY_DOWN_MESSAGE` what anyone is told while the directory does
  not answer (:mod:`wbspawner.hub.login` shows them).

No I/O here: ldapauthenticator does the binds and searches. The hook returns a
new model and never mutates the one it is given.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wbspawner.hub.settings import LdapSettings
from wbspawner.model import Profiles

AUTH_STATE_ATTRIBUTES = ("uidNumber", "gidNumber", "cn", "mail")
"""Directory attributes kept in ``auth_state['user_attributes']``."""
UID_KEY = "uidNumber"
GID_KEY = "gidNumber"
_TLS_STRATEGY = {
    "starttls": "before_bind",
    "ldaps": "on_connect",
    "insecure": "insecure",
}
_DN_SPACES = re.compile(r"\s*([,=+])\s*")
DIRECTORY_DOWN_MESSAGE = (
    "The directory cannot be reached, so nobody can log in right now; try again "
    "in a minute. If it lasts, tell an admin."
)
"""What a person is told at login while the LDAP server does not answer."""


def normalize_dn(dn: str) -> str:
    """Return a DN in a form that compares equal for equal DNs.

    Attribute names and values of group DNs are compared case-insensitively, with
    the spaces around separators removed.

    Args:
        dn: a distinguished name, e.g. ``cn=Jupyter-Users, ou=groups,dc=example``.

    Returns:
        ``cn=jupyter-users,ou=groups,dc=example``.
    """
    return _DN_SPACES.sub(r"\1", dn.strip()).lower()


def all_groups(profiles: Profiles) -> tuple[str, ...]:
    """Return the hub groups that grant access: admin groups, then user groups.

    Args:
        profiles: the profiles.

    Returns:
        Group names without duplicates, in that order.
    """
    return tuple(dict.fromkeys([*profiles.admin_groups, *profiles.user_groups]))


def not_in_group_message(groups: Iterable[str]) -> str:
    """Return what a person in none of the hub's groups is told at login.

    Args:
        groups: the hub groups that grant access (:func:`all_groups`); none
            leaves the groups unnamed.

    Returns:
        The message.
    """
    names = sorted(set(groups))
    ask = (
        f"Ask an admin to add you to one of: {', '.join(names)}."
        if names
        else "Ask an admin to add you to one of its groups."
    )
    return f"You are not in a group allowed to use this hub. {ask}"


def authenticator_config(ldap: LdapSettings, profiles: Profiles) -> dict[str, Any]:
    """Return ``LDAPAuthenticator`` trait values for the directory and the groups.

    Args:
        ldap: the directory settings.
        profiles: the profiles (which groups may log in, which are admins).

    Returns:
        A new dict of trait name → value.
    """
    config: dict[str, Any] = {
        "server_address": ldap.server,
        "server_port": ldap.port,
        "tls_strategy": _TLS_STRATEGY[ldap.tls],
        "allowed_groups": [ldap.group_dn(g) for g in all_groups(profiles)],
        "auth_state_attributes": list(AUTH_STATE_ATTRIBUTES),
        "use_lookup_dn_username": False,
    }
    if ldap.tls != "insecure":
        tls: dict[str, Any] = {"validate": ssl.CERT_REQUIRED}
        if ldap.ca_file:
            tls["ca_certs_file"] = ldap.ca_file
        config["tls_kwargs"] = tls
    if ldap.bind_dn_templates:
        config["bind_dn_template"] = list(ldap.bind_dn_templates)
    if ldap.lookup_user:
        config.update(
            lookup_dn=True,
            lookup_dn_search_user=ldap.lookup_user,
            lookup_dn_search_password=ldap.lookup_password or "",
            user_search_base=ldap.user_search_base or "",
            user_attribute=ldap.user_attribute,
            lookup_dn_user_dn_attribute=ldap.user_attribute,
        )
    return config


def _first_int(value: object) -> int | None:
    """Return an LDAP attribute value as an ``int`` (ldap3 gives lists)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def posix_ids(auth_state: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """Return the user's ``(uidNumber, gidNumber)`` from ``auth_state``.

    Args:
        auth_state: the user's auth state (``None`` when there is none).

    Returns:
        The two ids; each is ``None`` when the directory has none.
    """
    state = auth_state or {}
    attributes = state.get("user_attributes") or {}
    uid = state.get(UID_KEY, attributes.get(UID_KEY))
    gid = state.get(GID_KEY, attributes.get(GID_KEY))
    return _first_int(uid), _first_int(gid)


@dataclass(frozen=True, slots=True)
class GroupMapper:
    """The ``post_auth_hook``: LDAP groups → hub groups and admin, ids in auth_state.

    ldapauthenticator lists in ``auth_state['ldap_groups']`` only the allowed
    groups the user belongs to, as DNs; all groups that matter are allowed
    groups, so nothing is lost.
    """

    dn_to_group: Mapping[str, str]
    """Normalised DN → hub group name."""
    admin_groups: frozenset[str]
    """Hub groups whose members are admins."""

    @classmethod
    def build(cls, ldap: LdapSettings, profiles: Profiles) -> GroupMapper:
        """Return the mapper for the profiles' groups.

        Args:
            ldap: the directory settings (group DN template).
            profiles: the profiles (admin and user groups).

        Returns:
            The hook.
        """
        return cls(
            {normalize_dn(ldap.group_dn(g)): g for g in all_groups(profiles)},
            frozenset(profiles.admin_groups),
        )

    def groups_of(self, dns: Iterable[str]) -> list[str]:
        """Return the hub groups of a user's LDAP group DNs, sorted.

        Args:
            dns: group DNs from ``auth_state['ldap_groups']``.

        Returns:
            Hub group names; unknown DNs are ignored.
        """
        names = {self.dn_to_group.get(normalize_dn(dn)) for dn in dns}
        return sorted(n for n in names if n)

    def __call__(
        self, authenticator: object, handler: object, authentication: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Return the authentication model with groups, admin and POSIX ids.

        Args:
            authenticator: the hub's authenticator (unused).
            handler: the login handler (unused).
            authentication: the model ldapauthenticator returned.

        Returns:
            A new model: ``groups`` (hub names), ``admin`` (true for admin-group
            members or admins by other configuration) and ``auth_state`` with
            ``uidNumber``/``gidNumber`` as numbers.
        """
        state = dict(authentication.get("auth_state") or {})
        groups = self.groups_of(state.get("ldap_groups") or [])
        uid, gid = posix_ids(state)
        state[UID_KEY] = uid
        state[GID_KEY] = gid
        admin = bool(authentication.get("admin")) or not self.admin_groups.isdisjoint(
            groups
        )
        return {**authentication, "groups": groups, "admin": admin, "auth_state": state}
