"""What ``WorkbenchSpawner`` reads and waits for, outside the pure core.

This module owns the spawner's few reads of the cluster (the zone of a user's
bound home volume, the node a server's pod runs on) and its watch for an
autoscaler that keeps refusing to start a node. It decides nothing: the meaning
of what it reads comes from :mod:`wbspawner.homes.policy` and
:mod:`wbspawner.spawn.progress`. Every Kubernetes call is bounded by a timeout.
(The files other components leave next to the hub are read by
:mod:`wbspawner.adapters.statefiles`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes_asyncio.client.rest import ApiException

from wbspawner.errors import UserFacingError
from wbspawner.homes.policy import zone_of_pv
from wbspawner.spawn import progress


async def home_zone(api: Any, namespace: str, claim: str, timeout: float) -> str | None:
    """Return the zone of a user's bound home volume, if it exists.

    Args:
        api: a kubernetes_asyncio ``CoreV1Api``.
        namespace: the claim's namespace.
        claim: the home claim's name.
        timeout: seconds per API call.

    Returns:
        The zone of the claim's volume; ``None`` when there is no claim, it is
        not bound yet, or its volume names no zone.

    Raises:
        ApiException: any API error other than 404.
    """
    try:
        read = api.read_namespaced_persistent_volume_claim
        pvc = await asyncio.wait_for(read(claim, namespace), timeout)
        volume = pvc.spec.volume_name if pvc.spec else None
        if not volume:
            return None
        pv = await asyncio.wait_for(api.read_persistent_volume(volume), timeout)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return zone_of_pv(api.api_client.sanitize_for_serialization(pv))


async def node_of_pod(
    api: Any, namespace: str, pod_name: str, timeout: float
) -> dict[str, Any] | None:
    """Return the node a pod runs on, as a dict; ``None`` when unscheduled.

    Args:
        api: a kubernetes_asyncio ``CoreV1Api``.
        namespace: the pod's namespace.
        pod_name: the pod's name.
        timeout: seconds per API call.

    Returns:
        The core/v1 Node.
    """
    pod = await asyncio.wait_for(api.read_namespaced_pod(pod_name, namespace), timeout)
    name = pod.spec.node_name if pod.spec else None
    if not name:
        return None
    node = await asyncio.wait_for(api.read_node(name), timeout)
    result: dict[str, Any] = api.api_client.sanitize_for_serialization(node)
    return result


async def capacity_refusal(
    events: Callable[[], Sequence[Any]],
    context: Callable[[], progress.ProgressContext | None],
    grace_s: float,
) -> str:
    """Return a failure once the autoscaler has refused a node for ``grace_s``.

    Args:
        events: returns the pod's events so far (KubeSpawner's ``events``).
        context: returns the spawn's progress context, ``None`` when unknown.
        grace_s: how long the refusal must last, seconds.

    Returns:
        The message for the user (never returns before that).
    """
    loop = asyncio.get_running_loop()
    since: float | None = None
    while True:
        await asyncio.sleep(1.0)
        ctx = context()
        failure = progress.capacity_failure(events(), ctx) if ctx else None
        if failure is None:
            since = None
        elif since is None:
            since = loop.time()
        elif loop.time() - since >= grace_s:
            return failure


async def first_outcome(
    inner: asyncio.Future[Any],
    watch: asyncio.Future[str],
    timeout_message: Callable[[], str | None],
) -> tuple[Any, UserFacingError | None]:
    """Wait for a start or for the capacity watch to give up, whichever is first.

    Whatever has not finished is cancelled on the way out (also when the caller
    is cancelled because the hub gave up waiting).

    Args:
        inner: KubeSpawner's start.
        watch: :func:`capacity_refusal`.
        timeout_message: what to tell the user when the start timed out, or
            ``None`` to let the timeout through as it is.

    Returns:
        The start's result and ``None``, or ``None`` and the refusal to show.

    Raises:
        Exception: whatever the start raised (other than an explained timeout).
    """
    try:
        await asyncio.wait({inner, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not inner.done():
            refusal = UserFacingError(
                watch.result(), reason="capacity", status_code=503
            )
            return None, refusal
        timed_out = not inner.cancelled() and isinstance(
            inner.exception(), TimeoutError
        )
        message = timeout_message() if timed_out else None
        if message is None:
            return inner.result(), None
        return None, UserFacingError(message, reason="timeout", status_code=504)
    finally:
        watch.cancel()
        if not inner.done():
            inner.cancel()  # refused, or the hub gave up waiting for us
