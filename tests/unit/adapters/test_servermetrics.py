"""Reading a server's memory from its metrics, against a small server on loopback."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.unit.web_support import serve
from wbspawner.adapters.servermetrics import MemoryUse, memory_use

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
        use, why = await memory_use(f"{url}/user/ada/", TOKEN)
    assert (use, why) == (MemoryUse(used_mib=701, limit_mib=2772), None)
    assert seen == [(f"token {TOKEN}", {"no_track_activity": "1"})]


async def test_no_limit_is_none() -> None:
    app, _ = metrics_app({"rss": 2**20, "limits": {"memory": {"rss": 0}}})
    async with serve(app) as url:
        use, _ = await memory_use(f"{url}/user/ada", TOKEN)
    assert use == MemoryUse(used_mib=1, limit_mib=None)


async def test_refusals_and_odd_answers_are_reasons() -> None:
    for answer, status, says in [
        ("forbidden", 403, "answered 403: forbidden"),
        ({"cpu_percent": 3}, 200, "answered no memory figure"),
        ("not json", 200, "answered no memory figure"),
    ]:
        app, _ = metrics_app(answer, status)
        async with serve(app) as url:
            use, why = await memory_use(f"{url}/user/ada/", TOKEN)
        assert use is None and why is not None and says in why


async def test_a_server_that_is_gone_is_a_reason() -> None:
    app, _ = metrics_app({})
    async with serve(app) as url:
        pass
    use, why = await memory_use(f"{url}/user/ada/", TOKEN, timeout=2)
    assert use is None and why is not None and "did not answer" in why
