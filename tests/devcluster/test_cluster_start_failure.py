"""A devcluster that fails to start stops what it had started (nothing to clean up)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig


async def test_a_start_that_fails_stops_the_kubelet_and_removes_its_temp_dir() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = ClusterConfig(api_port=taken.getsockname()[1], validate=False)
        cluster = Cluster(config, controllers=False)
        with pytest.raises(OSError):
            await cluster.start()
    temp_dir = Path(cluster.state_dir)
    assert cluster.kubelet is not None and cluster.store is not None
    assert not temp_dir.exists(), "the temporary state dir was left behind"
    assert cluster._runner is None
