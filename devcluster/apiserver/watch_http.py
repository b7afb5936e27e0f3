"""Watch streams over HTTP: chunked JSON lines until ``timeoutSeconds``.

The stream starts with the replay the store computed (from a resourceVersion,
or synthetic ADDED events for the current state), then live events. A too-old
resourceVersion is answered, like the apiserver does, with HTTP 200 and one
``ERROR`` event carrying a 410 Expired Status. BOOKMARKs are only sent when the
client asked for them (``allowWatchBookmarks``); KubeSpawner's reflector would
crash on one.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devcluster.apiserver import tables
from devcluster.apiserver.routes import JSON, TRUE, Route, int_param
from devcluster.apiserver.store import ListPage, Store, Watch, WatchEvent
from devcluster.errors import ApiError


async def serve_watch(
    request: web.Request, store: Store, route: Route, name: str | None = None
) -> web.StreamResponse:
    """Stream watch events until ``timeoutSeconds``, the client leaves or shutdown."""
    q = request.query
    fields = q.get("fieldSelector", "")
    if name is not None:
        fields = ",".join(f for f in (fields, f"metadata.name={name}") if f)
    timeout = int_param(q, "timeoutSeconds")
    if timeout is None:
        # the apiserver's spread of its min-request-timeout (1800 s)
        timeout = random.randint(1800, 3600)
    response = web.StreamResponse(
        headers={"Content-Type": JSON, "Cache-Control": "no-cache"}
    )
    try:
        watch = store.open_watch(
            route.res.plural,
            route.namespace,
            q.get("resourceVersion"),
            q.get("labelSelector", ""),
            fields,
        )
    except ApiError as exc:
        if exc.code != 410:
            raise
        response.enable_chunked_encoding()
        await response.prepare(request)
        line = json.dumps({"type": "ERROR", "object": exc.status()}) + "\n"
        await response.write(line.encode())
        await response.write_eof()
        return response
    stream = _Stream(
        route,
        bookmarks=q.get("allowWatchBookmarks") in TRUE,
        initial=watch.queue.qsize() if q.get("sendInitialEvents") in TRUE else -1,
        table=tables.wants_table(request.headers.get("Accept", "")),
        include_object=q.get("includeObject", ""),
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await _pump(request, response, store, watch, float(timeout), stream)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watch.close()
    try:
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


@dataclass
class _Stream:
    """How one watch stream renders its events."""

    route: Route
    bookmarks: bool
    initial: int
    """Events before the initial-events-end BOOKMARK (-1: none asked for)."""
    table: bool
    """kubectl asked for ``as=Table``: each event carries a one-row Table."""
    include_object: str
    sent: int = 0
    columns_sent: bool = False

    def encode(self, item: tuple[str, WatchEvent]) -> bytes:
        """Return the JSON line of one event."""
        self.sent += 1
        event_type, ev = item
        if not self.table:
            return ev.wire(event_type)
        page = ListPage([ev.obj], str(ev.rv))
        table = tables.table_for(self.route.res, page, self.include_object)
        if self.columns_sent:  # like the apiserver: columns in the first event only
            table["columnDefinitions"] = []
        self.columns_sent = True
        return (json.dumps({"type": event_type, "object": table}) + "\n").encode()

    def bookmark(self, rv: int, initial_end: bool = False) -> bytes:
        """Return a BOOKMARK line at ``rv``."""
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        res = self.route.res
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        return (json.dumps({"type": "BOOKMARK", "object": obj}) + "\n").encode()


async def _pump(
    request: web.Request,
    response: web.StreamResponse,
    store: Store,
    watch: Watch,
    timeout: float,
    stream: _Stream,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if stream.initial == 0 and stream.bookmarks:
        await response.write(stream.bookmark(store.resource_version, True))
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        wait = min(remaining, 5.0)
        item = await watch.next(timeout=wait)
        if item is None:
            if watch.closed:
                return
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            if stream.bookmarks and wait == 5.0:
                await response.write(stream.bookmark(store.resource_version))
            continue
        chunk = [stream.encode(item)]
        while not watch.queue.empty() and len(chunk) < 256:
            nxt = watch.queue.get_nowait()
            if nxt is None:
                watch.closed = True
                break
            chunk.append(stream.encode(nxt))
        if 0 < stream.initial <= stream.sent and stream.bookmarks:
            chunk.append(stream.bookmark(store.resource_version, True))
            stream.initial = -1
        await response.write(b"".join(chunk))
