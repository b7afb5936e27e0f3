"""The spawner's waits: a start's pod after a hub restart, a running pod deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from wbspawner.hub.spawner_io import deletion_cause, pod_outcome

PENDING: dict[str, Any] = {"status": {"phase": "Pending"}}
RUNNING: dict[str, Any] = {"status": {"phase": "Running"}}


def running(pod: Mapping[str, Any]) -> bool:
    return bool(pod["status"]["phase"] == "Running")


def seen(*pods: dict[str, Any] | None) -> Callable[[], dict[str, Any] | None]:
    """Return the pods one look after the other (the last one from then on)."""
    looks: Iterator[dict[str, Any] | None] = iter(pods)
    last: list[dict[str, Any] | None] = [None]

    def look() -> dict[str, Any] | None:
        last[0] = next(looks, last[0])
        return last[0]

    return look


async def never() -> str:
    await asyncio.Event().wait()
    return ""


async def refused_now() -> str:
    return "No node group can start a 64 GiB node"


@pytest.mark.parametrize(
    ("pods", "refusal", "timeout_s", "expected"),
    [
        pytest.param((PENDING, PENDING, RUNNING), never, 5.0, None, id="runs"),
        pytest.param((RUNNING,), refused_now, 5.0, None, id="runs-at-once"),
        pytest.param((PENDING, None), never, 5.0, "its pod is gone", id="gone"),
        pytest.param(
            (PENDING,),
            refused_now,
            5.0,
            "no node can be started for it: No node group can start a 64 GiB node",
            id="refused",
        ),
        pytest.param(
            (PENDING,), never, 0.05, "its pod did not run within 0.05 s", id="timeout"
        ),
    ],
)
async def test_pod_outcome(
    pods: tuple[dict[str, Any] | None, ...],
    refusal: Callable[[], Any],
    timeout_s: float,
    expected: str | None,
) -> None:
    outcome = await pod_outcome(
        seen(*pods), running, refusal(), timeout_s, interval_s=0.01
    )
    assert outcome == expected


async def test_the_refusal_watch_is_cancelled_on_the_way_out() -> None:
    watch_cancelled = asyncio.Event()

    async def watch() -> str:
        try:
            await asyncio.Event().wait()
        finally:
            watch_cancelled.set()
        return ""

    looks = seen(PENDING, PENDING, RUNNING)
    assert await pod_outcome(looks, running, watch(), 5.0, interval_s=0.01) is None
    await asyncio.wait_for(watch_cancelled.wait(), 1.0)


class Nodes:
    """The one read ``deletion_cause`` makes, answered from a dict."""

    def __init__(self, **nodes: dict[str, Any]) -> None:
        self.nodes = nodes
        self.reads: list[str] = []

    async def get_node(self, name: str) -> dict[str, Any] | None:
        self.reads.append(name)
        return self.nodes.get(name)


ON_N1: dict[str, Any] = {"metadata": {}, "spec": {"nodeName": "n1"}}
DELETING: dict[str, Any] = {
    "metadata": {"deletionTimestamp": "2026-12-07T15:00:01Z"},
    "spec": {"nodeName": "n1"},
}
SPOT_ITN = {
    "spec": {
        "taints": [
            {
                "key": "aws-node-termination-handler/spot-itn",
                "effect": "NoSchedule",
                "timeAdded": "2026-12-07T15:00:00Z",
            }
        ]
    }
}


async def test_a_drained_spot_node_is_the_cause() -> None:
    nodes = Nodes(n1=SPOT_ITN)
    found, running = await deletion_cause(
        nodes,  # type: ignore[arg-type]
        seen(ON_N1, ON_N1, DELETING),
        interval_s=0,
    )
    assert found is not None and found.reason == "spot-reclaim" and running
    assert nodes.reads == ["n1"]  # once, when the deletion is seen


async def test_a_pod_gone_between_two_looks_still_has_its_cause() -> None:
    nodes = Nodes(n1=SPOT_ITN)
    found, running = await deletion_cause(nodes, seen(ON_N1, None), interval_s=0)  # type: ignore[arg-type]
    assert found is not None and found.reason == "spot-reclaim" and not running


@pytest.mark.parametrize(
    ("pods", "node"),
    [
        pytest.param((None,), SPOT_ITN, id="never-seen"),
        pytest.param((DELETING,), {"spec": {}}, id="stopped-by-the-hub"),
        pytest.param((DELETING,), None, id="node-already-gone"),
    ],
)
async def test_no_cause_without_a_notice_on_the_node(
    pods: tuple[dict[str, Any] | None, ...], node: dict[str, Any] | None
) -> None:
    nodes = Nodes(**({"n1": node} if node is not None else {}))
    found, _ = await deletion_cause(nodes, seen(*pods), interval_s=0)  # type: ignore[arg-type]
    assert found is None
