"""The proxy the hub starts sends unrouted requests to the hub, not to a 404."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from tests.paths import REPO
from wbspawner.hub import hubconfig
from wbspawner.hub.settings import Settings
from wbspawner.profiles.loader import load_profiles

LDAP = {
    "WBSPAWNER_LDAP_SERVER": "ldap.example.org",
    "WBSPAWNER_LDAP_BIND_DN_TEMPLATE": "uid={username},ou=people,dc=example",
    "WBSPAWNER_LDAP_GROUP_DN_TEMPLATE": "cn={group},ou=groups,dc=example",
}


def settings(**env: str) -> Settings:
    return Settings.from_env({**LDAP, **env}, lambda path: None)


@pytest.mark.parametrize(
    ("env", "target"),
    [
        pytest.param({}, "http://127.0.0.1:8081", id="default-bind"),
        pytest.param(
            {"WBSPAWNER_HUB_BIND_URL": "http://127.0.0.1:41234"},
            "http://127.0.0.1:41234",
            id="bind-url",
        ),
        pytest.param(
            {"WBSPAWNER_HUB_BIND_URL": "http://0.0.0.0:8081"},
            "http://127.0.0.1:8081",
            id="wildcard-bind",
        ),
        pytest.param(
            {"WBSPAWNER_HUB_BIND_URL": "http://:8081/"},
            "http://127.0.0.1:8081",
            id="empty-host",
        ),
        pytest.param(
            {
                "WBSPAWNER_HUB_BIND_URL": "http://0.0.0.0:8081",
                "WBSPAWNER_HUB_CONNECT_URL": "http://hub:8081/",
            },
            "http://hub:8081",
            id="connect-url-first",
        ),
        pytest.param(
            {"WBSPAWNER_HUB_BIND_URL": "http://[::1]:8081"},
            "http://[::1]:8081",
            id="ipv6",
        ),
    ],
)
def test_default_target_is_the_hub(env: dict[str, str], target: str) -> None:
    assert hubconfig.proxy_default_target(settings(**env)) == target


def test_the_proxy_command_carries_it() -> None:
    c = Config()
    chosen = settings(
        WBSPAWNER_PROXY_COMMAND="/opt/chp",
        WBSPAWNER_HUB_BIND_URL="http://127.0.0.1:45678",
    )
    hubconfig.apply(c, chosen, load_profiles([REPO / "profiles"]))
    assert c.ConfigurableHTTPProxy.command == [
        "/opt/chp",
        "--default-target=http://127.0.0.1:45678",
    ]
    assert chosen.proxy_command == ("/opt/chp",)  # the settings are not changed
