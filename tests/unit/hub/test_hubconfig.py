"""hubconfig.apply sets the hub, authenticator and spawner traits; the config file."""

from __future__ import annotations

import copy
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from tests.paths import REPO
from wbspawner.gateway.config import GatewaySettingsError
from wbspawner.hub import hubconfig
from wbspawner.hub.ldap import GroupMapper
from wbspawner.hub.settings import Settings
from wbspawner.model import Profiles

ENV = {
    "WBSPAWNER_LDAP_SERVER": "ldap.example.org",
    "WBSPAWNER_LDAP_BIND_DN_TEMPLATE": "uid={username},ou=people,dc=example,dc=org",
    "WBSPAWNER_LDAP_GROUP_DN_TEMPLATE": "cn={group},ou=groups,dc=example,dc=org",
    "WBSPAWNER_STATE_DIR": "/srv/hub",
    "WBSPAWNER_NAMESPACE": "jhub",
}


def applied(profiles: Profiles, **env: str) -> Config:
    c = Config()
    settings = Settings.from_env({**ENV, **env}, lambda path: None)
    hubconfig.apply(c, settings, profiles)
    return c


def test_hub_and_proxy(profiles: Profiles) -> None:
    c = applied(profiles, WBSPAWNER_PUBLIC_URL="http://127.0.0.1:8000")
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert c.JupyterHub.spawner_class == "workbench"
    assert (
        c.JupyterHub.authenticator_class
        == "wbspawner.hub.login.WorkbenchLDAPAuthenticator"
    )
    assert c.JupyterHub.db_url == "sqlite:////srv/hub/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == "/srv/hub/jupyterhub_cookie_secret"
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert c.ConfigurableHTTPProxy.command == [
        "configurable-http-proxy",
        "--default-target=http://127.0.0.1:8081",
    ]
    assert "hub_connect_url" not in c.JupyterHub


def test_ldap_login_with_groups_and_auth_state(profiles: Profiles) -> None:
    c = applied(profiles)
    assert c.LDAPAuthenticator.server_address == "ldap.example.org"
    assert c.LDAPAuthenticator.tls_strategy == "before_bind"
    assert c.LDAPAuthenticator.allowed_groups == [
        "cn=jupyter-admins,ou=groups,dc=example,dc=org",
        "cn=jupyter-users,ou=groups,dc=example,dc=org",
        "cn=gpu-users,ou=groups,dc=example,dc=org",
    ]
    assert c.Authenticator.enable_auth_state is True
    assert c.Authenticator.manage_groups is True
    assert c.Authenticator.allow_all is False
    assert isinstance(c.Authenticator.post_auth_hook, GroupMapper)


def test_spawner_homes_and_timeouts(profiles: Profiles) -> None:
    c = applied(profiles, WBSPAWNER_START_TIMEOUT="300")
    assert c.KubeSpawner.namespace == "jhub"
    assert c.KubeSpawner.start_timeout == 300
    assert c.KubeSpawner.pvc_name_template == "home-{username}"
    assert c.KubeSpawner.storage_pvc_ensure is True
    assert c.KubeSpawner.delete_pvc is False
    assert c.KubeSpawner.storage_class == "wbspawner-home"
    home, pages = c.JupyterHub.template_paths
    assert (Path(home) / "home.html").is_file()
    assert (Path(pages) / "page.html").is_file()  # the Services menu's entries
    assert "wb_spending" in c.JupyterHub.template_vars
    assert c.KubeSpawner.lifecycle_hooks == {
        "preStop": {"exec": {"command": ["python", "-m", "wb_lab_notices.stopping"]}}
    }
    assert "cmd" not in c.KubeSpawner
    assert "args" not in c.KubeSpawner
    source = c.WorkbenchSpawner.profiles_source()
    assert source.current() is profiles
    assert source.last_error is None
    assert c.WorkbenchSpawner.aws_endpoint_url is None  # AWS itself


def test_the_hubs_own_aws_calls_may_go_to_another_endpoint(profiles: Profiles) -> None:
    """A home's automatic move calls EC2 and Auto Scaling (moto in the demo)."""
    c = applied(profiles, WBSPAWNER_AWS_ENDPOINT_URL="http://127.0.0.1:5000")
    assert c.WorkbenchSpawner.aws_endpoint_url == "http://127.0.0.1:5000"


