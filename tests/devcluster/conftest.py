"""Fixtures of the devcluster tests.

- ``fast_config``: a ClusterConfig with delays scaled down 100x, one static node
  ``core`` and its state in ``tmp_path``.
- ``store``: a bare Store with validation and namespace ``jhub`` (no HTTP).
- ``cluster``: a started in-process Cluster (API + kubelet, no controllers).
- ``client``: an aiohttp session; ``Api`` wraps raw JSON calls to a cluster.
- ``kubectl``: the kubectl binary, extracted once per session.
- ``devcluster_proc``: ``python -m devcluster`` as a subprocess, stopped by PID.
- ``moto``: the session's moto server (``tests/conftest.py``), reset per test.
- ``full_cluster``: a Cluster with the scheduler and autoscaler over ``moto``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devcluster.apiserver import validation
from devcluster.apiserver.store import Store
from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.services.moto_server import MotoServer
from devcluster.services.tools import ensure_tool

REPO = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def fast_config(tmp_path: Path) -> ClusterConfig:
    return ClusterConfig(
        time_factor=0.01,
        image_pull_s=5.0,
        state_dir=str(tmp_path / "state"),
        static_nodes=({"metadata": {"name": "core"}},),
    )


@pytest.fixture
def store() -> Store:
    s = Store(
        ClusterConfig(time_factor=0.01), validator=validation.validate, history=50
    )
    s.create("namespaces", None, {"metadata": {"name": "jhub"}})
    return s


@pytest.fixture
async def cluster(fast_config: ClusterConfig) -> AsyncIterator[Cluster]:
    c = Cluster(fast_config, controllers=False)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


@pytest.fixture
def moto(moto_session: MotoServer) -> MotoServer:
    moto_session.reset()
    return moto_session


@pytest.fixture
async def full_cluster(
    fast_config: ClusterConfig, moto: MotoServer
) -> AsyncIterator[Cluster]:
    c = Cluster(fast_config, aws_endpoint=moto.endpoint_url, controllers=True)
    await c.start()
    try:
        assert c.controllers is not None, "devcluster.controllers.manager did not start"
        yield c
    finally:
        await c.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


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


@pytest.fixture
def api(cluster: Cluster, client: aiohttp.ClientSession) -> Api:
    return Api(client, cluster.url)


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


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tool("kubectl", tmp_path_factory.mktemp("tools"))


@pytest.fixture
def devcluster_proc(
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start ``python -m devcluster`` and return (process, its JSON info line)."""
    cmd = [
        sys.executable,
        "-m",
        "devcluster",
        "--no-moto",
        "--time-factor",
        "0.01",
        "--static-node",
        "core",
        "--state-dir",
        str(tmp_path / "state"),
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = _readline(proc, 60.0)
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError(f"devcluster printed nothing in {timeout}s")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"devcluster exited: {err[-2000:]}")
    return line
