"""The machinery shared by devcluster's control loops.

This module owns ``Loop`` (a pass on every relevant store change or every period,
with warnings not repeated within a minute of simulated time), the Event source
names and :func:`emit`. Every delay is simulated seconds scaled by
``ClusterConfig.time_factor``; boto3 calls run in worker threads, store calls on
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.predicates import meta_of
from devcluster.errors import ApiError

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SCHEDULER = "default-scheduler"
AUTOSCALER = "cluster-autoscaler"
ATTACHER = "attachdetach-controller"
PROVISIONER = "ebs.csi.aws.com_ebs-csi-controller"
PV_CONTROLLER = "persistentvolume-controller"
NTH = "aws-node-termination-handler"
SPOT_ITN_TAINT = "aws-node-termination-handler/spot-itn"
EVENT_REPEAT_S = 60.0
"""Simulated seconds before an unchanged warning is emitted again."""


def emit(
    store: Store,
    obj: Mapping[str, Any],
    reason: str,
    message: str,
    source: str,
    type_: str = "Normal",
    annotations: Mapping[str, str] | None = None,
) -> None:
    """Record an Event about ``obj``; a failure to record it is only logged."""
    try:
        store.emit_event(
            dict(obj),
            reason,
            message,
            type_=type_,
            source=source,
            annotations=annotations,
        )
    except ApiError as err:
        log.info("event %s on %s not recorded: %s", reason, ns_name(obj), err.message)


def ns_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    """Return (namespace, name) of an object."""
    return str(meta_of(obj).get("namespace", "")), str(meta_of(obj).get("name", ""))


class Loop:
    """A control loop: ``run_pass`` on a store change of ``kinds`` or every ``period``.

    Args:
        store: the object store.
        config: cluster settings.
        kinds: plural names whose changes wake the loop.
        period_s: simulated seconds between passes without changes.
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        kinds: frozenset[str],
        period_s: float,
    ) -> None:
        self.store = store
        self.config = config
        self.kinds = kinds
        self.period = max(config.real(period_s), 0.02)
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._warned: dict[tuple[str, str], tuple[str, float]] = {}
        self.passes = 0

    def on_change(self, _event: str, kind: str, _obj: dict[str, Any]) -> None:
        """Store subscriber: wake the loop when one of its kinds changed."""
        if kind in self.kinds:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        """Start the loop task."""
        self._task = asyncio.create_task(self._run(), name=type(self).__name__)

    async def stop(self) -> None:
        """Stop the loop task and wait for it."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
        # cancellation that arrives as the event is set, and the loop never stops.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.period):
                    await self._wake.wait()
            await asyncio.sleep(0.002)  # let a burst of changes land first
            self._wake.clear()
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", type(self).__name__)
            self.passes += 1

    async def run_pass(self) -> None:
        """One reconcile pass (subclasses)."""
        raise NotImplementedError

    def warn_once(
        self, obj: Obj, reason: str, message: str, source: str, type_: str = "Warning"
    ) -> None:
        """Emit an Event unless the same one went out within ``EVENT_REPEAT_S``."""
        key = (str(meta_of(obj).get("uid", "")), reason)
        last = self._warned.get(key)
        now = time.monotonic()
        if (
            last is not None
            and last[0] == message
            and now - last[1] < self.config.real(EVENT_REPEAT_S)
        ):
            return
        self._warned[key] = (message, now)
        with contextlib.suppress(ApiError):
            self.store.emit_event(obj, reason, message, type_=type_, source=source)

    def forget_warnings(self, alive: set[str]) -> None:
        """Drop remembered warnings of objects that are gone."""
        self._warned = {k: v for k, v in self._warned.items() if k[0] in alive}
