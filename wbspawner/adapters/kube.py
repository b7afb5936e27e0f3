"""The warmer's thin Kubernetes adapter: plain JSON in and out.

This module owns the warmer's Kubernetes calls, made with kubernetes_asyncio
(the client KubeSpawner uses) without its model classes: responses are read as
JSON and bodies are plain dicts, so the rest of the warmer handles the objects
exactly as the API server sends them. It holds no policy.

The client is made in :meth:`Kube.connect` (never at import or in
``__init__``), from a kubeconfig file or the in-cluster service account.
"""

from __future__ import annotations

import json
from typing import Any

from wbspawner.errors import WbError


class KubeError(WbError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Kube:
    """Reads and writes the objects the warmer needs, as JSON dicts.

    Args:
        api_client: a ``kubernetes_asyncio.client.ApiClient``.
    """

    def __init__(self, api_client: Any) -> None:
        from kubernetes_asyncio import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.scheduling = client.SchedulingV1Api(api_client)

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        in_cluster: bool = False,
        api_host: str | None = None,
    ) -> Kube:
        """Return a connected adapter.

        Args:
            kubeconfig: kubeconfig file; ``None``: the default one.
            in_cluster: use the pod's service account instead of a kubeconfig.
            api_host: API URL overriding the configuration's server.

        Returns:
            The adapter (call :meth:`close` when done).
        """
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if in_cluster:
            # kubernetes_asyncio does not annotate this loader.
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            await config.load_kube_config(
                config_file=kubeconfig, client_configuration=configuration
            )
        if api_host:
            configuration.host = api_host
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.api_client.close()

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await method(*args, _preload_content=False, **kwargs)
        except OSError as err:
            raise KubeError(f"Kubernetes API unreachable: {err}") from err
        try:
            data = await response.read()
        finally:
            response.release()
        body = json.loads(data) if data else {}
        if not 200 <= response.status <= 299:
            message = body.get("message") if isinstance(body, dict) else None
            raise KubeError(
                f"{method.__name__}: {response.status} {message or data[:200]!r}",
                response.status,
            )
        return body

    async def _items(self, method: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return list((await self._call(method, *args, **kwargs)).get("items") or [])

    async def list_nodes(self) -> list[dict[str, Any]]:
        """List every Node."""
        return await self._items(self.core.list_node)

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """List the Pods of a namespace (optionally by label selector)."""
        extra = {"label_selector": label_selector} if label_selector else {}
        return await self._items(self.core.list_namespaced_pod, namespace, **extra)

    async def list_pvcs(self, namespace: str) -> list[dict[str, Any]]:
        """List the PersistentVolumeClaims of a namespace."""
        return await self._items(
            self.core.list_namespaced_persistent_volume_claim, namespace
        )

    async def list_pvs(self) -> list[dict[str, Any]]:
        """List every PersistentVolume."""
        return await self._items(self.core.list_persistent_volume)

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """List Events of a namespace (``None``: of every namespace)."""
        extra = {"field_selector": field_selector} if field_selector else {}
        if namespace is None:
            return await self._items(self.core.list_event_for_all_namespaces, **extra)
        return await self._items(self.core.list_namespaced_event, namespace, **extra)

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Pod and return it."""
        created: dict[str, Any] = await self._call(
            self.core.create_namespaced_pod, namespace, body
        )
        return created

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a Pod at once (a missing pod is not an error)."""
        try:
            await self._call(
                self.core.delete_namespaced_pod,
                name,
                namespace,
                grace_period_seconds=0,
            )
        except KubeError as err:
            if err.status != 404:
                raise

    async def ensure_priority_class(self, body: dict[str, Any]) -> bool:
        """Create a PriorityClass unless it exists.

        Returns:
            Whether it was created now.
        """
        name = body["metadata"]["name"]
        try:
            await self._call(self.scheduling.read_priority_class, name)
            return False
        except KubeError as err:
            if err.status != 404:
                raise
        try:
            await self._call(self.scheduling.create_priority_class, body)
        except KubeError as err:
            if err.status != 409:  # created meanwhile
                raise
            return False
        return True
