"""Ensure a user's Dask network policies exist in the cluster.

This module owns what is done with the manifests of
:func:`wbspawner.gateway.netpol.dask_network_policies`: each is created in the
Dask namespace, and on a conflict read and replaced only when it differs. The
calls go through :class:`wbspawner.adapters.kube.Kube` (the hub passes one over
KubeSpawner's own client); what the policies say is decided in
:mod:`wbspawner.gateway.netpol`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from wbspawner.adapters.kube import Kube, api_path
from wbspawner.errors import KubeError
from wbspawner.gateway.netpol import GatewaySelector, Manifest, dask_network_policies

Log = logging.Logger | logging.LoggerAdapter[Any]
"""A logger, or an adapter such as a spawner's."""
DEFAULT_TIMEOUT = 10.0
"""Seconds all calls of one ensure may take before the spawn goes on without."""
GROUP = "networking.k8s.io/v1"


async def _ensure_one(kube: Kube, namespace: str, body: Manifest) -> str:
    """Create or update one policy; return what was done."""
    name = body["metadata"]["name"]
    try:
        await kube.create(api_path("networkpolicies", namespace, group=GROUP), body)
        return "created"
    except KubeError as err:
        if err.status != 409:
            raise
    path = api_path("networkpolicies", namespace, name, group=GROUP)
    seen = await kube.get(path)
    if seen is None:  # deleted since the conflict: the next ensure creates it
        raise KubeError(f"{path} vanished after a conflict", status=404)
    labels = seen["metadata"].get("labels") or {}
    wanted_labels = body["metadata"]["labels"]
    if seen.get("spec") == body["spec"] and wanted_labels.items() <= labels.items():
        return "unchanged"
    meta = {**body["metadata"], "resourceVersion": seen["metadata"]["resourceVersion"]}
    await kube.replace(path, {**body, "metadata": meta})
    return "updated"


async def _ensure_all(
    kube: Kube, namespace: str, user: str, policies: list[Manifest], log: Log
) -> None:
    for body in policies:
        done = await _ensure_one(kube, namespace, body)
        level = logging.DEBUG if done == "unchanged" else logging.INFO
        name = body["metadata"]["name"]
        log.log(
            level, "Dask network policy %s/%s for %s: %s", namespace, name, user, done
        )


def _reason(err: Exception, timeout: float) -> str:
    if isinstance(err, KubeError) and err.status:
        return f"HTTP {err.status} {err.reason}".strip()
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(err) or type(err).__name__


async def ensure_dask_network_policies(
    kube: Kube,
    namespace: str,
    user: str,
    log: Log,
    *,
    server_namespace: str,
    gateway: GatewaySelector | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Make sure the user's scheduler and worker policies exist and are current.

    Idempotent: an existing, equal policy is left alone (no write); a changed
    one is replaced. A failure (missing RBAC, API down, timeout) is logged and
    swallowed: it must not fail the user's spawn, because the server itself
    does not need Dask, and the static baseline
    (``helm-values/dask-networkpolicy.yaml``) keeps every Dask pod closed
    without these policies. The cost of a failure is that the user's new Dask
    clusters cannot connect their workers until the next successful ensure;
    it fails closed, never open.

    Args:
        kube: the Kubernetes adapter (the hub's: over KubeSpawner's client).
        namespace: namespace of the Dask pods.
        user: the hub user name.
        log: where to report what happened.
        server_namespace: namespace of the user servers.
        gateway: the gateway release; default: its chart defaults in
            ``namespace``.
        timeout: seconds all calls together may take.
    """
    gateway = gateway or GatewaySelector(namespace=namespace)
    try:
        policies = dask_network_policies(
            namespace, user, server_namespace=server_namespace, gateway_selector=gateway
        )
        async with asyncio.timeout(timeout):
            await _ensure_all(kube, namespace, user, policies, log)
    except (KubeError, TimeoutError) as err:
        # Expected trouble (no RBAC, no namespace, API unreachable or slow).
        log.warning(
            "Dask network policies for %s in %s not ensured (%s); the user's new "
            "Dask clusters stay closed until the next server start",
            user,
            namespace,
            _reason(err, timeout),
        )
    except Exception:
        # Not expected: keep the traceback, but the spawn still goes on.
        log.warning(
            "Dask network policies for %s in %s not ensured",
            user,
            namespace,
            exc_info=True,
        )
