"""The accounting loop stops when cancelled, whatever it was waiting for.

``test_database_failure_is_logged_not_raised`` hung until pytest's timeout in
about one run in eight on a loaded machine. The cause: the loop waited for its
wake-up event with ``asyncio.wait_for``, which on Python 3.11 swallows a
cancellation that arrives in the same loop iteration as the event is set (it
returns the event's result instead); the loop then went round once more and
``cleanup()`` waited for it forever. The test below sets the event and cancels
in the same iteration, every time, so it does not depend on load.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.unit.gateway.accounting_support import Accounted, accounted


def backend(tmp_path: Path) -> Accounted:
    return accounted(f"sqlite:///{tmp_path / 'costs.sqlite'}")


async def finishes(coro: Any, timeout: float = 10.0) -> bool:
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
    return bool(done)


async def test_cleanup_ends_the_loop_cancelled_as_it_is_woken(tmp_path: Path) -> None:
    b = backend(tmp_path)
    await b.setup(None)
    await asyncio.sleep(0)  # the loop now waits for its wake-up event
    await b.on_cluster_heartbeat("c1", {"active_workers": ["w1"]})  # wakes it
    assert await finishes(b.cleanup()), "cleanup() waits for the loop forever"


async def test_cleanup_ends_the_loop_in_a_round(tmp_path: Path) -> None:
    b = backend(tmp_path)
    await b.setup(None)
    await asyncio.sleep(0)
    await b.on_cluster_heartbeat("c1", {"active_workers": ["w1"]})
    await asyncio.sleep(0)  # the loop starts its round
    assert await finishes(b.cleanup())
