"""KubeSpawner's reflector against devcluster's bounded watch cache.

Kubernetes behaviour followed: a watch from a resourceVersion the watch cache
no longer holds gets an ERROR event with a 410 ``Expired`` Status
(https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes,
"410 Gone"), and the client relists. KubeSpawner's ``ResourceReflector``
turns that into an exception and relists from ``resourceVersion=0``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_asyncio.config.kube_config as kube_config
import pytest
from kubespawner import clients
from kubespawner.reflector import ResourceReflector

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from tests.devcluster.cluster_support import pod_manifest, wait_for


@pytest.fixture
async def small_cache(
    fast_config: ClusterConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    """A cluster whose watch cache keeps 3 events per resource, however fresh."""
    config = dataclasses.replace(
        fast_config, watch_history=3, watch_cache_min_events=3, watch_cache_fresh_s=0
    )
    cluster = Cluster(config, controllers=False)
    await cluster.start()
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    # kubernetes_asyncio reads this module global when it loads the config.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    clients.load_config.cache_clear()
    try:
        yield cluster
    finally:
        await cluster.stop()
        clients.load_config.cache_clear()


async def test_kubespawner_reflector_relists_after_410(
    small_cache: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    store = small_cache.store
    assert store is not None
    store.create("pods", "jhub", pod_manifest("p0", ["sleep", "60"], node=""))
    # Writes that land between a list and the watch that follows it: more
    # than the cache holds, so the watch from the list's resourceVersion is
    # too old. Only the first two lists are followed by such writes.
    list_page = store.list_page
    bursts = [0]

    def list_then_write(kind: str, *args: Any, **kwargs: Any) -> Any:
        page = list_page(kind, *args, **kwargs)
        if kind == "pods" and bursts[0] < 2:
            bursts[0] += 1
            for n in range(5):
                note = {"metadata": {"annotations": {"n": f"{bursts[0]}-{n}"}}}
                store.patch("pods", "jhub", "p0", note)
        return page

    monkeypatch.setattr(store, "list_page", list_then_write)
    clients.load_config(host=small_cache.url)
    reflector = ResourceReflector(
        kind="pods", namespace="jhub", labels={"app": "p0"}, timeout_seconds=2
    )
    await reflector.start()
    try:

        def relisted_from_scratch() -> bool:
            lists = [
                path
                for method, path, _ in small_cache.requests
                if method == "GET" and "/pods?" in path and "watch=" not in path
            ]
            # the watch loop's first list, then the relist after the error
            return sum("resourceVersion=0" in p for p in lists) >= 2

        # A watch gets 410; the reflector relists from scratch.
        await wait_for(relisted_from_scratch, 15)
        assert "Expired: too old resource version" in caplog.text

        def caught_up() -> bool:
            pod = reflector.resources.get("jhub/p0") or {}
            annotations = pod.get("metadata", {}).get("annotations") or {}
            return annotations.get("n") == "2-4"

        await wait_for(caught_up, 15)
        store.create("pods", "jhub", pod_manifest("p1", ["sleep", "60"], node=""))
        store.patch("pods", "jhub", "p1", {"metadata": {"labels": {"app": "p0"}}})
        await wait_for(lambda: "jhub/p1" in reflector.resources, 15)
    finally:
        await reflector.stop()


async def test_watch_from_before_the_window_is_an_error_event(small_cache: Cluster):
    """A raw watch from a dropped resourceVersion: HTTP 200, one ERROR 410 event."""
    store = small_cache.store
    assert store is not None
    first = store.create("configmaps", "jhub", {"metadata": {"name": "c0"}})
    for n in range(1, 5):
        store.create("configmaps", "jhub", {"metadata": {"name": f"c{n}"}})
    rv = first["metadata"]["resourceVersion"]
    url = f"{small_cache.url}/api/v1/namespaces/jhub/configmaps"
    async with aiohttp.ClientSession() as session:
        async with session.get(
            url, params={"watch": "1", "resourceVersion": rv}
        ) as resp:
            assert resp.status == 200
            lines = [line async for line in resp.content if line.strip()]
        assert len(lines) == 1
        event = json.loads(lines[0])
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
        assert event["object"]["reason"] == "Expired"
        # a list page at that resourceVersion is gone too
        async with session.get(
            url,
            params={
                "limit": "2",
                "resourceVersion": rv,
                "resourceVersionMatch": "Exact",
            },
        ) as resp:
            status = resp.status
        assert status == 410