def test_local_mode_runs_the_venvs_singleuser(profiles: Profiles) -> None:
    c = applied(
        profiles,
        WBSPAWNER_MODE="local",
        WBSPAWNER_SINGLEUSER_CMD="/v/bin/jupyterhub-singleuser",
        WBSPAWNER_K8S_API_HOST="http://127.0.0.1:7000",
    )
    assert c.KubeSpawner.cmd == ["/v/bin/jupyterhub-singleuser"]
    assert c.KubeSpawner.args == ["--ServerApp.allow_root=True"]
    assert c.KubeSpawner.k8s_api_host == "http://127.0.0.1:7000"


def test_given_source_is_what_spawners_ask(profiles: Profiles) -> None:
    class Source:
        last_error = None

        def current(self) -> Profiles:
            return profiles

    source = Source()
    c = Config()
    settings = Settings.from_env(ENV, lambda path: None)
    hubconfig.apply(c, settings, profiles, source=source)
    assert c.WorkbenchSpawner.profiles_source() is source
    # traitlets deep-copies configured values into each spawner; the callable
    # must survive that and still give the one shared source.
    assert copy.deepcopy(c.WorkbenchSpawner.profiles_source)() is source


def test_apply_does_not_mutate_settings_lists(profiles: Profiles) -> None:
    settings = Settings.from_env(ENV, lambda path: None)
    c = Config()
    hubconfig.apply(c, settings, profiles)
    c.ConfigurableHTTPProxy.command.append("--extra")
    c.LDAPAuthenticator.allowed_groups.append("cn=x")
    assert settings.proxy_command == ("configurable-http-proxy",)
    assert Config() != c
    again = Config()
    hubconfig.apply(again, settings, profiles)
    assert "cn=x" not in again.LDAPAuthenticator.allowed_groups


def test_every_workbench_trait_has_help() -> None:
    from wbspawner.hub.spawner import WorkbenchSpawner

    own = {
        name: trait
        for name, trait in WorkbenchSpawner.class_own_traits(config=True).items()
    }
    assert set(own) >= {"profiles_source", "warm_status_file", "capacity_grace_seconds"}
    assert all(trait.help.strip() for trait in own.values())


def _record(exc: BaseException, logger: str = "JupyterHub") -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        return logging.LogRecord(
            logger, logging.ERROR, __file__, 1, "Failed", (), sys.exc_info()
        )


def test_filter_drops_traceback_of_expected_spawn_errors() -> None:
    from jupyterhub.spawner import SpawnException

    log_filter = hubconfig.ExpectedSpawnErrorFilter()
    expected = _record(SpawnException("no such size", reason="options"))
    unexpected = _record(KeyError("bug"))
    assert log_filter.filter(expected) and log_filter.filter(unexpected)
    assert expected.exc_info is None
    assert unexpected.exc_info is not None


def test_filter_drops_never_retrieved_refusals_only() -> None:
    from jupyterhub.spawner import SpawnException

    log_filter = hubconfig.ExpectedSpawnErrorFilter()
    refusal = _record(SpawnException("no capacity", reason="capacity"), "asyncio")
    bug = _record(RuntimeError("bug"), "asyncio")
    assert log_filter.filter(refusal) is False
    assert log_filter.filter(bug) is True
    assert bug.exc_info is not None


def test_filter_is_installed_once() -> None:
    hubconfig.quiet_expected_spawn_errors()
    hubconfig.quiet_expected_spawn_errors()
    for name in hubconfig.LOGGERS:
        filters = logging.getLogger(name).filters
        assert (
            sum(isinstance(f, hubconfig.ExpectedSpawnErrorFilter) for f in filters) == 1
        )


def test_jupyterhub_config_file_applies_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WBSPAWNER_PROFILES", str(REPO / "profiles"))
    monkeypatch.setenv("WBSPAWNER_STATE_DIR", str(tmp_path))
    c = Config()
    namespace: dict[str, Any] = {"get_config": lambda: c, "__file__": "x"}
    code = (REPO / "jupyterhub_config.py").read_text(encoding="utf-8")
    assert len(code.splitlines()) <= 60
    exec(compile(code, "jupyterhub_config.py", "exec"), namespace)
    assert c.JupyterHub.spawner_class == "workbench"
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/jupyterhub.sqlite"
    source = c.WorkbenchSpawner.profiles_source()
    assert [s.slug for s in source.current().sizes][:2] == ["small", "medium"]
    assert os.environ["WBSPAWNER_STATE_DIR"] == str(tmp_path)


def test_no_gateway_wiring_without_a_gateway(profiles: Profiles) -> None:
    c = applied(profiles)
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    assert all(s.get("name") != "dask-gateway" for s in services)


