"""The wait for the pod of a start the hub was restarted during."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from wbspawner.hub.spawner_io import pod_outcome

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
