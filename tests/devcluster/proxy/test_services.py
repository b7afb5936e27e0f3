"""Services on a running devcluster: endpoints, cluster IPs on loopback, names, env.

Each test names the Kubernetes behaviour it checks. Pods name their node
(``core``): these clusters run no scheduler.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from devcluster.apiserver.store import Store
from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import ended, wait_for

pytestmark = pytest.mark.integration

NS = "jhub"

SERVE = (
    "import http.server, os, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['HOSTNAME'].encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()\n"
)


def web_pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {
            "nodeName": "core",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": "python:3.11",
                    "command": [sys.executable, "-c", SERVE],
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
        },
    }


def service(name: str, selector: dict[str, str] | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
        **spec,
    }
    if selector is not None:
        body["selector"] = selector
    return {"metadata": {"name": name}, "spec": body}


def store_of(cluster: Cluster) -> Store:
    assert cluster.store is not None
    return cluster.store


async def get(url: str) -> str:
    """GET from a worker thread: the cluster's kube-proxy runs on this loop."""

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    return await asyncio.to_thread(fetch)


async def ready(store: Store, name: str) -> dict[str, Any]:
    def check() -> Any:
        pod = store.get_or_none("pods", NS, name)
        conditions = ((pod or {}).get("status") or {}).get("conditions") or []
        return (
            pod
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            else None
        )

    return await wait_for(check, 20)  # type: ignore[no-any-return]


async def test_cluster_ip_on_loopback_reaches_a_ready_endpoint(
    workload_cluster: Cluster,
) -> None:
    """kube-proxy: clusterIP:port forwards to a ready pod's (named) targetPort."""
    store = store_of(workload_cluster)
    store.create("pods", NS, web_pod("web-a"))
    created = store.create("services", NS, service("web", {"app": "web"}))
    ip = created["spec"]["clusterIP"]
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("127.100.0.0/16")
    pod = await ready(store, "web-a")

    def sliced() -> Any:
        slices = store.list(
            "endpointslices", NS, label_selector="kubernetes.io/service-name=web"
        )[0]
        return slices and slices[0].get("endpoints") and slices[0]

    slice_ = await wait_for(sliced, 10)
    assert slice_["endpoints"][0]["addresses"] == [pod["status"]["podIP"]]
    assert slice_["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]

    def ready_address() -> Any:
        subsets = store.get("endpoints", NS, "web").get("subsets") or [{}]
        return subsets[0].get("addresses")

    addresses = await wait_for(ready_address, 10)
    assert addresses[0]["ip"] == pod["status"]["podIP"]
    body = await wait_for(lambda: _try_get(f"http://{ip}:80/"), 10)
    assert body == "web-a"


async def _try_get(url: str) -> str | None:
    try:
        return await get(url)
    except OSError:
        return None


async def test_a_service_without_ready_endpoints_refuses(
    workload_cluster: Cluster,
) -> None:
    """kube-proxy rejects connections to a Service with no endpoints."""
    store = store_of(workload_cluster)
    created = store.create("services", NS, service("nobody", {"app": "nobody"}))
    await asyncio.sleep(0.3)
    # urllib reports a reset while sending as URLError, while reading as itself
    with pytest.raises((urllib.error.URLError, ConnectionResetError)) as refused:
        await get(f"http://{created['spec']['clusterIP']}:80/")
    error = refused.value
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    assert isinstance(reason, ConnectionResetError)


async def test_pods_get_service_variables_and_resolve_service_names(
    workload_cluster: Cluster,
) -> None:
    """Service env vars for Services that exist at start; names as cluster DNS."""
    store = store_of(workload_cluster)
    store.create("pods", NS, web_pod("web-a"))
    web = store.create("services", NS, service("web", {"app": "web"}))
    headless = store.create(
        "services", NS, service("web-pods", {"app": "web"}, clusterIP="None")
    )
    assert headless["spec"]["clusterIP"] == "None"
    pod = await ready(store, "web-a")
    await wait_for(lambda: _try_get(f"http://{web['spec']['clusterIP']}/"), 10)
    probe = (
        "import json, os, socket, urllib.request\n"
        "env = {k: v for k, v in os.environ.items() if '_SERVICE_' in k or"
        " k.startswith(('WEB_PORT', 'KUBERNETES_PORT'))}\n"
        "names = {n: socket.gethostbyname(n) for n in ('web', 'web.jhub',"
        " 'web.jhub.svc.cluster.local', 'kubernetes.default', 'web-pods')}\n"
        "body = urllib.request.urlopen('http://web/', timeout=5).read().decode()\n"
        "print(json.dumps({'env': env, 'names': names, 'body': body}))\n"
    )
    client = {
        "metadata": {"name": "client"},
        "spec": {
            "nodeName": "core",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": "python:3.11",
                    "command": [sys.executable, "-c", probe],
                }
            ],
        },
    }
    store.create("pods", NS, client)
    _, out = await ended(workload_cluster, NS, "client")
    seen = json.loads(out.strip().splitlines()[-1])
    ip = web["spec"]["clusterIP"]
    env = seen["env"]
    assert env["WEB_SERVICE_HOST"] == ip
    assert env["WEB_SERVICE_PORT"] == "80"
    assert env["WEB_SERVICE_PORT_WEB"] == "80"
    assert env["WEB_PORT"] == f"tcp://{ip}:80"
    assert env["WEB_PORT_80_TCP_ADDR"] == ip
    assert not any(k.startswith("WEB_PODS_") for k in env)  # headless: none
    api = store.get("services", "default", "kubernetes")["spec"]
    assert env["KUBERNETES_SERVICE_HOST"] == api["clusterIP"]
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert seen["names"]["web"] == ip
    assert seen["names"]["web.jhub"] == ip
    assert seen["names"]["web.jhub.svc.cluster.local"] == ip
    assert seen["names"]["kubernetes.default"] == api["clusterIP"]
    assert seen["names"]["web-pods"] == pod["status"]["podIP"]
    assert seen["body"] == "web-a"


