"""A server at its own address (notices, memory), against a small loopback server."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.unit.web_support import serve
from wbspawner.adapters.jupyterserver import MemoryUse, OwnServer

TOKEN = "server-token"


def metrics_app(answer: Any, status: int = 200) -> tuple[web.Application, list[Any]]:
    seen: list[Any] = []

    async def metrics(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), dict(request.query)))
        if isinstance(answer, str):
            return web.Response(status=status, text=answer)
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_get("/user/ada/api/metrics/v1", metrics)
    return app, seen


async def test_memory_and_limit_in_mib_with_the_token_and_no_activity() -> None:
    answer = {"rss": 700 * 2**20 + 1, "limits": {"memory": {"rss": 2772 * 2**20}}}
    app, seen = metrics_app(answer)
    async with serve(app) as url:
        use, why = await OwnServer(f"{url}/user/ada/", TOKEN).memory()
    assert (use, why) == (MemoryUse(used_mib=701, limit_mib=2772), None)
    assert seen == [(f"token {TOKEN}", {"no_track_activity": "1"})]


async def test_no_limit_is_none() -> None:
    app, _ = metrics_app({"rss": 2**20, "limits": {"memory": {"rss": 0}}})
    async with serve(app) as url:
        use, _ = await OwnServer(f"{url}/user/ada", TOKEN).memory()
    assert use == MemoryUse(used_mib=1, limit_mib=None)


async def test_refusals_and_odd_answers_are_reasons() -> None:
    for answer, status, says in [
        ("forbidden", 403, "answered 403: forbidden"),
        ({"cpu_percent": 3}, 200, "answered no memory figure"),
        ("not json", 200, "answered no memory figure"),
    ]:
        app, _ = metrics_app(answer, status)
        async with serve(app) as url:
            use, why = await OwnServer(f"{url}/user/ada/", TOKEN).memory()
        assert use is None and why is not None and says in why


async def test_a_server_that_is_gone_is_a_reason() -> None:
    app, _ = metrics_app({})
    async with serve(app) as url:
        pass
    use, why = await OwnServer(f"{url}/user/ada/", TOKEN, timeout=2).memory()
    assert use is None and why is not None and "did not answer" in why


def notices_app(status: int) -> tuple[web.Application, list[Any]]:
    seen: list[Any] = []

    async def notices(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), await request.json()))
        return web.Response(status=status, text="" if status == 201 else "nope")

    app = web.Application()
    app.router.add_post("/user/ada/wbspawner/notices", notices)
    return app, seen


async def test_a_notice_is_posted_with_the_token_and_taken_on_201() -> None:
    notice = {"id": "n1", "kind": "cull", "message": "bye", "save": True}
    app, seen = notices_app(201)
    async with serve(app) as url:
        why = await OwnServer(f"{url}/user/ada/", TOKEN).notice(notice)
    assert why is None
    assert seen == [(f"token {TOKEN}", notice)]


async def test_a_refused_or_lost_notice_is_a_reason() -> None:
    app, _ = notices_app(403)
    async with serve(app) as url:
        why = await OwnServer(f"{url}/user/ada", TOKEN).notice({"id": "n"})
    assert why is not None and "answered 403: nope" in why
    why = await OwnServer(f"{url}/user/ada/", TOKEN, timeout=2).notice({"id": "n"})
    assert why is not None and "did not answer" in why
