"""The hub's side of the gateway: the service, its token and scopes."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping

from traitlets.config import Config

from wbspawner.gateway import config as gwconfig
from wbspawner.hub import gateway_service as gwhub


def test_no_wiring_without_a_gateway_url() -> None:
    assert gwhub.hub_wiring(gwconfig.GatewaySettings(), "http://hub") is None
    assert gwhub.hub_wiring(None, "http://hub") is None
    c = Config()
    gwhub.apply_hub_wiring(c, None)
    assert "services" not in c.JupyterHub


def test_hub_wiring_merges_into_existing_config(gateway_env: Mapping[str, str]) -> None:
    settings = gwconfig.GatewaySettings.from_env(gateway_env)
    wiring = gwhub.hub_wiring(settings, "http://:8100")
    c = Config()
    c.JupyterHub.services = [{"name": "warmer", "api_token": "w"}]
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "x"]}]
    c.KubeSpawner.environment = {"A": "1"}
    gwhub.apply_hub_wiring(c, wiring, "KubeSpawner")
    gwhub.apply_hub_wiring(c, wiring, "KubeSpawner")  # idempotent
    services = {s["name"]: s for s in c.JupyterHub.services}
    gateway = services["dask-gateway"]
    # The hub's proxy sends the prefix to the dashboards front, which the hub
    # runs itself in local mode and which passes on to the gateway's proxy.
    assert gateway["url"] == "http://127.0.0.1:9002"
    assert gateway["command"] == [sys.executable, "-m", "wbspawner.gateway.front"]
    assert gateway["environment"] == {
        "WBSPAWNER_MODE": "local",
        "WBSPAWNER_DASK_GATEWAY_URL": "http://127.0.0.1:9000",
        "WBSPAWNER_DASK_GATEWAY_FRONT_URL": "http://127.0.0.1:9002",
    }
    assert gateway["api_token"] == "s3cret-token"
    assert gateway["display"] is False and gateway["timeout"] <= 10
    assert gateway["oauth_no_confirm"] is True
    assert services["warmer"]["api_token"] == "w"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["user"]["scopes"] == [
        "self",
        "x",
        "access:services!service=dask-gateway",
    ]
    assert roles["dask-gateway-reaper"]["services"] == ["dask-gateway"]
    assert set(roles["dask-gateway-reaper"]["scopes"]) == {"list:users", "read:servers"}
    assert c.KubeSpawner.server_token_scopes == [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=dask-gateway",
    ]
    env = c.KubeSpawner.environment
    assert env["A"] == "1"
    assert env["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8100/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://127.0.0.1:9001"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    image_of = env["DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE"]
    assert image_of(type("S", (), {"image": "img:1"})()) == "img:1"


def test_existing_service_token_is_kept_and_callable_scopes_extended(
    gateway_env: Mapping[str, str],
) -> None:
    settings = dataclasses.replace(
        gwconfig.GatewaySettings.from_env(gateway_env), api_token=None
    )
    c = Config()
    c.JupyterHub.services = [{"name": "dask-gateway", "api_token": "from-chart"}]
    c.Spawner.server_token_scopes = lambda spawner: ["read:users:name!user"]
    gwhub.apply_hub_wiring(c, gwhub.hub_wiring(settings, "http://hub.example.org"))
    assert c.JupyterHub.services[0]["api_token"] == "from-chart"
    assert c.Spawner.server_token_scopes(None) == [
        "read:users:name!user",
        "access:services!service=dask-gateway",
    ]
    env = c.Spawner.environment
    assert env["DASK_GATEWAY__ADDRESS"] == (
        "http://hub.example.org/services/dask-gateway"
    )


def test_the_hub_names_itself_as_the_fronts_parent(
    gateway_env: Mapping[str, str],
) -> None:
    wiring = gwhub.hub_wiring(
        gwconfig.GatewaySettings.from_env(gateway_env), "http://:8100", 4242
    )
    assert wiring is not None
    assert wiring.service["command"][-1] == "--DashboardFront.parent_pid=4242"
