"""Thin async adapter: ensure a user's Dask network policies exist in the cluster.

This module owns the Kubernetes calls that put the manifests of
:func:`wbspawner.gateway.netpol.dask_network_policies` into the Dask namespace:
create, and on a conflict read and replace only when the object differs. It
holds no policy of its own; what the policies say is decided in
:mod:`wbspawner.gateway.netpol`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes_asyncio.client import NetworkingV1Api
from kubernetes_asyncio.client.rest import ApiException

from wbspawner.gateway.netpol import GatewaySelector, Manifest, dask_network_policies

Log = logging.Logger | logging.LoggerAdapter[Any]
"""A logger, or an adapter such as a spawner's."""
DEFAULT_TIMEOUT = 10.0
"""Seconds all calls of one ensure may take before the spawn goes on without."""


async def _ensure_one(net: Any, namespace: str, body: Manifest) -> str:
    """Create or update one policy; return what was done.

    ``net`` is a ``NetworkingV1Api``, typed ``Any`` because the client is given
    plain manifests, which it serialises as they are.
    """
    name = body["metadata"]["name"]
    try:
        await net.create_namespaced_network_policy(namespace, body)
        return "created"
    except ApiException as err:
        if err.status != 409:
            raise
    current = await net.read_namespaced_network_policy(name, namespace)
    seen: Manifest = net.api_client.sanitize_for_serialization(current)
    labels = seen["metadata"].get("labels") or {}
    wanted_labels = body["metadata"]["labels"]
    if seen.get("spec") == body["spec"] and wanted_labels.items() <= labels.items():
        return "unchanged"
    meta = {**body["metadata"], "resourceVersion": seen["metadata"]["resourceVersion"]}
    await net.replace_namespaced_network_policy(
        name, namespace, {**body, "metadata": meta}
    )
    return "updated"


async def _ensure_all(
    net: Any, namespace: str, user: str, policies: list[Manifest], log: Log
) -> None:
    for body in policies:
        done = await _ensure_one(net, namespace, body)
        level = logging.DEBUG if done == "unchanged" else logging.INFO
        name = body["metadata"]["name"]
        log.log(
            level, "Dask network policy %s/%s for %s: %s", namespace, name, user, done
        )


def _reason(err: Exception, timeout: float) -> str:
    if isinstance(err, ApiException):
        return f"HTTP {err.status} {err.reason}"
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(err) or type(err).__name__


async def ensure_dask_network_policies(
    api: Any,
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
        api: a kubernetes_asyncio ``ApiClient``, or an API object that has one
            as ``api_client`` (KubeSpawner's ``self.api``).
        namespace: namespace of the Dask pods.
        user: the hub user name.
        log: where to report what happened.
        server_namespace: namespace of the user servers.
        gateway: the gateway release; default: its chart defaults in
            ``namespace``.
        timeout: seconds all calls together may take.
    """
    client = getattr(api, "api_client", api)
    gateway = gateway or GatewaySelector(namespace=namespace)
    try:
        policies = dask_network_policies(
            namespace, user, server_namespace=server_namespace, gateway_selector=gateway
        )
        async with asyncio.timeout(timeout):
            await _ensure_all(NetworkingV1Api(client), namespace, user, policies, log)
    except (ApiException, TimeoutError, OSError) as err:
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
