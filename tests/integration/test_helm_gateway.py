"""helm-values/dask-gateway.yaml rendered by the real chart with the real helm.

Every rendered object is checked: Kubernetes kinds with kubernetes-validate
(strict), the chart's CustomResourceDefinitions too, and its Traefik objects
against the schemas of those CRDs. The rendered ``dask_gateway_config.py`` is
then executed the way the gateway pod runs it, with the profiles arriving as the
ConfigMap variables the Deployment declares. The gateway's pods have requests
and limits, and ``helm-values/dask-gateway-networkpolicy.yaml`` admits to them
only their clients (checked with the pods' real labels: the HTTP side only from
the dashboards front of ``helm-values/dask-dashboards.yaml``) and keeps them
from the instance metadata address.
"""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.backends.kubernetes.controller import KubeController
from dask_gateway_server.utils import FrozenAttrDict
from traitlets.config import Config

from tests.integration.helm_support import (
    HELM_VALUES,
    K8S,
    REPO,
    TRAEFIK_CLIENTS,
    connection_cases,
    one,
    render_gateway,
    render_hub,
)
from wbspawner.gateway.backends import WorkbenchKubeBackend
from wbspawner.gateway.netpol import PodRef, allows

pytestmark = pytest.mark.integration

DATA_FILE = "80-data.yaml"
"""The profiles file of the data section, which the gateway reads too."""


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render_gateway("--include-crds")


def _crd_schemas(rendered: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    schemas = {}
    for crd in rendered:
        if crd["kind"] != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            api = f"{group}/{version['name']}"
            schemas[(api, kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def test_every_rendered_object_is_valid(rendered: list[dict[str, Any]]) -> None:
    schemas = _crd_schemas(rendered)
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "Service", "ConfigMap", "IngressRoute"} <= kinds
    custom = 0
    for doc in rendered:
        key = (doc["apiVersion"], doc["kind"])
        if key in schemas:
            jsonschema.validate(doc, schemas[key])
            custom += 1
        else:
            kubernetes_validate.validate(doc, K8S, strict=True)
    assert custom >= 2  # the IngressRoute and Middlewares of the gateway API


def test_traefik_is_internal_with_web_and_scheduler_ports(
    rendered: list[dict[str, Any]],
) -> None:
    service = one(rendered, "Service", "traefik-dask-gateway")
    assert service["spec"]["type"] == "ClusterIP"
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"web": (80, 8000), "tcp": (8786, 8786)}


def test_routes_live_under_the_hub_service_prefix(
    rendered: list[dict[str, Any]],
) -> None:
    route = one(rendered, "IngressRoute", "api-dask-gateway")
    match = route["spec"]["routes"][0]["match"]
    assert match == "PathPrefix(`/services/dask-gateway`)"


def _gateway_container(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(rendered, "Deployment", "api-dask-gateway")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return dict(containers[0])


def test_gateway_pod_gets_the_token_the_accounting_url_and_the_profiles(
    rendered: list[dict[str, Any]],
) -> None:
    env = {e["name"]: e for e in _gateway_container(rendered)["env"]}
    token = env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "wbspawner-dask-gateway", "key": "token"}
    costs = env["WBSPAWNER_COST_DB_URL"]["valueFrom"]["secretKeyRef"]
    assert costs == {"name": "wbspawner-db", "key": "cost-url"}
    keys = sorted(
        e["valueFrom"]["configMapKeyRef"]["key"]
        for e in env.values()
        if "configMapKeyRef" in e.get("valueFrom", {})
    )
    shipped = [p.name for p in (REPO / "profiles").glob("*.yaml")]
    # The data section's file, which the repository's profiles do not have.
    assert keys == sorted([*shipped, DATA_FILE])


def test_rendered_config_runs_with_the_workbench_backend(
    rendered: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Run the chart's config as the pod would: ConfigMap keys become variables."""
    for entry in _gateway_container(rendered)["env"]:
        source = entry.get("valueFrom", {})
        if "configMapKeyRef" in source:
            path = REPO / "profiles" / source["configMapKeyRef"]["key"]
            if path.name != DATA_FILE:  # optional: absent from the ConfigMap
                monkeypatch.setenv(entry["name"], path.read_text(encoding="utf-8"))
        elif "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "token-from-the-secret")
    cost_url = "postgresql+psycopg://wbspawner:pw@db.example.org:5432/wbspawner_costs"
    monkeypatch.setenv("WBSPAWNER_COST_DB_URL", cost_url)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config_map = one(rendered, "ConfigMap", "api-dask-gateway")
    script = tmp_path / "dask_gateway_config.py"
    script.write_text(config_map["data"]["dask_gateway_config.py"])
    c = Config()
    exec(
        compile(script.read_text(), str(script), "exec"),
        {"c": c, "__file__": str(script)},
    )
    assert (
        c.DaskGateway.backend_class == "wbspawner.gateway.backends.WorkbenchKubeBackend"
    )
    assert c.ClusterConfig.scheduler_cmd == ["dask", "scheduler"]
    assert c.KubeClusterConfig.image == "ghcr.io/wbspawner/dask-worker:0.1.0"
    assert c.JupyterHubAuthenticator.jupyterhub_service_name == "dask-gateway"
    mixin = c.WorkbenchBackendMixin
    assert mixin.hub_api_token == "token-from-the-secret"
    assert mixin.hub_api_url == "http://hub.jhub:8081/hub/api"
    assert mixin.cost_db_url == cost_url
    backend = WorkbenchKubeBackend(config=c)
    profiles = backend.profiles()
    assert [s.name for s in profiles.dask.worker_sizes][:1] == ["m64-quarter"]
    assert profiles.pools.keys() >= {"cpu4", "mem64", "gpu-a10g-x4"}


GATEWAY_PODS = ("api-dask-gateway", "controller-dask-gateway", "traefik-dask-gateway")
POLICIES = HELM_VALUES / "dask-gateway-networkpolicy.yaml"
FRONT = HELM_VALUES / "dask-dashboards.yaml"
METADATA = ipaddress.ip_address("169.254.169.254")


@pytest.mark.parametrize("name", GATEWAY_PODS)
def test_gateway_pods_have_requests_and_limits(
    rendered: list[dict[str, Any]], name: str
) -> None:
    (container,) = one(rendered, "Deployment", name)["spec"]["template"]["spec"][
        "containers"
    ]
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}, bound


def _gateway_policies() -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(POLICIES.read_text(encoding="utf-8")) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)
        assert doc["metadata"]["namespace"] == "dask-gateway"
    return docs


