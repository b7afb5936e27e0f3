"""Fixtures shared by the devcluster tests (each sub-folder adds its own).

- ``fast_config``: a ClusterConfig with delays scaled down 100x, one static node
  ``core`` and its state in ``tmp_path``.
- ``cluster``: a started in-process Cluster (API + kubelet, no controllers).
- ``workload_cluster``: a started Cluster with the workload and endpoints
  controllers (no moto, so no scheduler: pods name their node).
- ``client``: an aiohttp session; ``api``: an ``Api`` (raw JSON calls) to ``cluster``.
- ``moto``: the session's moto server (``tests/conftest.py``), reset per test.
- ``full_cluster``: a Cluster with the scheduler and autoscaler over ``moto``.
- ``devcluster_proc``: ``python -m devcluster`` as a subprocess, stopped by PID.

Helpers to import: ``cluster_support`` (``wait_for``, ``Api``, ``pod_manifest``)
and ``objects_support`` (builders of nodes, pods, claims, volumes, classes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.services.moto_server import MotoServer
from tests.devcluster.cluster_support import Api
from tests.paths import REPO
from tests.process_support import read_line


@pytest.fixture
def fast_config(tmp_path: Path) -> ClusterConfig:
    return ClusterConfig(
        time_factor=0.01,
        image_pull_s=5.0,
        state_dir=str(tmp_path / "state"),
        static_nodes=({"metadata": {"name": "core"}},),
    )


@pytest.fixture
async def cluster(fast_config: ClusterConfig) -> AsyncIterator[Cluster]:
    async with Cluster(fast_config, controllers=False) as c:
        yield c


@pytest.fixture
async def workload_cluster(fast_config: ClusterConfig) -> AsyncIterator[Cluster]:
    c = Cluster(fast_config, controllers=True)
    await c.start()
    try:
        assert c.core_controllers is not None, "the core controllers did not start"
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
    async with Cluster(
        fast_config, aws_endpoint=moto.endpoint_url, controllers=True
    ) as c:
        assert c.controllers is not None, "devcluster.controllers did not start"
        yield c


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(cluster: Cluster, client: aiohttp.ClientSession) -> Api:
    return Api(client, cluster.url)


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
        yield proc, json.loads(read_line(proc, 60.0, "devcluster"))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
