"""LDAP login pieces: authenticator settings, group mapping hook, POSIX ids."""

from __future__ import annotations

import copy
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from wbspawner.hub.ldap import (
    GroupMapper,
    authenticator_config,
    normalize_dn,
    posix_ids,
)
from wbspawner.hub.settings import LdapSettings, Settings
from wbspawner.model import Profiles

BASE = "dc=example,dc=org"


@pytest.fixture
def ldap(make_settings: Callable[..., Settings]) -> Callable[..., LdapSettings]:
    """``ldap(**changes)``: the LDAP settings of ``make_settings`` with changes."""
    return lambda **changes: make_settings(ldap=changes).ldap


def test_production_uses_starttls_with_certificate_checks(
    ldap: Callable[..., LdapSettings], profiles: Profiles
) -> None:
    config = authenticator_config(ldap(ca_file="/ca.pem"), profiles)
    assert config["tls_strategy"] == "before_bind"
    assert config["tls_kwargs"] == {
        "validate": ssl.CERT_REQUIRED,
        "ca_certs_file": "/ca.pem",
    }
    assert config["allowed_groups"] == [
        f"cn=jupyter-admins,ou=groups,{BASE}",
        f"cn=jupyter-users,ou=groups,{BASE}",
        f"cn=gpu-users,ou=groups,{BASE}",
    ]
    assert "uidNumber" in config["auth_state_attributes"]
    assert "gidNumber" in config["auth_state_attributes"]
    assert config["bind_dn_template"] == [f"uid={{username}},ou=people,{BASE}"]


@pytest.mark.parametrize(
    ("tls", "strategy"),
    [
        pytest.param("ldaps", "on_connect", id="ldaps"),
        pytest.param("insecure", "insecure", id="insecure"),
    ],
)
def test_tls_strategies(
    ldap: Callable[..., LdapSettings], profiles: Profiles, tls: str, strategy: str
) -> None:
    config = authenticator_config(ldap(tls=tls), profiles)
    assert config["tls_strategy"] == strategy
    assert ("tls_kwargs" in config) is (tls != "insecure")


def test_lookup_dn_variant(
    ldap: Callable[..., LdapSettings], profiles: Profiles
) -> None:
    config = authenticator_config(
        ldap(
            bind_dn_templates=(),
            lookup_user=f"cn=svc,{BASE}",
            lookup_password="pw",
            user_search_base=f"ou=people,{BASE}",
        ),
        profiles,
    )
    assert config["lookup_dn"] is True
    assert config["lookup_dn_search_user"] == f"cn=svc,{BASE}"
    assert config["lookup_dn_search_password"] == "pw"
    assert "bind_dn_template" not in config


def test_normalize_dn() -> None:
    assert normalize_dn(" CN=Jupyter-Users , ou=Groups,dc=Example ") == (
        "cn=jupyter-users,ou=groups,dc=example"
    )


def login_model(groups: list[str], admin: bool | None = False) -> dict[str, Any]:
    return {
        "name": "bob",
        "admin": admin,
        "auth_state": {
            "ldap_groups": groups,
            "user_attributes": {"uidNumber": [10002], "gidNumber": [100], "cn": ["B"]},
        },
    }


@pytest.mark.parametrize(
    ("dns", "groups", "admin"),
    [
        pytest.param(
            [f"cn=jupyter-users,ou=groups,{BASE}"], ["jupyter-users"], False, id="bob"
        ),
        pytest.param(
            [f"cn=jupyter-users,ou=groups,{BASE}", f"CN=Gpu-Users, ou=groups,{BASE}"],
            ["gpu-users", "jupyter-users"],
            False,
            id="gina-case-insensitive",
        ),
        pytest.param(
            [
                f"cn=jupyter-admins,ou=groups,{BASE}",
                f"cn=jupyter-users,ou=groups,{BASE}",
            ],
            ["jupyter-admins", "jupyter-users"],
            True,
            id="alice-admin",
        ),
        pytest.param([f"cn=other,ou=groups,{BASE}"], [], False, id="unknown-dn"),
    ],
)
def test_hook_maps_groups_and_admin(
    ldap: Callable[..., LdapSettings],
    profiles: Profiles,
    dns: list[str],
    groups: list[str],
    admin: bool,
) -> None:
    hook = GroupMapper.build(ldap(), profiles)
    model = login_model(dns)
    before = copy.deepcopy(model)
    out = hook(None, None, model)
    assert out["groups"] == groups
    assert out["admin"] is admin
    assert out["auth_state"]["uidNumber"] == 10002
    assert out["auth_state"]["gidNumber"] == 100
    assert out["auth_state"]["user_attributes"]["cn"] == ["B"]
    assert model == before  # the input is not mutated


def test_hook_keeps_admin_from_other_configuration(
    ldap: Callable[..., LdapSettings], profiles: Profiles
) -> None:
    hook = GroupMapper.build(ldap(), profiles)
    out = hook(None, None, login_model([f"cn=jupyter-users,ou=groups,{BASE}"], True))
    assert out["admin"] is True


@pytest.mark.parametrize(
    ("state", "ids"),
    [
        pytest.param({"uidNumber": 5, "gidNumber": 6}, (5, 6), id="top-level"),
        pytest.param(
            {"user_attributes": {"uidNumber": [7], "gidNumber": ["8"]}},
            (7, 8),
            id="ldap3-lists",
        ),
        pytest.param({"user_attributes": {"uidNumber": []}}, (None, None), id="empty"),
        pytest.param({"uidNumber": "abc"}, (None, None), id="junk"),
        pytest.param(None, (None, None), id="no-auth-state"),
    ],
)
def test_posix_ids(state: dict[str, Any] | None, ids: tuple[int | None, ...]) -> None:
    assert posix_ids(state) == ids
