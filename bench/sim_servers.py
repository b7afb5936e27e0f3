"""Stand-ins for users' servers on a devcluster whose kubelet only simulates pods.

In ``sim`` mode a pod runs nothing, so nothing would answer the hub's check that
a new server is up (JupyterHub polls ``http://<pod IP>:8888/user/<name>/`` until
it answers) and every spawn would time out. :class:`SimServers` watches the
hub's server pods and, once a pod runs with its IP, listens on that address and
port in this process and answers every request with ``200`` and the hub's
version header, as a single-user server does; when the pod goes, so does the
listener. One process holds a thousand such listeners; a thousand
``jupyterhub-singleuser`` processes would not fit on two cores.

It also records, per user, when the pod was first seen Ready and on which node,
and per node when it was first seen Ready (the monotonic clock of this
process): the scale benchmark's spawn timings come from these.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

USER_KEY = "hub.jupyter.org/username"
SERVER_PORT = 8888


class _Answer(asyncio.Protocol):
    """Answer one HTTP request with 200, then close (enough for the hub's check)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer and self.transport is not None:
            body = b'{"sim": true}'
            head = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/json\r\n"
                f"X-JupyterHub-Version: {self.version}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
            self.transport.close()


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


class SimServers:
    """Listen for each running server pod on its IP; record Ready times.

    Args:
        api: devcluster's API URL.
        namespace: the hub's namespace.
        version: the ``X-JupyterHub-Version`` to answer with.
    """

    def __init__(self, api: str, namespace: str, version: str) -> None:
        self.api = api.rstrip("/")
        self.namespace = namespace
        self.version = version
        self.listeners: dict[str, asyncio.Server] = {}
        """Pod name → its listener."""
        self.address_of: dict[str, str] = {}
        """Pod name → the IP its listener is on."""
        self.pod_ready: dict[str, float] = {}
        """User → when their current pod was first seen Ready."""
        self.pod_node: dict[str, str] = {}
        """User → node of their current pod."""
        self.node_ready: dict[str, float] = {}
        """Node → when it was first seen Ready."""
        self.errors: list[str] = []

    async def run(self, http: aiohttp.ClientSession) -> None:
        """Follow pods and nodes until cancelled."""
        pods = f"/api/v1/namespaces/{self.namespace}/pods"
        await asyncio.gather(
            self._follow(http, pods, "component=singleuser-server", self._pod),
            self._follow(http, "/api/v1/nodes", "", self._node),
        )

    async def close(self) -> None:
        """Close every listener."""
        for server in self.listeners.values():
            server.close()
        for server in self.listeners.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self.listeners.clear()

    def _close(self, name: str) -> None:
        """Stop listening for a pod (if this process listens for it)."""
        server = self.listeners.pop(name, None)
        self.address_of.pop(name, None)
        if server is not None:
            server.close()

    async def _follow(
        self, http: aiohttp.ClientSession, path: str, selector: str, on: Any
    ) -> None:
        """List, then watch from the list's resourceVersion; relist on 410."""
        params = {"labelSelector": selector} if selector else {}
        while True:
            try:
                async with http.get(self.api + path, params=params) as resp:
                    resp.raise_for_status()
                    listed = await resp.json()
                for obj in listed["items"]:
                    await on("ADDED", obj)
                version = listed["metadata"]["resourceVersion"]
                while version:
                    version = await self._watch(http, path, params, version, on)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (keep following, say why)
                self.errors.append(f"{path}: {exc!r}")
                await asyncio.sleep(0.5)

    async def _watch(
        self,
        http: aiohttp.ClientSession,
        path: str,
        params: dict[str, str],
        version: str,
        on: Any,
    ) -> str:
        """Follow one watch; return the version to resume from ('' to relist)."""
        query = {**params, "watch": "1", "resourceVersion": version}
        query["timeoutSeconds"] = "240"
        async with http.get(
            self.api + path, params=query, timeout=aiohttp.ClientTimeout(total=300)
        ) as resp:
            if resp.status == 410:
                return ""
            resp.raise_for_status()
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    return ""
                obj = event["object"]
                version = obj["metadata"].get("resourceVersion", version)
                await on(event["type"], obj)
        return version

    async def _node(self, kind: str, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        if kind != "DELETED" and _ready(node):
            self.node_ready.setdefault(name, time.monotonic())

    async def _pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        name = meta["name"]
        user = (meta.get("annotations") or {}).get(USER_KEY) or name
        status = pod.get("status") or {}
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self._close(name)
            if kind == "DELETED":
                self.pod_ready.pop(user, None)
            return
        ip = status.get("podIP")
        if ip and status.get("phase") == "Running" and name not in self.listeners:
            # A restarted server's pod may get the address of its predecessor
            # before this process has seen that one go: the address is the new
            # pod's now.
            for other, address in list(self.address_of.items()):
                if address == ip:
                    self._close(other)
            loop = asyncio.get_running_loop()
            try:
                self.listeners[name] = await loop.create_server(
                    lambda: _Answer(self.version), ip, SERVER_PORT, reuse_address=True
                )
                self.address_of[name] = ip
            except OSError as exc:
                self.errors.append(f"listen {ip}:{SERVER_PORT} for {name}: {exc}")
        if _ready(pod):
            self.pod_ready.setdefault(user, time.monotonic())
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                self.pod_node[user] = node
