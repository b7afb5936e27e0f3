"""Serving a small aiohttp app on loopback, for tests of code that talks HTTP.

- ``serve(app)``: an async context manager that serves ``app`` on a free port of
  127.0.0.1, yields its base URL (``http://127.0.0.1:PORT``, no trailing slash)
  and stops it on the way out.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
