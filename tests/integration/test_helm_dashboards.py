"""The Dask dashboards front in production: its objects and how the hub reaches it.

``helm-values/dask-dashboards.yaml`` (applied beside the jhub release; neither
chart can render extra objects) holds the front's Deployment, Service and
NetworkPolicy. Checked here with the releases rendered by the real charts and
helm: every object is strictly valid; the pod runs the front from the hub image
with the gateway token as a file and no Kubernetes credentials; its Service
carries the address the hub's configuration makes the ``dask-gateway`` service's
URL, so the hub's proxy routes ``/services/dask-gateway`` (dashboards included)
to it, and notebooks reach the gateway through it; and the network policies let
only the front reach the gateway's HTTP port.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.integration.helm_support import (
    HELM_VALUES,
    HUB_NAMESPACE,
    K8S,
    REPO,
    TRAEFIK_CLIENTS,
    connection_cases,
    hub_extra_config,
    one,
    render_gateway,
    render_hub,
    set_wbspawner_environ,
)
from wbspawner.gateway.config import PREFIX
from wbspawner.gateway.front import DashboardFront
from wbspawner.gateway.netpol import PodRef, allows, selects

pytestmark = pytest.mark.integration

FRONT = HELM_VALUES / "dask-dashboards.yaml"


@pytest.fixture(scope="module")
def front() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(FRONT.read_text(encoding="utf-8")) if d]
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def hub() -> list[dict[str, Any]]:
    return render_hub()


@pytest.fixture(scope="module")
def gateway() -> list[dict[str, Any]]:
    return render_gateway()


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_the_front_is_a_deployment_a_service_and_a_policy_in_jhub(
    front: dict[str, dict[str, Any]],
) -> None:
    assert sorted(front) == ["Deployment", "NetworkPolicy", "Service"]
    for doc in front.values():
        kubernetes_validate.validate(doc, K8S, strict=True)
        assert doc["metadata"]["namespace"] == HUB_NAMESPACE


def test_the_front_runs_from_the_hub_image_unprivileged(
    front: dict[str, dict[str, Any]], hub: list[dict[str, Any]]
) -> None:
    deployment = front["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["image"] == _container(one(hub, "Deployment", "hub"))["image"]
    module = container["command"][-1]
    assert container["command"] == ["python", "-m", module]
    assert module == "wbspawner.gateway.front"
    assert importlib.util.find_spec(module) is not None
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] >= 10000  # no user of the node (1000: ec2-user)
    assert pod["securityContext"]["fsGroup"] == sc["runAsGroup"]  # reads the token
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}, bound
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # One replica: a login's OAuth state lives in the front's memory.
    assert deployment["spec"]["replicas"] == 1


def test_the_front_reads_the_gateway_token_as_a_file(
    front: dict[str, dict[str, Any]],
    hub: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = front["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    env = _env(container)
    assert not [e for e in container["env"] if "valueFrom" in e]  # no secret vars
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "wbspawner-dask-gateway"
    path = env["WBSPAWNER_DASK_GATEWAY_API_TOKEN_FILE"]
    (item,) = secret["items"]
    assert path == f"{mount['mountPath']}/{item['path']}"
    # The hub reads the same Secret for the same service.
    hub_env = _env(_container(one(hub, "Deployment", "hub")))
    assert hub_env["WBSPAWNER_DASK_GATEWAY_API_TOKEN_FILE"] == path
    # The front starts with these settings (the token file as mounted).
    token = tmp_path / "token"
    token.write_text("t0ken\n", encoding="utf-8")
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    set_wbspawner_environ(
        monkeypatch, {**env, "WBSPAWNER_DASK_GATEWAY_API_TOKEN_FILE": str(token)}
    )
    settings = DashboardFront().settings_from_env()
    assert settings.api_token == "t0ken"
    assert settings.hub_api_url == "http://hub:8081/hub/api"
    assert settings.url == hub_env["WBSPAWNER_DASK_GATEWAY_URL"]


def _service_url(front: dict[str, dict[str, Any]]) -> str:
    service = front["Service"]
    (port,) = service["spec"]["ports"]
    return f"http://{service['metadata']['name']}:{port['port']}"


def test_the_service_selects_the_front_on_its_port(
    front: dict[str, dict[str, Any]],
) -> None:
    service = front["Service"]
    labels = front["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert selects({"matchLabels": service["spec"]["selector"]}, labels)
    (port,) = service["spec"]["ports"]
    (container_port,) = _container(front["Deployment"])["ports"]
    assert port["targetPort"] == container_port["name"]
    env = _env(_container(front["Deployment"]))
    # The front listens on the port of the URL the hub routes to.
    assert env["WBSPAWNER_DASK_GATEWAY_FRONT_URL"] == _service_url(front)
    assert urlsplit(_service_url(front)).port == container_port["containerPort"]


def test_the_hub_routes_the_gateway_prefix_to_the_front(
    front: dict[str, dict[str, Any]],
    hub: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = hub_extra_config(hub, tmp_path, monkeypatch)
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "dask-gateway"]
    # JupyterHub routes /services/<name>/ to the service URL: dashboards included.
    assert service["url"] == _service_url(front)
    assert "command" not in service  # the front runs beside the hub
    assert service["oauth_no_confirm"] is True
    env = c.KubeSpawner.environment
    assert env["DASK_GATEWAY__ADDRESS"] == _service_url(front) + PREFIX
    assert env["DASK_GATEWAY__PUBLIC_ADDRESS"] == PREFIX  # browsers: the hub's proxy
    assert env["DASK_GATEWAY__PROXY_ADDRESS"].endswith(":8786")


def _pods(
    front: dict[str, dict[str, Any]],
    hub: list[dict[str, Any]],
    gateway: list[dict[str, Any]],
) -> dict[str, PodRef]:
    out = {
        "front": PodRef(
            HUB_NAMESPACE, front["Deployment"]["spec"]["template"]["metadata"]["labels"]
        )
    }
    for name in ("hub", "proxy"):
        labels = one(hub, "Deployment", name)["spec"]["template"]["metadata"]
        out[name] = PodRef(HUB_NAMESPACE, labels["labels"])
    out["server"] = PodRef(
        HUB_NAMESPACE, {"app": "jupyterhub", "component": "singleuser-server"}
    )
    for doc in gateway:
        if doc["kind"] == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            out[labels["app.kubernetes.io/component"]] = PodRef("dask-gateway", labels)
    return out


CONNECTIONS = [
    # source, target, port, allowed
    ("proxy", "front", 8765, True),
    ("server", "front", 8765, True),
    ("hub", "front", 8765, True),
    ("traefik", "front", 8765, False),
    ("gateway", "front", 8765, False),
    *TRAEFIK_CLIENTS,
]


@pytest.mark.parametrize(
    ("source", "target", "port", "allowed"), connection_cases(CONNECTIONS)
)
def test_only_the_front_reaches_the_gateways_http_port(
    front: dict[str, dict[str, Any]],
    hub: list[dict[str, Any]],
    gateway: list[dict[str, Any]],
    source: str,
    target: str,
    port: int,
    allowed: bool,
) -> None:
    text = (HELM_VALUES / "dask-gateway-networkpolicy.yaml").read_text(encoding="utf-8")
    policies = [d for d in yaml.safe_load_all(text) if d]
    policies.append(front["NetworkPolicy"])
    pods = _pods(front, hub, gateway)
    assert allows(policies, pods[source], pods[target], port) is allowed


def test_the_hub_admits_the_front_and_user_servers_may_reach_it(
    front: dict[str, dict[str, Any]], hub: list[dict[str, Any]]
) -> None:
    labels = front["Deployment"]["spec"]["template"]["metadata"]["labels"]
    hub_policy = one(hub, "NetworkPolicy", "hub")
    peers = [p for r in hub_policy["spec"]["ingress"] for p in r.get("from", [])]
    # z2jh's own rule for pods labelled hub.jupyter.org/network-access-hub.
    assert any(
        "namespaceSelector" not in p and selects(p["podSelector"], labels)
        for p in peers
    )
    servers = one(hub, "NetworkPolicy", "singleuser")
    rules = [
        r
        for r in servers["spec"]["egress"]
        if any(
            "podSelector" in p and selects(p["podSelector"], labels)
            for p in r.get("to", [])
        )
    ]
    assert [[p["port"] for p in r["ports"]] for r in rules] == [[8765]]


def test_deploy_guide_applies_the_front() -> None:
    guide = (REPO / "docs" / "deploy-eks.md").read_text(encoding="utf-8")
    assert f"kubectl apply -f {FRONT.relative_to(REPO)}" in guide
