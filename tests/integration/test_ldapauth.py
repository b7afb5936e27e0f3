"""jupyterhub-ldapauthenticator against the private slapd, without a hub."""

from __future__ import annotations

from typing import Any

import pytest
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets.config import Config

from devcluster.services.ldap import ADMINS_GROUP, DEMO_GROUPS, DEMO_USERS, LdapServer
from wbspawner.hub.login import WorkbenchLDAPAuthenticator

pytestmark = pytest.mark.integration

PASSWORDS = {user.uid: user.password for user in DEMO_USERS}


def make_authenticator(
    server: LdapServer, cls: type[LDAPAuthenticator] = LDAPAuthenticator
) -> LDAPAuthenticator:
    c = Config()
    c.LDAPAuthenticator.server_address = server.host
    c.LDAPAuthenticator.server_port = server.port
    # Plain LDAP is only for this loopback server; production uses StartTLS/LDAPS.
    c.LDAPAuthenticator.tls_strategy = "insecure"
    c.LDAPAuthenticator.bind_dn_template = [server.user_dn("{username}")]
    c.LDAPAuthenticator.allowed_groups = [server.group_dn(g) for g in DEMO_GROUPS]
    c.LDAPAuthenticator.auth_state_attributes = [
        "cn",
        "mail",
        "uidNumber",
        "gidNumber",
        "homeDirectory",
        "memberOf",
    ]
    return cls(config=c)


async def login(server: LdapServer, username: str, password: str) -> Any:
    authenticator = make_authenticator(server)
    data = {"username": username, "password": password}
    return await authenticator.get_authenticated_user(None, data)


@pytest.mark.parametrize(
    ("uid", "uid_number", "groups"),
    [
        pytest.param("alice", 10001, {"jupyter-users", "jupyter-admins"}, id="alice"),
        pytest.param("bob", 10002, {"jupyter-users"}, id="bob"),
        pytest.param("gina", 10003, {"jupyter-users", "gpu-users"}, id="gina"),
    ],
)
async def test_group_member_logs_in_with_uid_in_auth_state(
    ldap_server: LdapServer, uid: str, uid_number: int, groups: set[str]
) -> None:
    user = await login(ldap_server, uid, PASSWORDS[uid])
    assert user["name"] == uid
    attributes = user["auth_state"]["user_attributes"]
    assert attributes["uidNumber"] == [uid_number]
    assert attributes["gidNumber"] == [100]
    assert attributes["homeDirectory"] == [f"/home/{uid}"]
    assert set(user["auth_state"]["ldap_groups"]) == {
        ldap_server.group_dn(g) for g in groups
    }


async def test_admin_group_is_reported(ldap_server: LdapServer) -> None:
    user = await login(ldap_server, "alice", PASSWORDS["alice"])
    assert ldap_server.group_dn(ADMINS_GROUP) in user["auth_state"]["ldap_groups"]


async def test_user_in_no_allowed_group_is_refused(ldap_server: LdapServer) -> None:
    assert await login(ldap_server, "carol", PASSWORDS["carol"]) is None


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("bob", "alice-pw", id="wrong-password"),
        pytest.param("bob", "", id="empty-password"),
        pytest.param("nobody", "nobody-pw", id="unknown-user"),
        pytest.param("b*", "bob-pw", id="wildcard-username"),
    ],
)
async def test_bad_credentials_are_refused(
    ldap_server: LdapServer, username: str, password: str
) -> None:
    assert await login(ldap_server, username, password) is None


async def test_password_change_takes_effect(ldap_server: LdapServer) -> None:
    uid = "pat-ldapauth"
    ldap_server.add_user(uid, "first-pw", 10090, ["jupyter-users"])
    assert (await login(ldap_server, uid, "first-pw"))["name"] == uid
    ldap_server.set_password(uid, "second-pw")
    assert await login(ldap_server, uid, "first-pw") is None
    assert (await login(ldap_server, uid, "second-pw"))["name"] == uid


async def test_carol_is_refused_for_her_groups_not_her_password(
    ldap_server: LdapServer,
) -> None:
    authenticator = make_authenticator(ldap_server)
    authenticator.allowed_groups = []
    authenticator.allow_all = True
    data = {"username": "carol", "password": PASSWORDS["carol"]}
    user = await authenticator.get_authenticated_user(None, data)
    assert user["name"] == "carol"
    assert user["auth_state"]["ldap_groups"] == []


async def test_workbench_login_tells_carol_her_groups_are_the_reason(
    ldap_server: LdapServer,
) -> None:
    """The hub's authenticator: a right password in no group is a 403 saying so."""
    authenticator = make_authenticator(ldap_server, WorkbenchLDAPAuthenticator)
    data = {"username": "carol", "password": PASSWORDS["carol"]}
    with pytest.raises(web.HTTPError) as info:
        await authenticator.get_authenticated_user(None, data)
    assert info.value.status_code == 403
    assert "not in a group allowed to use this hub" in (info.value.get_message() or "")
    wrong = {"username": "carol", "password": "not-carols-pw"}
    assert await authenticator.get_authenticated_user(None, wrong) is None
    bob = {"username": "bob", "password": PASSWORDS["bob"]}
    assert (await authenticator.get_authenticated_user(None, bob))["name"] == "bob"