@pytest.fixture(scope="module")
def pods(rendered: list[dict[str, Any]]) -> dict[str, PodRef]:
    """Every pod that talks to the gateway, labelled as the real code labels it."""
    out = {}
    for doc in rendered:
        if doc["kind"] == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            component = labels["app.kubernetes.io/component"]
            out[component] = PodRef("dask-gateway", labels)
    hub = render_hub()
    for name in ("hub", "proxy"):
        template = one(hub, "Deployment", name)["spec"]["template"]
        out[name] = PodRef("jhub", template["metadata"]["labels"])
    front = yaml.safe_load_all(FRONT.read_text(encoding="utf-8"))
    (deployment,) = [d for d in front if d and d["kind"] == "Deployment"]
    out["front"] = PodRef("jhub", deployment["spec"]["template"]["metadata"]["labels"])
    # KubeSpawner's labels of every user server (z2jh's network policies use them).
    server = {"app": "jupyterhub", "component": "singleuser-server"}
    out["server"] = PodRef("jhub", server)
    out["server elsewhere"] = PodRef("other", server)
    controller = KubeController(
        gateway_instance="dask-gateway", api_url="http://api:8000/api"
    )
    config = FrozenAttrDict(KubeClusterConfig().to_dict())
    for role, worker in (("scheduler", False), ("worker", True)):
        pod = controller.make_pod("dask-gateway", "c0ffee", config, worker)
        out[role] = PodRef("dask-gateway", pod["metadata"]["labels"])
    return out


CONNECTIONS = [
    # source, target (component), port, allowed
    *TRAEFIK_CLIENTS,
    ("traefik", "gateway", 8000, True),
    ("scheduler", "gateway", 8000, True),
    ("server elsewhere", "traefik", 8000, False),
    ("hub", "traefik", 8786, False),
    ("worker", "traefik", 8786, False),
    ("server", "gateway", 8000, False),
    ("hub", "gateway", 8000, False),
    ("worker", "gateway", 8000, False),
    ("server", "controller", 8000, False),
    ("traefik", "controller", 8000, False),
    ("gateway", "controller", 8000, False),
]


@pytest.mark.parametrize(
    ("source", "target", "port", "allowed"), connection_cases(CONNECTIONS)
)
def test_gateway_pods_admit_only_their_clients(
    pods: dict[str, PodRef], source: str, target: str, port: int, allowed: bool
) -> None:
    policies = _gateway_policies()
    assert allows(policies, pods[source], pods[target], port) is allowed


def test_gateway_pods_reach_anything_but_instance_metadata() -> None:
    policies = _gateway_policies()
    assert len(policies) == len(GATEWAY_PODS)
    for policy in policies:
        assert "Egress" in policy["spec"]["policyTypes"]
        peers = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
        # Pods by selector; addresses by ipBlock, the metadata address excepted.
        assert peers == [
            {"namespaceSelector": {}},
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}},
        ]
        assert METADATA in ipaddress.ip_network(peers[1]["ipBlock"]["except"][0])


def test_deploy_guide_applies_the_gateway_policies() -> None:
    guide = (REPO / "docs" / "deploy-eks.md").read_text(encoding="utf-8")
    assert f"kubectl apply -f {POLICIES.relative_to(REPO)}" in guide


def test_deploy_guide_gives_the_gateway_the_accounting_database() -> None:
    """Without the Secret in its namespace the gateway pod cannot start (its
    variable names a key of it), so the guide creates it there too."""
    guide = (REPO / "docs" / "deploy-eks.md").read_text(encoding="utf-8")
    assert "kubectl -n dask-gateway create secret generic wbspawner-db" in guide
