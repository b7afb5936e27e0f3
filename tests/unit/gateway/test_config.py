"""The gateway settings from the environment and the configuration they give."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from traitlets.config import Config

from wbspawner.gateway import config as gwconfig
from wbspawner.model import Profiles


def test_settings_from_env(gateway_env: Mapping[str, str]) -> None:
    settings = gwconfig.GatewaySettings.from_env(gateway_env)
    assert settings.mode == "local"
    assert settings.profiles_paths == ("/p1", "/p2")
    assert settings.api_token == "s3cret-token"
    assert settings.hub_api_url == "http://127.0.0.1:8081/hub/api"
    assert settings.url == "http://127.0.0.1:9000"
    assert settings.front_url == "http://127.0.0.1:9002"
    assert settings.extra_path and Path(settings.extra_path[0], "python").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"WBSPAWNER_MODE": "cloud"}, "production or local", id="mode"),
        pytest.param(
            {"WBSPAWNER_DASK_GATEWAY_STATE_DIR": "/tmp/x"},
            "needs DASK_GATEWAY_ENCRYPT_KEYS",
            id="state-dir-without-keys",
        ),
        pytest.param(
            {"WBSPAWNER_DASK_GATEWAY_AUTH": "simple"}, "needs .*PASSWORD", id="simple"
        ),
        pytest.param(
            {"WBSPAWNER_DASK_GATEWAY_REAP_INTERVAL": "-1"}, "seconds >= 0", id="reap"
        ),
        pytest.param(
            {"WBSPAWNER_DASK_GATEWAY_URL": "http://127.0.0.1:9000"},
            "FRONT_URL is not: without the dashboards front",
            id="gateway-without-front",
        ),
    ],
)
def test_settings_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(gwconfig.GatewaySettingsError, match=message):
        gwconfig.GatewaySettings.from_env(env)


def test_inline_profiles_become_files(tmp_path: Path) -> None:
    settings = gwconfig.GatewaySettings()
    env = {"WBSPAWNER_PROFILES_INLINE_00_GROUPS": "groups: {}\n"}
    out = gwconfig.inline_profiles(settings, env, tmp_path / "p")
    assert out.profiles_paths == (str(tmp_path / "p"),)
    assert (tmp_path / "p" / "00_groups.yaml").read_text() == "groups: {}\n"
    assert gwconfig.inline_profiles(settings, {}, tmp_path / "q") is settings


@pytest.mark.parametrize("mode", ["local", "production"])
def test_configure_sets_backend_commands_and_auth(
    gateway_env: Mapping[str, str], profiles: Profiles, mode: str
) -> None:
    c = Config()
    settings = gwconfig.GatewaySettings.from_env(
        {**gateway_env, "WBSPAWNER_MODE": mode}
    )
    gwconfig.configure(c, settings, profiles)
    backend = c.DaskGateway.backend_class
    assert backend.startswith("wbspawner.gateway.backends.Workbench")
    assert not backend.endswith(".LocalBackend")  # chowns / as root in 2026.3.0
    assert ("UnsafeLocal" in backend) is (mode == "local")
    assert c.ClusterConfig.scheduler_cmd == ["dask", "scheduler"]
    assert c.ClusterConfig.worker_cmd == ["dask", "worker"]
    assert c.ClusterConfig.idle_timeout == profiles.dask.idle_timeout_s
    assert c.JupyterHubAuthenticator.jupyterhub_service_name == "dask-gateway"
    assert c.WorkbenchBackendMixin.hub_api_token == "s3cret-token"
    assert ("prefix" in c.Proxy) is (mode == "local")
