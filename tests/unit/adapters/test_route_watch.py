"""A route watch the proxy dropped ends quietly; other errors are still errors.

The real ``dask_gateway_server`` proxy API (``Proxy``, externally managed, so no
Go process) serves its ``/api/v1/routes`` on a loopback aiohttp server run as
``dask-gateway-server`` runs it (an ``AppRunner`` that does not cancel handlers
when their client leaves); a raw socket plays the Go proxy, which closes its
watch after 60 seconds and opens a new one. The next route change then writes
to the closed watch.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from dask_gateway_server.proxy.core import Proxy

from wbspawner.adapters.route_watch import route_watch_middleware

TOKEN = "proxy-token"
LOG = logging.getLogger("test.route_watch")


class Served:
    """An aiohttp app on a free loopback port, as dask-gateway-server serves it."""

    def __init__(self, app: web.Application) -> None:
        self.runner = web.AppRunner(app, handle_signals=False)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.host, self.port = self.sock.getsockname()

    async def __aenter__(self) -> Served:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def watch_then_leave(server: Served, last_id: int) -> None:
    """Open a route watch as the Go proxy does, read the headers, close it."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"GET /api/v1/routes?watch=1&last_id={last_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: token {TOKEN}\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    await reader.readuntil(b"\r\n\r\n")
    writer.close()
    await writer.wait_closed()


async def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what}: not within 2 s")


@pytest.fixture(params=[True, False], ids=["with-middleware", "upstream-alone"])
async def gateway_api(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[bool, Proxy, Served]]:
    installed = bool(request.param)
    app = web.Application(logger=LOG)
    if installed:
        app.middlewares.append(route_watch_middleware(LOG))
    proxy = Proxy(
        externally_managed=True, api_token=TOKEN, gateway_url="http://127.0.0.1:9"
    )
    await proxy.setup(app)
    async with Served(app) as server:
        yield installed, proxy, server


async def test_a_dropped_watch_ends_at_the_next_route_change(
    gateway_api: tuple[bool, Proxy, Served], caplog: pytest.LogCaptureFixture
) -> None:
    installed, proxy, server = gateway_api
    caplog.set_level(logging.DEBUG)
    await watch_then_leave(server, last_id=proxy._next_id - 1)
    await eventually(lambda: len(proxy._watchers) == 1, "the watch registered")
    await asyncio.sleep(0.05)  # the server sees the close only when it writes
    await proxy.add_route(kind="PATH", path="/clusters/c1", target="http://127.0.0.1:9")
    await eventually(lambda: not proxy._watchers, "the dropped watch removed")
    await asyncio.sleep(0.05)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    if installed:
        assert errors == []
        assert "Route watch from 127.0.0.1 ended: the proxy left" in caplog.text
    else:  # what the gateway log showed before: the check below can fail
        assert [r.getMessage() for r in errors] == [
            "Error handling request from 127.0.0.1"
        ]
        assert "Cannot write to closing transport" in caplog.text


async def test_an_error_on_an_open_connection_is_not_hidden(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        raise ConnectionResetError("the scheduler went away")

    app = web.Application(logger=LOG)
    app.middlewares.append(route_watch_middleware(LOG))
    app.router.add_get("/api/v1/routes", broken)
    async with Served(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET /api/v1/routes?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 500")
        writer.close()
    assert "the scheduler went away" in caplog.text
    assert any(r.levelno >= logging.ERROR for r in caplog.records)
