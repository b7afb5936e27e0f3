"""The one Kubernetes client of wbspawner: plain JSON in and out, by API path.

This module owns every call wbspawner makes to the Kubernetes API (the warmer,
the home move and its command line, the gateway's network policies, the
spawner's reads) and the only place a Kubernetes client is made. It sits on
kubernetes_asyncio's ``ApiClient``, which reads kubeconfig files (exec plugins
such as ``aws eks get-token``, client certificates) and refreshes the in-cluster
service account token, but uses none of its model classes: bodies are the dicts
the API server sends and takes. Every request is bounded by a timeout; a
failure raises :class:`~wbspawner.errors.KubeError` with the API's status and
reason. It holds no policy.

A :class:`Kube` is made by :meth:`Kube.connect` (its own connection, from a
kubeconfig or the pod's service account; never at import or in ``__init__``) or
by :meth:`Kube.of` around an existing client, so that the hub keeps the one
connection KubeSpawner made. :func:`kubeconfig_namespace` reads the namespace a
kubeconfig context names (the admin CLI's default).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from wbspawner.errors import KubeError

Obj = dict[str, Any]
"""A Kubernetes object as JSON (camelCase keys)."""

DEFAULT_TIMEOUT = 30.0
"""Seconds one request may take (connection, answer and body)."""
PAGE_SIZE = 500
"""Objects per page of a list (``limit``; the rest follows with ``continue``)."""
MERGE_PATCH = "application/merge-patch+json"
_FINISHED_PHASES = ("Succeeded", "Failed")


def api_path(
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    *,
    group: str = "",
) -> str:
    """Return the API path of a collection or of one object.

    Args:
        resource: the plural resource name (``pods``, ``networkpolicies`` …).
        namespace: its namespace; ``None`` for cluster-scoped resources (and
            for lists across every namespace).
        name: the object's name; ``None`` for the collection.
        group: ``group/version`` (``networking.k8s.io/v1``); empty: core ``v1``.

    Returns:
        The path, e.g. ``/api/v1/namespaces/jhub/pods/jupyter-bob``.
    """
    path = f"/apis/{group}" if group else "/api/v1"
    if namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{resource}"
    return path + (f"/{quote(name, safe='')}" if name is not None else "")


def kubeconfig_namespace(path: str, context: str | None = None) -> str | None:
    """Return the namespace a kubeconfig context names, as ``kubectl`` uses it.

    Args:
        path: the kubeconfig file.
        context: a context of the file; ``None``: its ``current-context``.

    Returns:
        The namespace, or ``None`` when the file cannot be read or parsed, the
        context does not exist, or it names no namespace.
    """
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    name = context or config.get("current-context")
    for entry in config.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            namespace = (entry.get("context") or {}).get("namespace")
            return str(namespace) if namespace else None
    return None


class Kube:
    """Kubernetes objects as JSON dicts, over a kubernetes_asyncio ``ApiClient``.

    Args:
        api_client: a ``kubernetes_asyncio.client.ApiClient``.
        timeout: seconds per request.
        forbidden_hint: added to the message of a 401 or 403 answer (which
            permissions the caller needs).
        owns_client: :meth:`close` closes the client (it was made here).
    """

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        forbidden_hint: str = "",
        owns_client: bool = False,
    ) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.forbidden_hint = forbidden_hint
        self._owns_client = owns_client

    @classmethod
    def of(cls, api: Any, *, timeout: float = DEFAULT_TIMEOUT) -> Kube:
        """Return an adapter over an existing client (which stays the owner's).

        Args:
            api: an ``ApiClient``, or an API object holding one as
                ``api_client`` (KubeSpawner's ``self.api``).
            timeout: seconds per request.

        Returns:
            The adapter; :meth:`close` leaves the client open.
        """
        return cls(getattr(api, "api_client", api), timeout=timeout)

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        context: str | None = None,
        in_cluster: bool = False,
        api_host: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        forbidden_hint: str = "",
    ) -> Kube:
        """Return an adapter with its own connection.

        Args:
            kubeconfig: kubeconfig file; ``None``: the default one.
            context: a context of the kubeconfig; ``None``: its current one.
            in_cluster: use the pod's service account instead of a kubeconfig.
            api_host: API URL overriding the configuration's server.
            timeout: seconds per request.
            forbidden_hint: see :class:`Kube`.

        Returns:
            The adapter (call :meth:`close` when done).

        Raises:
            KubeError: the kubeconfig is missing or invalid, or (in-cluster) this
                is not a pod.
        """
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if in_cluster:
            try:
                # kubernetes_asyncio does not annotate this loader.
                config.load_incluster_config(  # type: ignore[no-untyped-call,unused-ignore]
                    client_configuration=configuration
                )
            except config.ConfigException as err:
                raise KubeError(f"not running inside a Kubernetes pod: {err}") from err
        else:
            try:
                # persist_config=False: never rewrite the admin's kubeconfig.
                await config.load_kube_config(
                    config_file=kubeconfig,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (config.ConfigException, OSError) as err:
                where = kubeconfig or "(default kubeconfig)"
                raise KubeError(f"cannot use kubeconfig {where}: {err}") from err
        if api_host:
            configuration.host = api_host
        return cls(
            client.ApiClient(configuration),
            timeout=timeout,
            forbidden_hint=forbidden_hint,
            owns_client=True,
        )

    async def close(self) -> None:
        """Close the connection, if :meth:`connect` made it."""
        if self._owns_client:
            await self.api_client.close()

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    # ------------------------------------------------------------ requests
    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request; return the decoded JSON answer (``None`` when empty).

        Args:
            method: ``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
            path: the API path (see :func:`api_path`).
            body: the JSON body, if any.
            query: query parameters.
            content_type: the body's type (``application/merge-patch+json`` …).

        Returns:
            The decoded answer.

        Raises:
            KubeError: an error status, no answer within the timeout, or no
                connection.
        """
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.api_client.call_api(
                    path,
                    method,
                    query_params=dict(query) if query else None,
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
                try:
                    data = await response.read()
                finally:
                    response.release()
        except TimeoutError as err:
            raise KubeError(
                f"no answer from the Kubernetes API at {self.host} within "
                f"{self.timeout:g} s ({method} {path})"
            ) from err
        except (OSError, aiohttp.ClientError) as err:
            raise KubeError(
                f"cannot reach the Kubernetes API at {self.host}: {err}"
            ) from err
        if not 200 <= response.status <= 299:
            raise self._refused(method, path, response.status, data)
        return json.loads(data) if data else None

    def _refused(self, method: str, path: str, status: int, data: bytes) -> KubeError:
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        said = str(answer.get("message") or data[:200].decode(errors="replace"))
        reason = str(answer.get("reason") or "")
        code = f"{status} {reason}".strip()
        if status not in (401, 403):
            message = f"{method} {path}: {code}: {said}"
        else:
            message = f"the Kubernetes API refused {method} {path} ({code}): {said}"
            if self.forbidden_hint:
                message += f"; {self.forbidden_hint}"
        return KubeError(message, status=status, reason=reason)

    async def get(self, path: str) -> Obj | None:
        """Return the object at ``path``, or ``None`` when it does not exist."""
        try:
            found: Obj = await self.request("GET", path)
        except KubeError as err:
            if err.status == 404:
                return None
            raise
        return found

    async def list_items(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        """Return every object of a collection, following ``continue`` pages."""
        query = {"limit": str(PAGE_SIZE)}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        items: list[Obj] = []
        while True:
            page = await self.request("GET", path, query=query) or {}
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = {**query, "continue": str(token)}

    async def create(self, path: str, body: Obj) -> Obj:
        """Create an object in the collection at ``path`` and return it."""
        created: Obj = await self.request("POST", path, body)
        return created

    async def replace(self, path: str, body: Obj) -> Obj:
        """Replace the object at ``path`` (``metadata.resourceVersion`` guards it)."""
        replaced: Obj = await self.request("PUT", path, body)
        return replaced

    async def patch(self, path: str, patch: Obj) -> Obj:
        """Merge-patch (RFC 7386) the object at ``path`` and return it."""
        patched: Obj = await self.request(
            "PATCH", path, patch, content_type=MERGE_PATCH
        )
        return patched

    async def delete(self, path: str, *, grace_period_s: int | None = None) -> bool:
        """Delete the object at ``path``; ``False`` when it was already gone."""
        query = None
        if grace_period_s is not None:
            query = {"gracePeriodSeconds": str(grace_period_s)}
        try:
            await self.request("DELETE", path, query=query)
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------- nodes and pods
    async def list_nodes(self) -> list[Obj]:
        """List every Node."""
        return await self.list_items(api_path("nodes"))

    async def get_node(self, name: str) -> Obj | None:
        """Return a Node, or ``None``."""
        return await self.get(api_path("nodes", None, name))

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[Obj]:
        """List the Pods of a namespace (optionally by label selector)."""
        path = api_path("pods", namespace)
        return await self.list_items(path, label_selector=label_selector)

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        """Return a Pod, or ``None``."""
        return await self.get(api_path("pods", namespace, name))

    async def create_pod(self, namespace: str, body: Obj) -> Obj:
        """Create a Pod and return it."""
        return await self.create(api_path("pods", namespace), body)

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a Pod at once (a missing pod is not an error)."""
        await self.delete(api_path("pods", namespace, name), grace_period_s=0)

    async def pods_using_claim(self, namespace: str, claim: str) -> list[str]:
        """Return the names of pods that use a claim and have not finished."""
        return sorted(
            str(pod["metadata"]["name"])
            for pod in await self.list_pods(namespace)
            if (pod.get("status") or {}).get("phase") not in _FINISHED_PHASES
            and any(
                (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
                for v in (pod.get("spec") or {}).get("volumes") or []
            )
        )

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[Obj]:
        """List Events of a namespace (``None``: of every namespace)."""
        path = api_path("events", namespace)
        return await self.list_items(path, field_selector=field_selector)

    # ------------------------------------------------------- claims and PVs
    async def list_pvcs(self, namespace: str) -> list[Obj]:
        """List the PersistentVolumeClaims of a namespace."""
        return await self.list_items(api_path("persistentvolumeclaims", namespace))

    async def get_pvc(self, namespace: str, name: str) -> Obj | None:
        """Return a claim, or ``None``."""
        return await self.get(api_path("persistentvolumeclaims", namespace, name))

    async def create_pvc(self, namespace: str, body: Obj) -> Obj:
        """Create a claim."""
        return await self.create(api_path("persistentvolumeclaims", namespace), body)

    async def patch_pvc(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch a claim."""
        path = api_path("persistentvolumeclaims", namespace, name)
        return await self.patch(path, patch)

    async def delete_pvc(self, namespace: str, name: str) -> None:
        """Delete a claim (no error when it is already gone)."""
        await self.delete(api_path("persistentvolumeclaims", namespace, name))

    async def list_pvs(self, label_selector: str | None = None) -> list[Obj]:
        """List PersistentVolumes, optionally by a label selector."""
        path = api_path("persistentvolumes")
        return await self.list_items(path, label_selector=label_selector)

    async def get_pv(self, name: str) -> Obj | None:
        """Return a PV, or ``None``."""
        return await self.get(api_path("persistentvolumes", None, name))

    async def create_pv(self, body: Obj) -> Obj:
        """Create a PV."""
        return await self.create(api_path("persistentvolumes"), body)

    async def patch_pv(self, name: str, patch: Obj) -> Obj:
        """Merge-patch a PV."""
        return await self.patch(api_path("persistentvolumes", None, name), patch)

    async def delete_pv(self, name: str) -> None:
        """Delete a PV (no error when it is already gone)."""
        await self.delete(api_path("persistentvolumes", None, name))

    # ------------------------------------------------------------ priority
    async def ensure_priority_class(self, body: Obj) -> bool:
        """Create a PriorityClass unless it exists.

        Returns:
            Whether it was created now.
        """
        group = "scheduling.k8s.io/v1"
        name = body["metadata"]["name"]
        if await self.get(api_path("priorityclasses", None, name, group=group)):
            return False
        try:
            await self.create(api_path("priorityclasses", group=group), body)
        except KubeError as err:
            if err.status != 409:  # created meanwhile
                raise
            return False
        return True
