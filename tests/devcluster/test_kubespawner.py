"""Unmodified KubeSpawner 7.1 against devcluster: start, poll, progress, stop.

The pod is placed by devcluster's scheduler on the static node ``core``; the
kubelet runs the spawner's command (a tiny HTTP server standing in for
jupyterhub-singleuser) on the pod's own loopback IP.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from unittest.mock import Mock

import kubernetes_asyncio.config.kube_config as kube_config
import pytest
from jupyterhub.objects import Hub, Server
from kubespawner import KubeSpawner, clients
from traitlets.config import Config

from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import wait_for


class FakeUser(Mock):
    """The parts of a JupyterHub user a spawner reads."""

    server = None

    def __init__(self, name: str = "user", **kwargs: object) -> None:
        super().__init__(**kwargs)  # Mock builds child mocks with keyword arguments
        self.name = name
        self.server = Server()

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
async def make_spawner(
    full_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., KubeSpawner]]:
    kubeconfig = full_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    # kubernetes_asyncio reads this module global when it loads the config.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    clients.load_config.cache_clear()

    def make(name: str, **traits: object) -> KubeSpawner:
        cfg = Config()
        cfg.KubeSpawner.namespace = "jhub"
        cfg.KubeSpawner.k8s_api_host = full_cluster.url
        cfg.KubeSpawner.start_timeout = 20
        cfg.KubeSpawner.cmd = [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "0.0.0.0",
            "8888",
        ]
        cfg.PodReflector.timeout_seconds = (
            1  # exercise the server-side close + relist path
        )
        cfg.EventReflector.timeout_seconds = 1
        for key, value in traits.items():
            setattr(cfg.KubeSpawner, key, value)
        return KubeSpawner(
            hub=Hub(),
            user=FakeUser(name),
            config=cfg,
            api_token="secret-token",
            oauth_client_id=f"jupyterhub-user-{name}",
        )

    try:
        yield make
    finally:
        await KubeSpawner._stop_all_reflectors()
        clients.load_config.cache_clear()


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
        return resp.status


async def test_start_poll_progress_stop(make_spawner, full_cluster: Cluster):
    assert full_cluster.kubelet is not None and full_cluster.store is not None
    spawner = make_spawner("alice")
    url = await asyncio.wait_for(spawner.start(), 30)
    assert url.startswith("http://127.0.1.") and url.endswith(":8888")
    assert await asyncio.to_thread(_get, url) == 200
    pod = full_cluster.store.get("pods", "jhub", "jupyter-alice")
    assert pod["spec"]["nodeName"] == "core"
    assert await spawner.poll() is None
    await asyncio.sleep(2.5)  # reflectors close their watches every second and relist
    assert await spawner.poll() is None
    # KubeSpawner renders each event as "<timestamp> [<type>] <message>"
    messages = [e["message"].split("] ", 1)[1] async for e in spawner.progress()]
    assert messages[0] == "Successfully assigned jhub/jupyter-alice to core"
    assert messages[-2:] == [
        "Created container: notebook",
        "Started container notebook",
    ]
    pid = full_cluster.kubelet.pids()[0]
    await asyncio.wait_for(spawner.stop(), 30)
    assert await spawner.poll() == 1
    assert not full_cluster.store.exists("pods", "jhub", "jupyter-alice")
    await wait_for(lambda: pid not in full_cluster.kubelet.pids(), 5)


async def test_services_are_garbage_collected(make_spawner, full_cluster: Cluster):
    assert full_cluster.store is not None
    spawner = make_spawner("bob", services_enabled=True)
    url = await asyncio.wait_for(spawner.start(), 30)
    assert url == "http://jupyter-bob.jhub.svc.cluster.local:8888"
    service = full_cluster.store.get("services", "jhub", "jupyter-bob")
    assert service["metadata"]["ownerReferences"][0]["kind"] == "Pod"
    await asyncio.wait_for(spawner.stop(), 30)
    assert not full_cluster.store.exists("services", "jhub", "jupyter-bob")


async def test_user_namespaces(make_spawner, full_cluster: Cluster):
    assert full_cluster.store is not None
    spawner = make_spawner(
        "carol", enable_user_namespaces=True, user_namespace_template="jhub-{username}"
    )
    url = await asyncio.wait_for(spawner.start(), 30)
    assert url.startswith("http://127.0.1.")
    assert full_cluster.store.exists("pods", "jhub-carol", "jupyter-carol")
    await asyncio.wait_for(spawner.stop(), 30)
    assert await spawner.poll() == 1


async def test_unschedulable_pod_times_out(make_spawner, full_cluster: Cluster):
    spawner = make_spawner("dave", start_timeout=3, node_selector={"pool": "gpu"})
    with pytest.raises(TimeoutError, match="did not start in 3 seconds"):
        await spawner.start()
    messages = [e["message"] async for e in spawner.progress()]
    assert any("didn't match Pod's node affinity/selector" in m for m in messages), (
        messages
    )
    await asyncio.wait_for(spawner.stop(), 30)
