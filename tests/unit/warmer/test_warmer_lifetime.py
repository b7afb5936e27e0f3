"""The warmer ends with the hub that manages it (a crashed hub leaves no warmer)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest
from traitlets.config import Config

from wbspawner.hub import hubconfig
from wbspawner.hub.settings import Settings
from wbspawner.model import Profiles
from wbspawner.warmer import app as warmer_app
from wbspawner.warmer.app import WarmerApp


def test_the_hub_names_itself_as_the_warmers_parent(
    profiles: Profiles, make_settings: Callable[..., Settings]
) -> None:
    c = Config()
    settings = make_settings(state_dir="/srv/hub", warmer_url="http://127.0.0.1:10101")
    hubconfig.apply(c, settings, profiles, environ={})
    (warmer,) = c.JupyterHub.services
    assert f"--WarmerApp.parent_pid={os.getpid()}" in warmer["command"]


def test_the_warmer_asks_the_shared_check() -> None:
    assert WarmerApp(parent_pid=1).parent_gone() is True
    assert WarmerApp(parent_pid=0).parent_gone() is False


async def test_serve_returns_at_once_when_the_hub_is_already_gone() -> None:
    app = WarmerApp(parent_pid=1, profiles_dir=["/nonexistent"])
    await asyncio.wait_for(app.serve(), 5)  # never reads profiles or the cluster


async def test_serving_stops_within_a_second_or_two_after_the_hub_dies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_parent = os.getppid()
    app = WarmerApp(parent_pid=real_parent)
    served = asyncio.Event()

    async def serve_until(stop: asyncio.Event) -> None:
        served.set()
        await stop.wait()

    monkeypatch.setattr(app, "_serve_until", serve_until)
    task = asyncio.create_task(app.serve())
    await asyncio.wait_for(served.wait(), 5)
    await asyncio.sleep(1.2)
    assert not task.done(), "stopped while the hub was alive"
    monkeypatch.setattr(warmer_app.os, "getppid", lambda: 1)  # the hub died
    began = time.monotonic()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - began < 2.5
