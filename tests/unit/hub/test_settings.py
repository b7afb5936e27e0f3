"""Settings from the environment: defaults, parsing, and the TLS rule."""

from __future__ import annotations

import os

import pytest

from wbspawner.hub.settings import SERVICE_ACCOUNT_NAMESPACE, Settings, SettingsError

LDAP = {
    "WBSPAWNER_LDAP_SERVER": "ldap.example.org",
    "WBSPAWNER_LDAP_BIND_DN_TEMPLATE": "uid={username},ou=people,dc=example,dc=org",
    "WBSPAWNER_LDAP_GROUP_DN_TEMPLATE": "cn={group},ou=groups,dc=example,dc=org",
}


def no_files(path: str) -> str | None:
    return None


def test_production_defaults() -> None:
    s = Settings.from_env(LDAP, no_files)
    assert s.mode == "production"
    assert not s.is_local
    assert s.profiles_paths == ("/etc/wbspawner/profiles",)
    assert s.namespace == "jupyterhub"
    assert s.start_timeout == 900
    assert s.profiles_check_seconds == 5.0
    assert s.singleuser_cmd is None
    assert s.singleuser_args == ()
    assert s.ldap.tls == "starttls"
    assert s.ldap.port == 389
    assert s.ldap.group_dn("gpu-users") == "cn=gpu-users,ou=groups,dc=example,dc=org"


def test_everything_from_the_environment() -> None:
    env = {
        **LDAP,
        "WBSPAWNER_MODE": "local",
        "WBSPAWNER_PROFILES": os.pathsep.join(["/a", "/b"]),
        "WBSPAWNER_CATALOG": "/c.json",
        "WBSPAWNER_STATE_DIR": "/state",
        "WBSPAWNER_PUBLIC_URL": "http://127.0.0.1:8000",
        "WBSPAWNER_HUB_BIND_URL": "http://127.0.0.1:8081",
        "WBSPAWNER_HUB_CONNECT_URL": "http://127.0.0.1:8081",
        "WBSPAWNER_PROXY_API_URL": "http://127.0.0.1:8001",
        "WBSPAWNER_PROXY_COMMAND": "/x/chp",
        "WBSPAWNER_NAMESPACE": "jhub",
        "WBSPAWNER_K8S_API_HOST": "http://127.0.0.1:6443",
        "WBSPAWNER_START_TIMEOUT": "60",
        "WBSPAWNER_PROFILES_CHECK_SECONDS": "0.5",
        "WBSPAWNER_SINGLEUSER_CMD": "/venv/bin/jupyterhub-singleuser",
        "WBSPAWNER_WARM_STATUS_FILE": "/w.json",
        "WBSPAWNER_SPOT_PRICES_FILE": "/s.json",
        "WBSPAWNER_LDAP_SERVER": "127.0.0.1",
        "WBSPAWNER_LDAP_PORT": "3890",
        "WBSPAWNER_LDAP_TLS": "insecure",
    }
    s = Settings.from_env(env, no_files)
    assert s.is_local
    assert s.profiles_paths == ("/a", "/b")
    assert s.catalog_path == "/c.json"
    assert s.proxy_command == ("/x/chp",)
    assert s.namespace == "jhub"
    assert s.k8s_api_host == "http://127.0.0.1:6443"
    assert s.start_timeout == 60
    assert s.profiles_check_seconds == 0.5
    assert s.singleuser_cmd == ("/venv/bin/jupyterhub-singleuser",)
    assert s.singleuser_args == ("--ServerApp.allow_root=True",)
    assert (s.ldap.server, s.ldap.port, s.ldap.tls) == ("127.0.0.1", 3890, "insecure")


def test_the_wait_times_file_is_beside_the_warm_status_unless_set() -> None:
    warm = {**LDAP, "WBSPAWNER_WARM_STATUS_FILE": "/srv/hub/warm-status.json"}
    assert Settings.from_env(warm, no_files).wait_times_file == (
        "/srv/hub/wait-times.json"
    )
    own = {**warm, "WBSPAWNER_WAIT_TIMES_FILE": "/x/waits.json"}
    assert Settings.from_env(own, no_files).wait_times_file == "/x/waits.json"
    assert Settings.from_env(LDAP, no_files).wait_times_file is None


def test_local_mode_finds_singleuser_beside_python() -> None:
    s = Settings.from_env({**LDAP, "WBSPAWNER_MODE": "local"}, no_files)
    assert s.singleuser_cmd is not None
    assert s.singleuser_cmd[0].endswith("jupyterhub-singleuser")


def test_namespace_from_the_service_account_mount() -> None:
    files = {SERVICE_ACCOUNT_NAMESPACE: "hub-ns\n"}
    assert Settings.from_env(LDAP, files.get).namespace == "hub-ns"


def test_ldaps_defaults_to_port_636_and_reads_password_file() -> None:
    env = {
        **LDAP,
        "WBSPAWNER_LDAP_TLS": "ldaps",
        "WBSPAWNER_LDAP_LOOKUP_USER": "cn=svc,dc=example,dc=org",
        "WBSPAWNER_LDAP_BIND_PASSWORD_FILE": "/run/secrets/ldap",
        "WBSPAWNER_LDAP_CA_FILE": "/etc/ssl/ldap-ca.pem",
    }
    s = Settings.from_env(env, {"/run/secrets/ldap": "s3cret\n"}.get)
    assert s.ldap.port == 636
    assert s.ldap.lookup_password == "s3cret"
    assert s.ldap.ca_file == "/etc/ssl/ldap-ca.pem"


PG = "postgresql+psycopg://hub:pw@db.example.org:5432/{}"


