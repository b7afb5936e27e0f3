"""The end of a route watch whose proxy went away, as the normal event it is.

dask-gateway-server streams routing-table changes to its proxy over a long GET
(``/api/v1/routes?watch=1``). The proxy's HTTP client gives up on every request
after 60 seconds and watches again; the server side notices only when it next
writes, at the next cluster start or stop, and aiohttp then logs an error with
a ``ClientConnectionResetError`` traceback for each watch left behind (one per
idle minute). FIXME(dask-gateway 2026.3.0: ``proxy/core.py`` ``routes_handler``
does not expect its client to leave; ``dask-gateway-proxy`` ``NewApiClient``
sets ``Timeout: 60 * time.Second``; neither is configurable.)

This module owns :func:`route_watch_middleware`, which the workbench backends
install: a write that fails because *that watch's own connection* is gone ends
the request quietly. Any other error, or one on a connection still open,
propagates as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

ROUTES_PATH = "/api/v1/routes"
"""dask-gateway-server's routing-table endpoint (its proxy watches it)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _gone(request: web.Request) -> bool:
    """Return whether the request's connection is closed or closing."""
    transport = request.transport
    return transport is None or transport.is_closing()


def route_watch_middleware(log: logging.Logger | logging.LoggerAdapter[Any]) -> Any:
    """Return an aiohttp middleware that ends a dropped route watch quietly.

    Args:
        log: where the end of such a watch is noted (at debug level).

    Returns:
        The middleware, for ``app.middlewares``.
    """

    @web.middleware
    async def end_dropped_route_watch(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            watch = request.path == ROUTES_PATH and "watch" in request.query
            if not (watch and _gone(request)):
                raise
            log.debug("Route watch from %s ended: the proxy left", request.remote)
            # Never sent: aiohttp finds the connection gone and stops there.
            return web.StreamResponse()

    return end_dropped_route_watch
