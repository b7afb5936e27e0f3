"""When a container's probes run, and what their results do to it.

``watch`` runs a container's probes for one run of it, as the kubelet's prober
manager does: the startup probe first (nothing else runs until it passes; when
it fails for good the container is killed), then readiness and liveness side by
side, each from ``initialDelaySeconds`` after the container started, every
``periodSeconds``. Readiness sets the container's ``ready``; a liveness failure
kills the container, which then restarts by its pod's policy. Every failed
probe is an ``Unhealthy`` Warning event. A container without a readinessProbe is
Ready once its declared port accepts TCP (devcluster's stand-in for an image
that is ready when it listens; a real kubelet reports it Ready at once), or at
once when it declares none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devcluster.kubelet.probes import Prober, Result, real_period

_READY_POLL_S = 0.05


@dataclass
class ProbeTarget:
    """One run of a container, as its probes see it.

    Attributes:
        name: the container's name.
        spec: the container spec (its probes).
        port: its port to wait for when it has no readinessProbe.
        handle: runs a probe's handler with a timeout (seconds).
        event: records an Event (reason, message, type).
        report: reports the running container's ``ready`` and ``started``.
        kill: kills the container (with the message of the ``Killing`` event).
        real: turns simulated seconds into real ones.
        time_factor: real seconds per simulated second.
    """

    name: str
    spec: Mapping[str, Any]
    port: int | None
    handle: Callable[[Mapping[str, Any], float], Awaitable[Result]]
    event: Callable[[str, str, str], None]
    report: Callable[[bool, bool], None]
    kill: Callable[[str], None]
    real: Callable[[float], float]
    time_factor: float


async def watch(target: ProbeTarget) -> None:
    """Run a container's probes until it dies (the caller cancels this)."""
    spec = target.spec
    began = time.monotonic()
    if spec.get("startupProbe"):
        prober = Prober("Startup", spec["startupProbe"])
        if not await _until_passing(target, prober, began):
            return
    target.report(False, True)
    loops = []
    if spec.get("readinessProbe"):
        loops.append(_loop(target, Prober("Readiness", spec["readinessProbe"]), began))
    else:
        loops.append(_implicit_readiness(target))
    if spec.get("livenessProbe"):
        loops.append(_loop(target, Prober("Liveness", spec["livenessProbe"]), began))
    await asyncio.gather(*loops)


async def _implicit_readiness(target: ProbeTarget) -> None:
    interval = _READY_POLL_S
    while target.port is not None:
        result = await target.handle({"tcpSocket": {"port": target.port}}, 1.0)
        if result.ok:
            break
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, 1.0)
    target.report(True, True)


async def _wait_initial(target: ProbeTarget, prober: Prober, began: float) -> None:
    left = began + target.real(prober.initial_delay) - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)


async def _once(target: ProbeTarget, prober: Prober) -> bool | None:
    result = await target.handle(prober.spec, prober.timeout)
    if not result.ok:
        message = f"{prober.kind} probe failed: {result.message}".strip()
        target.event("Unhealthy", message, "Warning")
    return prober.record(result)


def _period(target: ProbeTarget, prober: Prober) -> float:
    return real_period(prober.period, target.time_factor or 1.0)


async def _until_passing(target: ProbeTarget, prober: Prober, began: float) -> bool:
    """Run the startup probe until it passes (True) or fails for good (kill)."""
    await _wait_initial(target, prober, began)
    while True:
        flip = await _once(target, prober)
        if flip is True:
            return True
        if flip is False:
            target.kill(
                f"Container {target.name} failed startup probe, will be restarted"
            )
            return False
        await asyncio.sleep(_period(target, prober))


async def _loop(target: ProbeTarget, prober: Prober, began: float) -> None:
    await _wait_initial(target, prober, began)
    while True:
        flip = await _once(target, prober)
        if prober.kind == "Readiness" and flip is not None:
            target.report(flip, True)
        elif prober.kind == "Liveness" and flip is False:
            target.kill(
                f"Container {target.name} failed liveness probe, will be restarted"
            )
            return
        await asyncio.sleep(_period(target, prober))