def test_database_urls_default_to_sqlite_in_the_state_dir() -> None:
    s = Settings.from_env({**LDAP, "WBSPAWNER_STATE_DIR": "/srv/hub"}, no_files)
    assert s.hub_db == "sqlite:////srv/hub/jupyterhub.sqlite"
    assert s.cost_db == "sqlite:////srv/hub/wbspawner-costs.sqlite"


def test_database_urls_from_variables() -> None:
    env = {
        **LDAP,
        "WBSPAWNER_HUB_DB_URL": PG.format("jupyterhub"),
        "WBSPAWNER_COST_DB_URL": PG.format("costs"),
    }
    s = Settings.from_env(env, no_files)
    assert (s.hub_db, s.cost_db) == (PG.format("jupyterhub"), PG.format("costs"))


def test_database_urls_from_mounted_secret_files() -> None:
    """The URLs carry the password: a Secret mounted as files holds them."""
    env = {
        **LDAP,
        "WBSPAWNER_HUB_DB_URL_FILE": "/etc/wbspawner/db/hub-url",
        "WBSPAWNER_COST_DB_URL_FILE": "/etc/wbspawner/db/cost-url",
    }
    files = {
        "/etc/wbspawner/db/hub-url": PG.format("jupyterhub") + "\n",
        "/etc/wbspawner/db/cost-url": PG.format("costs") + "\n",
    }
    s = Settings.from_env(env, files.get)
    assert (s.hub_db, s.cost_db) == (PG.format("jupyterhub"), PG.format("costs"))


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        pytest.param(
            {"WBSPAWNER_HUB_DB_URL_FILE": "/missing"},
            "HUB_DB_URL_FILE '/missing' cannot be read",
            id="missing-hub-db-url-file",
        ),
        pytest.param(
            {
                "WBSPAWNER_COST_DB_URL": PG.format("costs"),
                "WBSPAWNER_COST_DB_URL_FILE": "/etc/wbspawner/db/cost-url",
            },
            "set WBSPAWNER_COST_DB_URL or WBSPAWNER_COST_DB_URL_FILE, not both",
            id="cost-db-url-twice",
        ),
        pytest.param(
            {"WBSPAWNER_LDAP_TLS": "insecure"},
            "LDAP_TLS=insecure is only allowed with WBSPAWNER_MODE=local",
            id="insecure-in-production",
        ),
        pytest.param(
            {"WBSPAWNER_LDAP_TLS": "insecure", "WBSPAWNER_MODE": "local"},
            "loopback interface",
            id="insecure-to-remote-server",
        ),
        pytest.param(
            {"WBSPAWNER_LDAP_TLS": "tls1.0"}, "must be one of", id="unknown-tls"
        ),
        pytest.param({"WBSPAWNER_MODE": "cloud"}, "MODE must be one of", id="mode"),
        pytest.param(
            {"WBSPAWNER_START_TIMEOUT": "soon"}, "must be a whole number", id="nan"
        ),
        pytest.param(
            {"WBSPAWNER_START_TIMEOUT": "0"}, "must be positive", id="zero-timeout"
        ),
        pytest.param(
            {"WBSPAWNER_PROFILES_CHECK_SECONDS": "-1"},
            "must not be negative",
            id="negative-interval",
        ),
        pytest.param(
            {"WBSPAWNER_LDAP_BIND_PASSWORD_FILE": "/missing"},
            "cannot be read",
            id="missing-password-file",
        ),
    ],
)
def test_bad_settings_are_refused(extra: dict[str, str], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        Settings.from_env({**LDAP, **extra}, no_files)


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param("WBSPAWNER_LDAP_SERVER", id="server"),
        pytest.param("WBSPAWNER_LDAP_GROUP_DN_TEMPLATE", id="group-template"),
        pytest.param("WBSPAWNER_LDAP_BIND_DN_TEMPLATE", id="bind-template"),
    ],
)
def test_required_ldap_settings(missing: str) -> None:
    env = {k: v for k, v in LDAP.items() if k != missing}
    with pytest.raises(SettingsError, match="WBSPAWNER_LDAP_"):
        Settings.from_env(env, no_files)


def test_reads_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in LDAP.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WBSPAWNER_NAMESPACE", "first")
    assert Settings.from_env(os.environ).namespace == "first"
    monkeypatch.setenv("WBSPAWNER_NAMESPACE", "second")
    assert Settings.from_env(os.environ).namespace == "second"


def test_no_ssh_service_unless_asked() -> None:
    settings = Settings.from_env(LDAP, lambda path: None)
    assert (settings.ssh_port, settings.ssh_api_token) == (None, None)


def test_ssh_port_host_key_and_token_file() -> None:
    env = {
        **LDAP,
        "WBSPAWNER_SSH_PORT": "2222",
        "WBSPAWNER_SSH_HOST_KEY_FILE": "/k",
        "WBSPAWNER_SSH_API_TOKEN_FILE": "/etc/wbspawner/ssh/token",
    }
    settings = Settings.from_env(env, {"/etc/wbspawner/ssh/token": "t0k\n"}.get)
    assert settings.ssh_port == 2222
    assert settings.ssh_host_key_file == "/k"
    assert settings.ssh_api_token == "t0k"


def test_an_unreadable_ssh_token_file_stops_the_hub() -> None:
    env = {**LDAP, "WBSPAWNER_SSH_API_TOKEN_FILE": "/missing"}
    with pytest.raises(SettingsError, match="SSH_API_TOKEN_FILE '/missing' cannot be"):
        Settings.from_env(env, lambda path: None)
