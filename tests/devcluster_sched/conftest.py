"""Fixtures of the scheduler/autoscaler/EBS tests.

- ``aws``: the session's moto server (``tests/conftest.py``), wiped before the
  test; ``ec2``/``autoscaling``: its clients.
- ``subnets``: a VPC with one subnet per AZ (us-east-1a, b, c).
- ``config``: a ClusterConfig with every delay scaled down (time_factor 0.005).
- ``store``: a validating Store with namespaces ``jhub`` and ``kube-system``.
- ``controllers``: the running devcluster controllers on ``store`` and ``aws``.
- ``eventually``: ``await eventually(check, timeout)`` polls until ``check()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from devcluster.apiserver import validation
from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.manager import Controllers, start_controllers
from devcluster.services.moto_server import MotoServer

from .aws_pools import make_network

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@pytest.fixture
def aws(moto_session: MotoServer) -> MotoServer:
    moto_session.reset()
    return moto_session


@pytest.fixture
def ec2(aws: MotoServer) -> Any:
    return aws.client("ec2")


@pytest.fixture
def autoscaling(aws: MotoServer) -> Any:
    return aws.client("autoscaling")


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
    store: Store, config: ClusterConfig, aws: MotoServer
) -> AsyncIterator[Controllers]:
    running = await start_controllers(store, config, aws)
    try:
        yield running
    finally:
        await running.stop()


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
