"""The memory a running server uses, sampled from its own metrics for the accounting.

This module owns the sampling loop of one server: every ``interval`` seconds
while it runs, and once more as it stops (:meth:`MemoryWatch.finish`), it reads
the server's memory (:meth:`wbspawner.adapters.jupyterserver.OwnServer.memory`) and,
when the peak rises, hands the new peak to the accounting
(:meth:`wbspawner.hub.accounting.Accounting.peaked`, which keeps the highest
value on the run's record). A server that does not answer (still starting,
an image without jupyter-resource-usage) is logged once and tried again at the
next sample; sampling never fails a server or its stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from wbspawner.adapters.jupyterserver import MemoryUse

Log = logging.Logger | logging.LoggerAdapter[Any]
Read = Callable[[], Awaitable[tuple[MemoryUse | None, str | None]]]
"""Returns the server's memory use, or why not (the adapter's answer)."""
Write = Callable[[int], Awaitable[Any]]
"""Records a new peak, MiB."""


class MemoryWatch:
    """Samples one running server's memory and records each new peak.

    Args:
        read: reads the server's memory.
        write: records a higher peak.
        interval: seconds between two samples while it runs (``0``: at the
            stop only).
        log: where failures go.
        who: the server, as the log names it.
    """

    def __init__(
        self, read: Read, write: Write, interval: float, log: Log, who: str
    ) -> None:
        self.read = read
        self.write = write
        self.interval = interval
        self.log = log
        self.who = who
        self.peak_mib: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._told = False

    def start(self) -> None:
        """Sample every ``interval`` seconds in the background (idempotent)."""
        if self.interval > 0 and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sample()

    async def sample(self) -> None:
        """Read the memory once; record it when it is a new peak."""
        try:
            use, why = await self.read()
        except Exception:  # a bug in reading: logged, sampling goes on
            self.log.exception("%s: reading its memory failed", self.who)
            return
        if use is None:
            if not self._told:
                self.log.warning("%s: memory not known: %s", self.who, why)
                self._told = True
            return
        if self.peak_mib is None or use.used_mib > self.peak_mib:
            self.peak_mib = use.used_mib
            await self.write(use.used_mib)

    async def finish(self) -> None:
        """Stop sampling after one last sample (the server is about to stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sample()
