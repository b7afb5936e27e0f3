"""Fixtures of the adapter tests.

- ``silent_server``: the base URL (``http://127.0.0.1:PORT``) of a loopback
  server that accepts connections and never answers, to show the adapters'
  timeouts; closed with its connections after the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, never answer

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