def test_gateway_wiring_from_the_environment(profiles: Profiles) -> None:
    c = applied(
        profiles,
        WBSPAWNER_PUBLIC_URL="http://127.0.0.1:8000",
        WBSPAWNER_DASK_GATEWAY_URL="http://127.0.0.1:8600",
        WBSPAWNER_DASK_GATEWAY_FRONT_URL="http://dask-dashboards:8765",
        WBSPAWNER_DASK_GATEWAY_PROXY_ADDRESS="gateway://127.0.0.1:8601",
        WBSPAWNER_DASK_GATEWAY_API_TOKEN="t" * 32,
    )
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "dask-gateway"]
    # The hub's proxy sends the prefix to the dashboards front, which runs
    # beside the hub in production (an external service).
    assert service["url"] == "http://dask-dashboards:8765"
    assert "command" not in service
    assert service["oauth_no_confirm"] is True
    assert "access:services!service=dask-gateway" in c.KubeSpawner.server_token_scopes
    env = c.KubeSpawner.environment
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://127.0.0.1:8601"
    assert env["DASK_GATEWAY__ADDRESS"].endswith("/services/dask-gateway")


def test_a_gateway_without_its_dashboards_front_stops_the_hub(
    profiles: Profiles,
) -> None:
    with pytest.raises(GatewaySettingsError, match="dashboard is open to anyone"):
        applied(profiles, WBSPAWNER_DASK_GATEWAY_URL="http://127.0.0.1:8600")


GATEWAY = {
    "WBSPAWNER_DASK_GATEWAY_URL": "http://127.0.0.1:8600",
    "WBSPAWNER_DASK_GATEWAY_FRONT_URL": "http://127.0.0.1:8602",
    "WBSPAWNER_DASK_GATEWAY_PROXY_ADDRESS": "gateway://127.0.0.1:8601",
    "WBSPAWNER_DASK_GATEWAY_API_TOKEN": "t" * 32,
}


@pytest.mark.parametrize(
    ("env", "namespace"),
    [
        pytest.param({}, None, id="no-gateway"),
        pytest.param(GATEWAY, "dask-gateway", id="gateway-default"),
        pytest.param(
            {**GATEWAY, "WBSPAWNER_DASK_NAMESPACE": "dask"}, "dask", id="gateway-named"
        ),
        pytest.param(
            {**GATEWAY, "WBSPAWNER_MODE": "local"}, None, id="local-dask-processes"
        ),
    ],
)
def test_dask_network_policies_namespace(
    profiles: Profiles, env: dict[str, str], namespace: str | None
) -> None:
    c = applied(profiles, **env)
    assert c.WorkbenchSpawner.dask_namespace == namespace


def test_accounting_database_defaults_to_the_state_dir(profiles: Profiles) -> None:
    c = applied(profiles)
    assert c.WorkbenchSpawner.cost_db_url == "sqlite:////srv/hub/wbspawner-costs.sqlite"
    c = applied(profiles, WBSPAWNER_COST_DB_URL="postgresql://db/costs")
    assert c.WorkbenchSpawner.cost_db_url == "postgresql://db/costs"


def test_hub_database_defaults_to_the_state_dir(profiles: Profiles) -> None:
    url = "postgresql+psycopg://hub:pw@db.example.org/jupyterhub"
    c = applied(profiles, WBSPAWNER_HUB_DB_URL=url)
    assert c.JupyterHub.db_url == url
    # the SQLite default stays where the chart's volume is
    c = applied(profiles, WBSPAWNER_HUB_DB_URL=" ")
    assert c.JupyterHub.db_url == "sqlite:////srv/hub/jupyterhub.sqlite"


def test_no_warmer_without_its_url(profiles: Profiles) -> None:
    c = applied(profiles)
    assert "services" not in c.JupyterHub and "load_roles" not in c.JupyterHub


def test_warmer_service_and_roles(profiles: Profiles) -> None:
    url = "http://127.0.0.1:10101"
    c = Config()
    settings = Settings.from_env(
        {**ENV, **GATEWAY, "WBSPAWNER_WARMER_URL": url}, lambda path: None
    )
    environ = {"KUBECONFIG": "/k", "HOME": "/root", "AWS_REGION": "us-east-1"}
    hubconfig.apply(c, settings, profiles, environ=environ)
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["warmer", "dask-gateway"]  # both, neither replacing the other
    warmer = c.JupyterHub.services[0]
    assert warmer["url"] == url
    assert warmer["command"][1:3] == ["-m", "wbspawner.warmer"]
    # what it remembers outlives it: in the hub's state directory
    assert "--WarmerApp.memory_file=/srv/hub/warmer-memory.json" in warmer["command"]
    assert warmer["environment"] == {
        "KUBECONFIG": "/k",
        "AWS_REGION": "us-east-1",
        "WBSPAWNER_COST_DB_URL": "sqlite:////srv/hub/wbspawner-costs.sqlite",
    }
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["warmer-admins"]["groups"] == list(profiles.admin_groups)
    assert roles["warmer-admins"]["scopes"] == ["access:services!service=warmer"]
    assert set(roles["warmer-service"]["scopes"]) == {
        "list:users",
        "read:users:name",
        "read:servers",
    }


