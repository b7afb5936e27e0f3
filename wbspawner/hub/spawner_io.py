"""What ``WorkbenchSpawner`` reads and waits for, outside the pure core.

This module owns the spawner's few reads of the cluster (the zone of a user's
bound home volume, the node a server's pod runs on), its watch for an
autoscaler that keeps refusing to start a node, the wait for the pod of a
start the hub was restarted during, and the watch for a running server's pod
being deleted (:func:`deletion_cause`), and the deletion of the pod of a
start that failed (:func:`delete_pod`). It decides nothing: the meaning
of what it reads comes from :mod:`wbspawner.homes.policy` and
:mod:`wbspawner.spawn.progress`. The cluster is read through
:class:`wbspawner.adapters.kube.Kube` (over KubeSpawner's client), whose every
call is bounded by its timeout. (The files other components leave next to the
hub are read by :mod:`wbspawner.adapters.statefiles`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wbspawner.adapters.kube import TRANSIENT, api_path
from wbspawner.errors import KubeError, UserFacingError
from wbspawner.homes.policy import zone_of_pv
from wbspawner.model import POOL_LABEL, ZONE_LABEL
from wbspawner.spawn import progress
from wbspawner.spawn.interruptions import Interruption, interruption_of
from wbspawner.spawn.reclaims import (
    SPOT_INTERRUPTION_REASON,
    Reclaim,
    reclaims_of_events,
    reclaims_of_nodes,
)

if TYPE_CHECKING:
    from wbspawner.adapters.kube import Kube


async def home_zone(kube: Kube, namespace: str, claim: str) -> str | None:
    """Return the zone of a user's bound home volume, if it exists.

    Args:
        kube: the Kubernetes adapter.
        namespace: the claim's namespace.
        claim: the home claim's name.

    Returns:
        The zone of the claim's volume; ``None`` when there is no claim, it is
        not bound yet, its PV is gone, or its volume names no zone.

    Raises:
        KubeError: the API refused or did not answer (other than 404).
    """
    pvc = await kube.get_pvc(namespace, claim)
    volume = ((pvc or {}).get("spec") or {}).get("volumeName")
    if not volume:
        return None
    pv = await kube.get_pv(str(volume))
    return zone_of_pv(pv) if pv is not None else None


async def node_of_pod(
    kube: Kube, namespace: str, pod_name: str
) -> dict[str, Any] | None:
    """Return the node a pod runs on; ``None`` when unscheduled or gone.

    Args:
        kube: the Kubernetes adapter.
        namespace: the pod's namespace.
        pod_name: the pod's name.

    Returns:
        The core/v1 Node.

    Raises:
        KubeError: the API refused or did not answer (other than 404).
    """
    pod = await kube.get_pod(namespace, pod_name)
    name = ((pod or {}).get("spec") or {}).get("nodeName")
    return await kube.get_node(str(name)) if name else None


async def recent_reclaims(
    kube: Kube, pool: str, zone: str, now: datetime
) -> list[Reclaim]:
    """Return the spot reclaims the cluster shows for a pool's nodes in a zone.

    Nodes of the pool in the zone under a notice now, and every
    ``SpotInterruption`` Event the API server still keeps (any namespace:
    aws-node-termination-handler records them about Nodes, in ``default``);
    :func:`wbspawner.spawn.reclaims.avoidance` keeps those of the pool's types
    in the zone, within its window.

    Args:
        kube: the Kubernetes adapter.
        pool: the pool's name.
        zone: the zone.
        now: the current time (of a taint without a time).

    Returns:
        The reclaims, in no order.

    Raises:
        KubeError: the API refused or did not answer.
    """
    nodes = await kube.list_items(
        api_path("nodes"), label_selector=f"{POOL_LABEL}={pool},{ZONE_LABEL}={zone}"
    )
    events = await kube.list_events(None, f"reason={SPOT_INTERRUPTION_REASON}")
    return reclaims_of_nodes(nodes, now) + reclaims_of_events(events)


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


async def pump(
    items: AsyncIterator[dict[str, Any]], queue: asyncio.Queue[dict[str, Any] | None]
) -> None:
    """Put every item of ``items`` into ``queue``, then ``None`` (also on an error).

    The spawner merges KubeSpawner's progress with lines of its own this way.

    Args:
        items: an async iterator (KubeSpawner's ``progress()``).
        queue: where the items go.
    """
    try:
        async for item in items:
            await queue.put(item)
    finally:
        queue.put_nowait(None)


async def pod_outcome(
    pod: Callable[[], Mapping[str, Any] | None],
    running: Callable[[Mapping[str, Any]], bool],
    refusal: Awaitable[str],
    timeout_s: float,
    interval_s: float = 1.0,
) -> str | None:
    """Wait until a pod runs; return ``None`` then, or why it will not.

    For a start the hub did not see through (it restarted meanwhile): the pod
    is there, and nobody else waits for it.

    Args:
        pod: returns the pod as last seen (KubeSpawner's reflector), ``None``
            when it is gone.
        running: whether a pod runs and answers (KubeSpawner's
            ``is_pod_running``).
        refusal: :func:`capacity_refusal` for the pod (cancelled on the way out).
        timeout_s: how long to wait at most.
        interval_s: seconds between two looks.

    Returns:
        ``None`` once the pod runs; else what happened, for the log.
    """
    loop = asyncio.get_running_loop()
    watch = asyncio.ensure_future(refusal)
    deadline = loop.time() + timeout_s
    try:
        while True:
            current = pod()
            if current is None:
                return "its pod is gone"
            if running(current):
                return None
            if watch.done():
                return f"no node can be started for it: {watch.result()}"
            if loop.time() >= deadline:
                return f"its pod did not run within {timeout_s:g} s"
            await asyncio.sleep(interval_s)
    finally:
        watch.cancel()


async def deletion_cause(
    kube: Kube,
    pod: Callable[[], Mapping[str, Any] | None],
    interval_s: float = 0.25,
) -> tuple[Interruption | None, bool]:
    """Wait until a running server's pod is deleted or gone; why, if its node says.

    The pod is deleted with a grace period when its node is drained (a spot
    reclaim, maintenance, a scale-in: :mod:`wbspawner.spawn.interruptions`
    reads which from the node's taints) and when the hub stops the server.
    The node is read once, when the pod has a deletion time or is gone (a
    pod can end between two looks; its node outlives it).

    Args:
        kube: the Kubernetes adapter.
        pod: returns the pod as last seen (KubeSpawner's reflector), ``None``
            when it is gone.
        interval_s: seconds between two looks at the reflector's copy.

    Returns:
        The interruption its node announces (``None``: none, a stop), and
        whether the pod was still there (its server may still be told).

    Raises:
        KubeError: the API refused or did not answer the node's read.
    """
    node = ""
    while True:
        current = pod()
        if current is not None:
            node = str((current.get("spec") or {}).get("nodeName") or node)
        deleting = bool(
            ((current or {}).get("metadata") or {}).get("deletionTimestamp")
        )
        if current is None or deleting:
            found = interruption_of(await kube.get_node(node)) if node else None
            return found, current is not None
        await asyncio.sleep(interval_s)


async def delete_pod(
    kube: Kube,
    namespace: str,
    name: str,
    retry_for: float,
    interval_s: float = 1.0,
    grace_s: int = 0,
) -> str | None:
    """Delete a pod, trying again for ``retry_for`` seconds; ``None`` once done.

    The pod of a start that failed (it may exist although the hub's copy of
    the cluster does not show it yet: its create was answered late, or not at
    all), so it is deleted by name; or of a stop whose first delete failed. A
    pod that is already gone is fine.

    Args:
        kube: the Kubernetes adapter.
        namespace: the pod's namespace.
        name: the pod's name.
        retry_for: seconds to keep trying while the API does not answer or
            answers a transient error.
        interval_s: seconds between two tries.
        grace_s: the pod's grace period, seconds.

    Returns:
        ``None`` when the pod was deleted or was not there; else why not.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    while True:
        try:
            await kube.delete(api_path("pods", namespace, name), grace_period_s=grace_s)
            return None
        except KubeError as err:
            if err.status not in (0, *TRANSIENT) or loop.time() >= deadline:
                return str(err)
        await asyncio.sleep(interval_s)
