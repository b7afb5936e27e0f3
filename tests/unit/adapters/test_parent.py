"""Managed services notice when the hub that started them is gone."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from wbspawner.adapters import parent


@pytest.mark.parametrize(
    ("parent_pid", "gone"),
    [
        pytest.param(0, False, id="not-watching"),
        pytest.param(os.getppid(), False, id="parent-alive"),
        pytest.param(1, True, id="re-parented"),
    ],
)
def test_parent_gone(parent_pid: int, gone: bool) -> None:
    assert parent.parent_gone(parent_pid) is gone


async def test_nothing_is_watched_without_a_parent() -> None:
    stop = asyncio.Event()
    assert parent.watch_parent(0, stop, logging.getLogger("t"), "svc") is None
    assert not stop.is_set()


async def test_stop_is_set_within_a_check_interval_once_the_parent_dies(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    watch = parent.watch_parent(os.getppid(), stop, logging.getLogger("t"), "svc")
    assert watch is not None
    try:
        await asyncio.sleep(parent.CHECK_INTERVAL_S * 1.2)
        assert not stop.is_set(), "stopped while the hub was alive"
        monkeypatch.setattr(parent.os, "getppid", lambda: 1)  # the hub died
        await asyncio.wait_for(stop.wait(), parent.CHECK_INTERVAL_S * 2.5)
    finally:
        watch.stop()
    assert "svc: the hub (pid" in caplog.text and "is gone; stopping" in caplog.text
