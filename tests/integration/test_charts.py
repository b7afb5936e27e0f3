"""The stock z2jh chart, installed with helm on devcluster with helm-values/.

The hub comes up from the chart's own Deployment, ConfigMap and Secret (z2jh's
jupyterhub_config.py and values, the hub image's wbspawner configuration), in
the environment built from images/hub/Dockerfile; the chart's proxy runs in
configurable-http-proxy's; bob logs in through the chart's ``proxy-public``
Service and starts a server (the singleuser image's environment, a node of his
pool, his home). Run by ``make test-charts`` (``make test`` runs it too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devcluster.services.ldap import DEMO_USERS
from tests.integration.chart_harness import GATEWAY_NAMESPACE, ChartStack
from tests.integration.hub_harness import HubUser, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.charts]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartStack]:
    built = Path(__file__).resolve().parents[2] / ".cache" / "images" / "hub"
    assert (built / "bin").is_dir(), (
        "the image environments are missing: make image-envs"
    )
    running = ChartStack(tmp_path_factory.mktemp("charts")).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_hub_rolls_out_from_the_charts_deployment(stack: ChartStack) -> None:
    """``kubectl rollout status`` as an operator would wait for the install."""
    for deployment in ("hub", "proxy"):
        done = stack.kubectl_run(
            "rollout",
            "status",
            f"deployment/{deployment}",
            "--timeout=240s",
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, stack.diagnostics()
    pods = json.loads(stack.kubectl_run("get", "pods", "-o", "json").stdout)["items"]
    hub = next(p for p in pods if p["metadata"]["labels"].get("component") == "hub")
    (container,) = hub["spec"]["containers"]
    assert container["image"] == "ghcr.io/wbspawner/hub:0.1.0"
    assert container["securityContext"]["runAsUser"] == 1000


def test_the_gateway_rolls_out_from_the_dask_gateway_chart(stack: ChartStack) -> None:
    """The chart's CRDs are established and its three Deployments roll out.

    helm installs a chart's ``crds/`` first and waits for each definition's
    ``Established`` condition; traefik (devcluster's stand-in) answers its
    ``/ping`` readiness probe, and the API pod is Ready once it serves.
    """
    crds = stack.kubectl_run("get", "crd", "-o", "json").stdout
    established = {
        crd["metadata"]["name"]
        for crd in json.loads(crds)["items"]
        if any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd["status"]["conditions"]
        )
    }
    assert {"daskclusters.gateway.dask.org", "ingressroutetcps.traefik.io"} <= (
        established
    )
    for deployment in ("controller", "api", "traefik"):
        done = stack.kubectl_run(
            "rollout",
            "status",
            f"deployment/{deployment}-dask-gateway",
            "--timeout=240s",
            check=False,
            timeout=300,
            namespace=GATEWAY_NAMESPACE,
        )
        assert done.returncode == 0, stack.diagnostics()
    routes = stack.kubectl_run(
        "get", "ingressroutes", "-o", "name", namespace=GATEWAY_NAMESPACE
    ).stdout
    assert "ingressroute.traefik.io/api-dask-gateway" in routes


def test_bob_logs_in_through_the_charts_proxy_service(stack: ChartStack) -> None:
    """The login form and LDAP (StartTLS) through Service proxy-public."""
    url = hub_url(stack)
    bob = next(u for u in DEMO_USERS if u.uid == "bob")
    user = HubUser(url, bob.uid, bob.password)
    answer = user.login()
    assert answer.status_code == 302, stack.diagnostics()
    assert "/hub/login" not in answer.headers.get("Location", "")
    home = user.http.get(f"{url}/hub/home", timeout=10)
    assert home.status_code == 200 and "bob" in home.text


def test_bob_starts_a_server_through_the_charts_hub(stack: ChartStack) -> None:
    """KubeSpawner in the chart's hub starts bob's pod; it answers through the proxy."""
    url = hub_url(stack)  # the module's tests run in any order
    bob = next(u for u in DEMO_USERS if u.uid == "bob")
    user = HubUser(url, bob.uid, bob.password)
    assert user.login().status_code == 302
    user.form()
    started = user.spawn({"profile": "medium"})
    assert started.status_code in (200, 302), started.text[-2000:]
    events = user.progress(timeout=300)
    assert events and events[-1].get("ready"), (events, stack.diagnostics())
    assert user.wait_ready(timeout=120).status_code == 200
    pods = json.loads(stack.kubectl_run("get", "pods", "-o", "json").stdout)["items"]
    pod = next(p for p in pods if p["metadata"]["name"] == "jupyter-bob")
    (container,) = pod["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/wbspawner/singleuser:")
    assert container["securityContext"]["runAsUser"] == bob.uid_number


def hub_url(stack: ChartStack) -> str:
    """Return the hub's URL through proxy-public once it answers there."""
    url = f"http://{stack.service_ip('proxy-public')}"

    def health() -> bool:
        try:
            return requests.get(f"{url}/hub/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(health, 240, "the hub answering through proxy-public")
    return url
