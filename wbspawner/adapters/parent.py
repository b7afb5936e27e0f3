"""The hub that manages a service process: is it still there.

JupyterHub starts its managed services (the warmer; the Dask dashboards front in
local mode) as its children and stops them when it stops. A hub killed with
SIGKILL stops nothing: its services are re-parented (to PID 1 or a subreaper)
and would keep acting and holding their ports, so the next hub's services could
not start. This module owns the check those services run:

- :func:`parent_gone`: whether the process that started this one is gone;
- :func:`watch_parent`: set an event once it is (checked now, then every
  second), for the service's main loop to end on;
- :func:`until_signal`: wait for SIGINT, SIGTERM or such an event.

The parent's PID is passed on the command line by the hub
(``--<App>.parent_pid``); ``getppid`` changes for good when that parent dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from tornado.ioloop import PeriodicCallback

CHECK_INTERVAL_S = 1.0
"""Seconds between two looks at the parent."""

PARENT_PID_HELP = """PID of the hub that manages this service; 0: none.

When set, the service stops within a second of that process no longer being its
parent (the hub died without stopping it), so that a crashed hub leaves nothing
behind holding the service's port. The hub sets it to its own PID for the
services it starts."""
"""The help of every service's ``parent_pid`` trait."""


def parent_gone(parent_pid: int) -> bool:
    """Return whether ``parent_pid`` is set and no longer this process's parent.

    Args:
        parent_pid: the managing hub's PID; 0 means unmanaged (never gone).

    Returns:
        True once the parent died (this process was re-parented).
    """
    return bool(parent_pid) and os.getppid() != parent_pid


def watch_parent(
    parent_pid: int,
    stop: asyncio.Event,
    log: logging.Logger | logging.LoggerAdapter[Any],
    service: str,
) -> PeriodicCallback | None:
    """Set ``stop`` once the managing hub is gone, checking now and every second.

    Args:
        parent_pid: the managing hub's PID; 0: nothing is watched.
        stop: set (once) when the parent is gone.
        log: where the stop is announced, at warning level.
        service: the service's name, for that line.

    Returns:
        The running check (stop it when the service ends), or ``None`` when
        nothing is watched.
    """
    if not parent_pid:
        return None

    def check() -> None:
        if parent_gone(parent_pid) and not stop.is_set():
            log.warning(
                "%s: the hub (pid %s) that manages this service is gone; stopping",
                service,
                parent_pid,
            )
            stop.set()

    check()
    watch = PeriodicCallback(check, CHECK_INTERVAL_S * 1000)
    watch.start()
    return watch


async def until_signal(stop: asyncio.Event) -> None:
    """Return when the process gets SIGINT or SIGTERM, or ``stop`` is set.

    The hub stops its services with SIGINT, then SIGTERM; either ends the
    service cleanly instead of with a ``KeyboardInterrupt`` traceback.

    Args:
        stop: also ends the wait when set (the managing hub is gone).
    """
    loop = asyncio.get_running_loop()
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in before:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig, handler in before.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)
