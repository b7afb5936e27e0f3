"""Fixtures of the controller tests (scheduler, autoscaler, volumes, EBS).

- ``ec2``/``autoscaling``: clients of ``moto`` (the session's moto server,
  wiped before the test; see ``tests/devcluster/conftest.py``).
- ``subnets``: a VPC with one subnet per AZ (us-east-1a, b, c).
- ``config``: a ClusterConfig with every delay scaled down (time_factor 0.005),
  cluster name ``dev``.
- ``make_pool``: ``make_pool(pool, zones=[…], …)`` creates a pool's node groups
  in moto for the ``config`` cluster (``cluster=`` for another); see
  ``tests.node_groups_support.create_pool`` for the options.
- ``store``: a validating Store with namespaces ``default``, ``jhub`` and
  ``kube-system``.
- ``controllers``: the running devcluster controllers on ``store`` and ``moto``.
- ``eventually``: ``await eventually(check, timeout)`` polls until ``check()``.
- ``kubectl``: the kubectl binary (1.35), extracted once per session.

Helpers to import: ``controller_support`` (user pods, events, group status) and
``tests.node_groups_support`` (networks and node groups in moto, also for
the integration tests).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from devcluster.apiserver import validation
from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.manager import Controllers, start_controllers
from devcluster.services.moto_server import MotoServer
from devcluster.services.tools import ensure_tool
from tests.node_groups_support import (
    MakePool,
    create_pool,
    make_network,
)

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@pytest.fixture
def ec2(moto: MotoServer) -> Any:
    return moto.client("ec2")


@pytest.fixture
def autoscaling(moto: MotoServer) -> Any:
    return moto.client("autoscaling")


@pytest.fixture
def subnets(ec2: Any) -> dict[str, str]:
    return make_network(ec2, ZONES)


@pytest.fixture
def config() -> ClusterConfig:
    return ClusterConfig(
        time_factor=0.005,
        node_boot_s=60.0,
        scale_down_unneeded_s=200.0,
        scan_interval_s=10.0,
        snapshot_s=100.0,
        spot_notice_s=120.0,
        scale_up_backoff_s=300.0,
        zones=ZONES,
        cluster_name="dev",
    )


@pytest.fixture
def make_pool(
    ec2: Any, autoscaling: Any, subnets: dict[str, str], config: ClusterConfig
) -> MakePool:
    return functools.partial(
        create_pool, ec2, autoscaling, subnets, cluster=config.cluster_name
    )


@pytest.fixture
async def store(config: ClusterConfig) -> AsyncIterator[Store]:
    validation.warm_up()
    s = Store(config, validator=validation.validate)
    for namespace in ("default", "jhub", "kube-system"):
        s.create("namespaces", None, {"metadata": {"name": namespace}})
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
async def controllers(
    store: Store, config: ClusterConfig, moto: MotoServer
) -> AsyncIterator[Controllers]:
    running = await start_controllers(store, config, moto)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tool("kubectl", tmp_path_factory.mktemp("tools"))


Check = Callable[[], Any]


@pytest.fixture
def eventually() -> Callable[[Check, float], Awaitable[Any]]:
    async def wait(check: Check, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout} s: {check.__doc__ or check}"
                )
            await asyncio.sleep(0.02)

    return wait
