"""A user's server through the proxy, against a small server on loopback.

The culler's calls carry ``no_track_activity`` (they are not the user's
activity); the SSH service's calls do not (they are). Every failure is a
:class:`ServerError` with the status.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from tests.unit.web_support import serve
from wbspawner.adapters.jupyterserver import (
    CULLER_TIMEOUT,
    JupyterServers,
    ServerError,
)

TOKEN = "service-token"


def server_app() -> tuple[web.Application, list[Any]]:
    seen: list[Any] = []

    async def answer(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen.append(
            (
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("Authorization"),
                body,
            )
        )
        tail = request.match_info["tail"]
        if tail == "api/status":
            return web.json_response({"last_activity": "2026-12-07T09:00:00Z"})
        if tail == "api/kernels":
            return web.json_response([{"id": "k", "execution_state": "idle"}, 3])
        if tail == "wbspawner/notices":
            return web.json_response({}, status=201)
        if tail == "api/terminals":
            return web.json_response({"name": "1"})
        return web.json_response({"message": "No such file"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/user/ada/{tail:.*}", answer)
    return app, seen


async def test_the_cullers_calls_are_not_the_users_activity() -> None:
    app, seen = server_app()
    async with serve(app) as url:
        servers = JupyterServers(url, TOKEN, CULLER_TIMEOUT)
        try:
            server = servers.server("/user/ada/")
            status = await server.status()
            kernels = await server.kernels()
            await server.notice({"id": "n", "kind": "cull"})
        finally:
            await servers.close()
    assert status == {"last_activity": "2026-12-07T09:00:00Z"}
    assert kernels == [{"id": "k", "execution_state": "idle"}]
    no_track = {"no_track_activity": "1"}
    auth = f"token {TOKEN}"
    assert seen == [
        ("GET", "/user/ada/api/status", no_track, auth, None),
        ("GET", "/user/ada/api/kernels", no_track, auth, None),
        (
            "POST",
            "/user/ada/wbspawner/notices",
            no_track,
            auth,
            {"id": "n", "kind": "cull"},
        ),
    ]


async def test_the_ssh_services_calls_are_and_failures_are_server_errors() -> None:
    app, seen = server_app()
    async with serve(app) as url:
        servers = JupyterServers(url, TOKEN)
        try:
            server = servers.server("user/ada")
            name = await server.new_terminal()
            with pytest.raises(ServerError, match="No such file") as err:
                await server.model("nothing/here")
        finally:
            await servers.close()
    assert name == "1" and err.value.status == 404
    assert [(m, p, q) for m, p, q, _, _ in seen] == [
        ("POST", "/user/ada/api/terminals", {}),
        ("GET", "/user/ada/api/contents/nothing/here", {"content": "0"}),
    ]


async def test_a_server_that_is_gone_is_a_server_error() -> None:
    app, _ = server_app()
    async with serve(app) as url:
        pass
    servers = JupyterServers(url, TOKEN, timeout=2)
    try:
        with pytest.raises(ServerError, match="did not answer"):
            await servers.server("/user/ada/").status()
    finally:
        await servers.close()
