"""Containers run in their image's local environment; unmapped images fail to pull.

The kubelet behaviour followed: a missing image is ``ErrImagePull`` then
``ImagePullBackOff`` with ``Failed`` and ``BackOff`` Events, and the pod stays
Pending; ``command``/``args`` combine with the image's ENTRYPOINT and CMD as
Kubernetes documents ("Define a Command and Arguments for a Container").
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from tests.devcluster.cluster_support import ended, wait_for

pytestmark = pytest.mark.integration

NS = "jhub"


@pytest.fixture
async def image_cluster(
    fast_config: ClusterConfig, tmp_path: Path
) -> AsyncIterator[Cluster]:
    prefix = tmp_path / "tool"
    (prefix / "bin").mkdir(parents=True)
    script = prefix / "bin" / "hello"
    script.write_text(
        '#!/bin/sh\necho "args: $*"\necho "path: $PATH"\necho "var: $GREETING"\n'
    )
    script.chmod(0o755)
    mapping = tmp_path / "images" / "environments.yaml"
    mapping.parent.mkdir()
    mapping.write_text(
        "environments:\n"
        "  tool:\n"
        f"    prefix: {prefix}\n"
        "    config:\n"
        "      Entrypoint: [hello]\n"
        "      Cmd: [from-the-image]\n"
        "      Env: [GREETING=hi]\n"
        "images:\n"
        "  example.org/tool: tool\n"
    )
    config = dataclasses.replace(fast_config, image_environments=str(mapping))
    async with Cluster(config, controllers=False) as cluster:
        yield cluster


def pod(name: str, image: str, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": "core",
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": image, **container}],
        },
    }


async def test_image_entrypoint_and_cmd_run_in_the_images_environment(
    image_cluster: Cluster,
) -> None:
    assert image_cluster.store is not None
    image_cluster.store.create("pods", NS, pod("plain", "example.org/tool:1"))
    image_cluster.store.create(
        "pods", NS, pod("with-args", "example.org/tool:2", args=["given"])
    )
    _, out = await ended(image_cluster, NS, "plain", 20)
    assert "args: from-the-image" in out
    assert "var: hi" in out
    path = out.split("path: ", 1)[1].splitlines()[0].split(":")
    assert path[0].endswith("/tool/bin")
    assert str(Path(sys.executable).parent) not in path  # not devcluster's Python
    _, out = await ended(image_cluster, NS, "with-args", 20)
    assert "args: given" in out


async def test_an_unmapped_image_fails_to_pull_with_events_and_no_traceback(
    image_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    assert image_cluster.store is not None
    store = image_cluster.store
    caplog.set_level(logging.INFO)
    store.create("pods", NS, pod("lost", "docker.io/library/traefik:3.3.5"))

    def backing_off() -> Any:
        status = store.get("pods", NS, "lost").get("status") or {}
        states = [c.get("state") or {} for c in status.get("containerStatuses") or []]
        waiting = [s["waiting"] for s in states if "waiting" in s]
        return waiting and waiting[0]["reason"] == "ImagePullBackOff" and status

    status = await wait_for(backing_off, 10)
    assert status["phase"] == "Pending"
    events = [
        (e["reason"], e["message"])
        for e in store.list("events", NS)[0]
        if e["involvedObject"]["name"] == "lost"
    ]
    pulled = (
        'Failed to pull image "docker.io/library/traefik:3.3.5": devcluster has no '
        "local environment for docker.io/library/traefik:3.3.5 "
        "(environments.yaml does not map it)"
    )
    assert ("Failed", pulled) in events
    assert ("Failed", "Error: ErrImagePull") in events
    assert (
        "BackOff",
        'Back-off pulling image "docker.io/library/traefik:3.3.5"',
    ) in events
    assert ("Failed", "Error: ImagePullBackOff") in events
    assert "Traceback" not in caplog.text
