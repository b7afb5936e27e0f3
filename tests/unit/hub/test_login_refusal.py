"""A person whose password is right but who is in no allowed group is told so."""

from __future__ import annotations

import logging

import pytest
from tornado import web
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from tests.paths import REPO
from wbspawner.hub import hubconfig
from wbspawner.hub.ldap import not_in_group_message
from wbspawner.hub.login import WorkbenchLDAPAuthenticator
from wbspawner.hub.settings import Settings
from wbspawner.profiles.loader import load_profiles

USERS = "cn=jupyter-users,ou=groups,dc=example,dc=org"
ADMINS = "cn=jupyter-admins,ou=groups,dc=example,dc=org"


def authenticator(message: str | None = None) -> WorkbenchLDAPAuthenticator:
    c = Config()
    c.LDAPAuthenticator.server_address = "ldap.example.org"
    c.LDAPAuthenticator.bind_dn_template = ["uid={username},ou=people,dc=example"]
    c.LDAPAuthenticator.allowed_groups = [ADMINS, USERS]
    if message is not None:
        c.WorkbenchLDAPAuthenticator.not_allowed_message = message
    return WorkbenchLDAPAuthenticator(config=c)


def model(*groups: str) -> dict[str, object]:
    """What ldapauthenticator's ``authenticate`` returns after a good bind."""
    return {"name": "carol", "auth_state": {"ldap_groups": list(groups)}}


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param(
            ["jupyter-users", "gpu-users", "jupyter-admins", "gpu-users"],
            "You are not in a group allowed to use this hub. Ask an admin to add "
            "you to one of: gpu-users, jupyter-admins, jupyter-users.",
            id="named-sorted-once",
        ),
        pytest.param(
            [],
            "You are not in a group allowed to use this hub. Ask an admin to add "
            "you to one of its groups.",
            id="no-groups-known",
        ),
    ],
)
def test_message(groups: list[str], expected: str) -> None:
    assert not_in_group_message(groups) == expected


async def test_member_of_an_allowed_group_is_allowed() -> None:
    assert await authenticator().check_allowed("bob", model(USERS)) is True


async def test_no_allowed_group_is_a_403_that_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    message = not_in_group_message(["jupyter-users", "100%-team"])
    with pytest.raises(web.HTTPError) as info:
        await authenticator(message).check_allowed("carol", model())
    assert info.value.status_code == 403
    assert info.value.get_message() == message
    assert "User 'carol' not allowed" in caplog.text


async def test_a_full_login_in_no_group_raises_instead_of_returning_none() -> None:
    """JupyterHub's own login path: the 403 reaches the login handler."""
    auth = authenticator()

    async def good_bind(handler: object, data: dict[str, str]) -> dict[str, object]:
        return model("cn=other,ou=groups,dc=example,dc=org")

    auth.authenticate = good_bind
    with pytest.raises(web.HTTPError, match="not in a group allowed"):
        await auth.get_authenticated_user(None, {"username": "carol"})


def test_hub_config_uses_it_with_the_profiles_groups() -> None:
    profiles = load_profiles([REPO / "profiles"])
    env = {
        "WBSPAWNER_PROFILES": str(REPO / "profiles"),
        "WBSPAWNER_LDAP_SERVER": "ldap.example.org",
        "WBSPAWNER_LDAP_BIND_DN_TEMPLATE": "uid={username},ou=people,dc=example",
        "WBSPAWNER_LDAP_GROUP_DN_TEMPLATE": "cn={group},ou=groups,dc=example",
    }
    c = Config()
    hubconfig.apply(c, Settings.from_env(env, lambda path: None), profiles)
    assert import_item(c.JupyterHub.authenticator_class) is WorkbenchLDAPAuthenticator
    assert c.WorkbenchLDAPAuthenticator.not_allowed_message == (
        "You are not in a group allowed to use this hub. Ask an admin to add you to "
        "one of: gpu-users, jupyter-admins, jupyter-users."
    )
