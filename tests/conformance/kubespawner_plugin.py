"""pytest plugin for KubeSpawner 7.1.0's own suite run against devcluster.

``make conformance`` loads it with ``-p kubespawner_plugin`` so that it is in
place before the suite's conftest, whose files stay unmodified. It owns what
the suite assumes of its environment that the pinned versions no longer give.

The suite's session fixture ``ssl_app`` is synchronous and calls JupyterHub's
``init_internal_ssl()``. Since JupyterHub 6 that method creates the
``JupyterHubHTTPClient`` singleton, which binds itself to the running event
loop (``asyncio.get_running_loop()``), so outside a running loop it fails with
"no running event loop". JupyterHub itself calls it from its async
``initialize()``; this plugin runs such fixtures the same way: inside the
suite's own session event loop (its ``event_loop`` fixture), so the client
belongs to the loop the tests then run in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

import pytest

NEEDS_RUNNING_LOOP = frozenset({"ssl_app"})
"""Synchronous fixtures of the suite that need a running event loop."""


def in_loop(
    func: Callable[..., Any], loop: asyncio.AbstractEventLoop
) -> Callable[..., Any]:
    """Return ``func`` run as a coroutine on ``loop`` (which must be idle)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        async def running() -> Any:
            return func(*args, **kwargs)

        return loop.run_until_complete(running())

    call.in_session_loop = True  # type: ignore[attr-defined]
    return call


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, None, None]:
    """Run the fixtures named in ``NEEDS_RUNNING_LOOP`` in the session loop."""
    if fixturedef.argname in NEEDS_RUNNING_LOOP and not getattr(
        fixturedef.func, "in_session_loop", False
    ):
        loop = request.getfixturevalue("event_loop")
        fixturedef.func = in_loop(fixturedef.func, loop)  # type: ignore[misc]
    yield
