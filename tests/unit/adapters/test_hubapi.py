"""The hub API client against a small in-process hub on loopback.

``FakeHub`` answers ``GET /hub/api/users`` as JupyterHub 5+/6 does: the token
is checked, ``state`` filters, stopped servers are listed only when asked, and
with the pagination media type the answer is paged (one user per page here, as
a hub may cap the page size below the ``limit`` asked for).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.unit.web_support import serve
from wbspawner.adapters.hubapi import PAGINATION, HubApi

TOKEN = "service-token"
USERS = {
    "ann": {"": {"ready": True, "user_options": {"profile": "large"}}},
    "bob": {"": {"ready": False, "user_options": {"profile": "small"}}},
    "cat": {},
    "dan": {"gpu": {"ready": True, "user_options": {"profile": "gpu-t4"}}},
}
ACTIVE = {"ann", "dan"}
"""Users whose servers run (the others' servers are stopped)."""


class FakeHub:
    def __init__(self, paged: bool = True) -> None:
        self.paged = paged
        self.requests: list[dict[str, Any]] = []

    def model(self, name: str, stopped: bool) -> dict[str, Any]:
        servers = USERS[name] if name in ACTIVE or stopped else {}
        return {"name": name, "kind": "user", "servers": servers}

    async def users(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append({"query": query, "headers": dict(request.headers)})
        if request.headers.get("Authorization") != f"token {TOKEN}":
            return web.json_response({"message": "bad token"}, status=403)
        names = sorted(USERS)
        if query.get("state") == "active":
            names = [n for n in names if n in ACTIVE]
        models = [self.model(n, "include_stopped_servers" in query) for n in names]
        if not self.paged or request.headers.get("Accept") != PAGINATION:
            return web.json_response(models)
        offset = int(query.get("offset", 0))
        following = offset + 1 if offset + 1 < len(models) else None
        page = {
            "items": models[offset : offset + 1],
            "_pagination": {
                "offset": offset,
                "limit": 1,
                "total": len(models),
                "next": None if following is None else {"offset": following},
            },
        }
        return web.json_response(page)


@contextlib.asynccontextmanager
async def serve_hub(hub: FakeHub) -> AsyncIterator[str]:
    """Serve ``hub``'s users API; yield the hub's API URL."""
    app = web.Application()
    app.router.add_get("/hub/api/users", hub.users)
    async with serve(app) as url:
        yield f"{url}/hub/api/"


async def test_active_users_follow_every_page_with_the_token() -> None:
    hub = FakeHub()
    async with serve_hub(hub) as url, HubApi(url, TOKEN) as api:
        assert await api.active_users() == {"ann", "dan"}
    assert [r["query"]["offset"] for r in hub.requests] == ["0", "1"]
    assert all(r["query"]["state"] == "active" for r in hub.requests)
    assert all(r["headers"]["Accept"] == PAGINATION for r in hub.requests)
    assert all(r["query"]["limit"] == "200" for r in hub.requests)


async def test_last_sizes_include_stopped_servers() -> None:
    hub = FakeHub()
    async with serve_hub(hub) as url, HubApi(url, TOKEN) as api:
        assert await api.last_sizes() == {"ann": "large", "bob": "small"}
    assert len(hub.requests) == len(USERS)
    assert all(r["query"]["include_stopped_servers"] == "1" for r in hub.requests)


async def test_a_hub_that_does_not_page_answers_with_a_list() -> None:
    hub = FakeHub(paged=False)
    async with serve_hub(hub) as url, HubApi(url, TOKEN) as api:
        names = [u["name"] for u in await api.users()]
    assert names == sorted(USERS)
    assert len(hub.requests) == 1


async def test_a_refusal_raises_and_the_callers_session_stays_open() -> None:
    async with serve_hub(FakeHub()) as url, aiohttp.ClientSession() as session:
        api = HubApi(url, "wrong-token", session=session)
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await api.active_users()
        assert info.value.status == 403
        await api.close()
        assert not session.closed


async def test_a_silent_hub_is_bounded_by_the_timeout(silent_server: str) -> None:
    async with HubApi(f"{silent_server}/hub/api", TOKEN, timeout=0.3) as api:
        with pytest.raises(TimeoutError):
            await api.last_sizes()
