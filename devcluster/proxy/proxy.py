"""``KubeProxy``: every Service port listens on its cluster IP and forwards.

kube-proxy programs the node so that a connection to ``clusterIP:port`` reaches
one of the Service's ready endpoints. devcluster's cluster IPs are loopback
addresses (``ClusterConfig.service_cidr``), so ``KubeProxy`` does it in user
space: a TCP listener per frontend of :func:`devcluster.proxy.table.service_table`
accepts a connection, picks one backend at random (kube-proxy's default
distribution; ``sessionAffinity`` is not honoured) and copies bytes both ways
until either side closes. A frontend without backends, or whose backend refuses,
resets the connection. The table follows the store: every change of a Service
or EndpointSlice recomputes it, opens listeners for new frontends and closes
those of Services that went. A frontend that cannot be bound (a port below 1024
without root, an address in use) is logged once and tried again at every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.proxy.table import Frontend, ServicePort, service_table

log = logging.getLogger(__name__)

_CHUNK = 65536


class KubeProxy:
    """Loopback listeners for every Service port of one store.

    Args:
        store: the cluster's objects.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.table: dict[Frontend, ServicePort] = {}
        self._servers: dict[Frontend, asyncio.AbstractServer] = {}
        self._failed: set[Frontend] = set()
        self._unsubscribe: Any = None
        self._pending: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Serve the Services there are now, then follow the store."""
        self._unsubscribe = self.store.subscribe(self._on_change)
        await self.sync()
        self._pending = asyncio.create_task(self._follow(), name="kube-proxy")

    async def stop(self) -> None:
        """Close every listener and connection."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
        for server in self._servers.values():
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    def _on_change(self, _event: str, kind: str, _obj: dict[str, Any]) -> None:
        if kind in ("services", "endpointslices"):
            self._dirty.set()

    async def _follow(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.002)  # let a burst of changes land first
            self._dirty.clear()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kube-proxy: sync failed")

    async def sync(self) -> None:
        """Recompute the table; open and close listeners to match it."""
        self.table = service_table(
            self.store.items_raw("services"), self.store.items_raw("endpointslices")
        )
        for frontend in [f for f in self._servers if f not in self.table]:
            self._servers.pop(frontend).close()
        self._failed &= set(self.table)
        for frontend in self.table:
            if frontend in self._servers:
                continue
            try:
                self._servers[frontend] = await asyncio.start_server(
                    lambda r, w, f=frontend: self._accept(f, r, w),
                    host=frontend[0],
                    port=frontend[1],
                    reuse_address=True,
                )
            except OSError as exc:
                if frontend in self._failed:
                    continue  # said once; tried again at every change
                self._failed.add(frontend)
                entry = self.table[frontend]
                log.warning(
                    "kube-proxy: Service %s/%s port %s cannot listen on %s:%d: %s",
                    entry.namespace,
                    entry.service,
                    entry.port_name or frontend[1],
                    *frontend,
                    exc,
                )

    def _accept(
        self,
        frontend: Frontend,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        task = asyncio.ensure_future(self._forward(frontend, reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _forward(
        self,
        frontend: Frontend,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        entry = self.table.get(frontend)
        backends = list(entry.backends) if entry is not None else []
        random.shuffle(backends)
        for host, port in backends[:1]:
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                break
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                for w in (writer, up_writer):
                    with contextlib.suppress(Exception):
                        w.close()
            return
        _reset(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close the other side."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        with contextlib.suppress(Exception):
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a reset, as a REJECT rule answers."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    writer.close()