async def test_a_running_pod_sees_a_new_service_by_name(
    workload_cluster: Cluster,
) -> None:
    """DNS follows Services: a Service made after the pod started resolves in it."""
    store = store_of(workload_cluster)
    waiter = (
        "import socket, time\n"
        "for _ in range(400):\n"
        "    try:\n"
        "        print(socket.gethostbyname('late')); break\n"
        "    except OSError:\n"
        "        time.sleep(0.05)\n"
    )
    store.create(
        "pods",
        NS,
        {
            "metadata": {"name": "waiter"},
            "spec": {
                "nodeName": "core",
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "python:3.11",
                        "command": [sys.executable, "-c", waiter],
                    }
                ],
            },
        },
    )
    await ready(store, "waiter")
    late = store.create("services", NS, service("late", {"app": "late"}))
    _, out = await ended(workload_cluster, NS, "waiter")
    assert out.strip() == late["spec"]["clusterIP"]


async def test_the_api_is_the_kubernetes_service_over_tls(
    workload_cluster: Cluster,
) -> None:
    """In-cluster clients: https://$KUBERNETES_SERVICE_HOST with the cluster CA."""
    store = store_of(workload_cluster)
    assert workload_cluster.serving_cert is not None
    ca = workload_cluster.serving_cert.ca_pem
    probe = (
        "import os, ssl, sys, urllib.request\n"
        "ctx = ssl.create_default_context(cadata=sys.argv[1])\n"
        "host = os.environ['KUBERNETES_SERVICE_HOST']\n"
        "port = os.environ['KUBERNETES_SERVICE_PORT']\n"
        "for url in (f'https://{host}:{port}/version',"
        " 'https://kubernetes.default.svc/api/v1/namespaces/jhub'):\n"
        "    print(urllib.request.urlopen(url, context=ctx, timeout=5).status)\n"
    )
    store.create(
        "pods",
        NS,
        {
            "metadata": {"name": "in-cluster"},
            "spec": {
                "nodeName": "core",
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "python:3.11",
                        "command": [sys.executable, "-c", probe, ca],
                    }
                ],
            },
        },
    )
    _, out = await ended(workload_cluster, NS, "in-cluster")
    assert out.split() == ["200", "200"], out
