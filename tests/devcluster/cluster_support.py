"""Helpers of the tests against a running devcluster: polling, raw API calls, pods."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from devcluster.cluster import Cluster


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def ended(
    cluster: Cluster, namespace: str, name: str, timeout: float = 30.0
) -> tuple[str, str]:
    """Wait until the pod has ended (Succeeded or Failed); return its phase and log."""
    assert cluster.store is not None and cluster.kubelet is not None
    store = cluster.store

    def phase() -> str | None:
        pod = store.get_or_none("pods", namespace, name) or {}
        found = (pod.get("status") or {}).get("phase")
        return found if found in ("Succeeded", "Failed") else None

    last = await wait_for(phase, timeout)
    chunks = await cluster.kubelet.read_log(namespace, name, {})
    return last, b"".join([c async for c in chunks]).decode()


class Api:
    """Raw HTTP calls to a cluster: ``await api.call("GET", "/api/v1/pods")``."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(
            method,
            self.url + path,
            data=data,
            headers=hdrs,
            timeout=aiohttp.ClientTimeout(10),
        ) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def watch(
        self, path: str, limit: int = 1000, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Read a watch stream until the server closes it (or ``limit`` events)."""
        events: list[dict[str, Any]] = []
        async with self.session.get(
            self.url + path, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            assert resp.status == 200, await resp.text()
            async for line in resp.content:
                if line.strip():
                    events.append(json.loads(line))
                if len(events) >= limit:
                    break
        return events


def pod_manifest(
    name: str, command: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    """Return a small pod bound to node ``core`` (no scheduler needed)."""
    container: dict[str, Any] = {"name": "main", "image": "python:3.11"}
    if command is not None:
        container["command"] = command
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": spec.pop("node", "core"),
            "containers": [container],
            **spec,
        },
    }