def test_no_culler_without_its_interval(profiles: Profiles) -> None:
    c = applied(profiles)
    assert "services" not in c.JupyterHub


def test_culler_service_and_least_privilege_role(profiles: Profiles) -> None:
    c = Config()
    env = {
        **ENV,
        "WBSPAWNER_CULLER_INTERVAL": "5",
        "WBSPAWNER_WARMER_URL": "http://127.0.0.1:1",
    }
    hub_env = {"KUBECONFIG": "/k/config", "AWS_SECRET_ACCESS_KEY": "x", "HOME": "/h"}
    settings = Settings.from_env(env, lambda path: None)
    hubconfig.apply(c, settings, profiles, environ=hub_env)
    assert [s["name"] for s in c.JupyterHub.services] == ["warmer", "culler"]
    culler = c.JupyterHub.services[1]
    assert "url" not in culler  # no page: nothing to route
    assert culler["command"][1:3] == ["-m", "wbspawner.culler"]
    assert "--interval=5" in culler["command"]
    assert "--proxy-url=http://127.0.0.1:8000" in culler["command"]
    # its sweep of orphan pods: the namespace, and only the Kubernetes variables
    assert f"--namespace={settings.namespace}" in culler["command"]
    assert culler["environment"]["KUBECONFIG"] == "/k/config"
    assert not {"AWS_SECRET_ACCESS_KEY", "HOME"} & set(culler["environment"])
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "warmer-service" in roles
    assert roles["culler-service"]["services"] == ["culler"]
    assert set(roles["culler-service"]["scopes"]) == {
        "list:users",
        "read:users:name",
        "read:users:activity",
        "read:servers",
        "access:servers",
        "delete:servers",
    }


def test_culler_proxy_url_may_be_a_service_name(profiles: Profiles) -> None:
    c = applied(
        profiles,
        WBSPAWNER_CULLER_INTERVAL="60",
        WBSPAWNER_CULLER_PROXY_URL="http://proxy-public",
    )
    assert "--proxy-url=http://proxy-public" in c.JupyterHub.services[0]["command"]


def test_no_ssh_service_unless_asked(profiles: Profiles) -> None:
    c = applied(profiles)
    assert "services" not in c.JupyterHub


def test_ssh_service_started_by_the_hub_with_its_role(profiles: Profiles) -> None:
    c = Config()
    env = {**ENV, "WBSPAWNER_SSH_PORT": "2222", "WBSPAWNER_PUBLIC_URL": "http://:8000"}
    environ = {**env, "WBSPAWNER_LDAP_TLS": "starttls", "AWS_SECRET_ACCESS_KEY": "x"}
    hubconfig.apply(
        c, Settings.from_env(env, lambda path: None), profiles, environ=environ
    )
    (ssh,) = c.JupyterHub.services
    assert ssh["name"] == "ssh" and "url" not in ssh
    assert ssh["command"][1:3] == ["-m", "wbspawner.ssh"]
    assert "--port=2222" in ssh["command"]
    assert "--host-key=/srv/hub/ssh_host_ed25519_key" in ssh["command"]
    assert "--proxy-url=http://127.0.0.1:8000" in ssh["command"]
    # the directory's settings, and nothing else of the hub's environment
    assert set(ssh["environment"]) == {
        "WBSPAWNER_LDAP_SERVER",
        "WBSPAWNER_LDAP_BIND_DN_TEMPLATE",
        "WBSPAWNER_LDAP_GROUP_DN_TEMPLATE",
        "WBSPAWNER_LDAP_TLS",
    }
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == ["ssh"]
    assert set(role["scopes"]) == {
        "read:users:name",
        "read:servers",
        "servers",
        "access:servers",
    }


def test_ssh_service_of_its_own_is_only_registered(profiles: Profiles) -> None:
    c = Config()
    env = {**ENV, "WBSPAWNER_SSH_API_TOKEN_FILE": "/etc/wbspawner/ssh/token"}
    settings = Settings.from_env(env, lambda path: "the-token\n")
    hubconfig.apply(c, settings, profiles, environ={})
    assert c.JupyterHub.services == [{"name": "ssh", "api_token": "the-token"}]
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["ssh-service"]
