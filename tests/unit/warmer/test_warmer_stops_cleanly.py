"""The warmer service ends cleanly when the hub stops it (SIGINT, then SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from wbspawner.warmer.app import WarmerApp


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
async def test_a_stop_signal_ends_the_wait(
    sig: signal.Signals, caplog: pytest.LogCaptureFixture
) -> None:
    before = signal.getsignal(sig)
    waiting = asyncio.ensure_future(WarmerApp().until_stopped())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    os.kill(os.getpid(), sig)
    await asyncio.wait_for(waiting, timeout=5)
    assert signal.getsignal(sig) == before  # the process's own handling is back
    assert "Traceback" not in caplog.text
