"""The demo directory: its people and groups, and the LDIF that creates them.

This module owns what the local LDAP server holds at first start (the users
alice, bob, gina and carol, the groups jupyter-users, gpu-users and jupyter-admins)
and how entries are written (inetOrgPerson + posixAccount + ldapPublicKey
people, groupOfNames groups, ``{SSHA}`` passwords). Pure apart from random
password salts.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BASE_DN = "dc=example,dc=org"
ADMIN_PASSWORD = "adminpw"
USERS_GID = 100
"""gidNumber of every demo user (Debian's ``users`` group)."""

USERS_GROUP = "jupyter-users"
GPU_GROUP = "gpu-users"
ADMINS_GROUP = "jupyter-admins"
DEMO_GROUPS: tuple[str, ...] = (USERS_GROUP, GPU_GROUP, ADMINS_GROUP)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoUser:
    """One person in the demo directory."""

    uid: str
    name: str
    """Full name (``cn``)."""
    password: str
    uid_number: int
    groups: tuple[str, ...]
    """Names of the groups (``cn`` under ``ou=groups``) the user is a member of."""


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        uid="alice",
        name="Alice Admin",
        password="alice-pw",
        uid_number=10001,
        groups=(USERS_GROUP, ADMINS_GROUP),
    ),
    DemoUser(
        uid="bob",
        name="Bob Builder",
        password="bob-pw",
        uid_number=10002,
        groups=(USERS_GROUP,),
    ),
    DemoUser(
        uid="gina",
        name="Gina Gpu",
        password="gina-pw",
        uid_number=10003,
        groups=(USERS_GROUP, GPU_GROUP),
    ),
    DemoUser(
        uid="carol",
        name="Carol Outsider",
        password="carol-pw",
        uid_number=10004,
        groups=(),
    ),
)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return ``password`` as an LDAP ``{SSHA}`` value (what ``slappasswd`` makes)."""
    salt = os.urandom(8) if salt is None else salt
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def people_dn(base_dn: str) -> str:
    """Return the DN of ``ou=people`` under ``base_dn``."""
    return f"ou=people,{base_dn}"


def groups_dn(base_dn: str) -> str:
    """Return the DN of ``ou=groups`` under ``base_dn``."""
    return f"ou=groups,{base_dn}"


def _ldif_block(dn: str, attrs: Sequence[tuple[str, str]]) -> str:
    return "\n".join([f"dn: {dn}", *(f"{k}: {v}" for k, v in attrs)]) + "\n"


def user_attributes(
    uid: str, name: str, password: str, uid_number: int
) -> list[tuple[str, str]]:
    """Return the attributes of a user entry (inetOrgPerson + posixAccount)."""
    return [
        ("objectClass", "inetOrgPerson"),
        ("objectClass", "posixAccount"),
        # may hold sshPublicKey values (the openssh-lpk schema): SSH logins
        ("objectClass", "ldapPublicKey"),
        ("uid", uid),
        ("cn", name),
        ("sn", name.split()[-1]),
        ("givenName", name.split()[0]),
        ("mail", f"{uid}@example.org"),
        ("uidNumber", str(uid_number)),
        ("gidNumber", str(USERS_GID)),
        ("homeDirectory", f"/home/{uid}"),
        ("loginShell", "/bin/bash"),
        ("userPassword", hash_password(password)),
    ]


def seed_ldif(base_dn: str = BASE_DN, users: Iterable[DemoUser] = DEMO_USERS) -> str:
    """Return the LDIF of the whole directory: base, OUs, users, groups.

    Groups are ``groupOfNames`` (the memberof overlay fills ``memberOf``), one per
    group named by a user; a group nobody is in is not created (``member`` is a
    required attribute).
    """
    users = tuple(users)
    dc = base_dn.split(",")[0].split("=", 1)[1]
    blocks = [
        _ldif_block(
            base_dn,
            [("objectClass", "dcObject"), ("objectClass", "organization")]
            + [("dc", dc), ("o", "Example Org")],
        ),
        _ldif_block(
            people_dn(base_dn),
            [("objectClass", "organizationalUnit"), ("ou", "people")],
        ),
        _ldif_block(
            groups_dn(base_dn),
            [("objectClass", "organizationalUnit"), ("ou", "groups")],
        ),
    ]
    for user in users:
        attrs = user_attributes(user.uid, user.name, user.password, user.uid_number)
        blocks.append(_ldif_block(f"uid={user.uid},{people_dn(base_dn)}", attrs))
    names = list(dict.fromkeys(g for u in users for g in u.groups))
    for group in names:
        members = [
            f"uid={u.uid},{people_dn(base_dn)}" for u in users if group in u.groups
        ]
        attrs = [("objectClass", "groupOfNames"), ("cn", group)]
        attrs += [("member", m) for m in members]
        blocks.append(_ldif_block(f"cn={group},{groups_dn(base_dn)}", attrs))
    return "\n".join(blocks)
