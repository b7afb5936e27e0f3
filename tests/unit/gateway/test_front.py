"""The dashboards front in-process, between a fake hub API and a fake gateway proxy.

Both fakes are small aiohttp applications on loopback: the hub answers
``GET /hub/api/user`` for a few tokens as JupyterHub 6 does; the gateway's proxy
serves the real owner route (``add_owner_route``) and a "dashboard" that echoes
what reached it, streams on demand, or answers a websocket. The front is the
real tornado application with JupyterHub's real service auth. What the real
stack cannot show is checked here: which headers reach a scheduler, that a
response streams before it is complete, and how timeouts and a missing gateway
are answered. ``tests/integration/test_gateway_dashboards.py`` runs the same
front on the real stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.websocket import websocket_connect

from tests.unit.web_support import serve
from wbspawner.adapters.gatewayhttp import (
    GatewayHttp,
    GatewayHttpError,
    Timeouts,
    add_owner_route,
)
from wbspawner.gateway.config import ACCESS_SCOPE, PREFIX, GatewaySettings
from wbspawner.gateway.front import DashboardFront, FrontAuth
from wbspawner.gateway.front_web import FrontContext, OwnerCache, make_app

SERVICE_TOKEN = "service-" + "s" * 24
CLUSTER = "0f3c9a8e1b2d4c5f8a7b6c5d4e3f2a1b"
OTHER = "1" * 32
USERS = {
    "bob-token": {"kind": "user", "name": "bob", "admin": False},
    "gina-token": {"kind": "user", "name": "gina", "admin": False},
    "alice-token": {"kind": "user", "name": "alice", "admin": True},
}
NO_ACCESS = {"noaccess-token": {"kind": "user", "name": "bob", "admin": False}}


async def _hub_user(request: web.Request) -> web.Response:
    token = request.headers.get("Authorization", "").removeprefix("token ")
    if token in USERS:
        scopes = [f"read:users:name!user={USERS[token]['name']}", ACCESS_SCOPE]
        return web.json_response({**USERS[token], "scopes": scopes})
    if token in NO_ACCESS:
        return web.json_response({**NO_ACCESS[token], "scopes": []})
    return web.json_response({"message": "no such token"}, status=403)


@dataclass
class Upstream:
    """What the fake gateway proxy saw, and its knobs."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    delay_s: float = 0.0

    async def cluster(self, name: str) -> Any:
        owners = {CLUSTER: "bob", OTHER: "gina"}
        return SimpleNamespace(username=owners[name]) if name in owners else None

    async def echo(self, request: web.Request) -> web.StreamResponse:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.socket(request)
        self.seen.append(
            {
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": (await request.read()).decode(),
            }
        )
        response = web.json_response({"echo": request.path})
        response.set_cookie("service-dask-gateway", "from-the-scheduler")
        return response

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first-")
        await self.release.wait()  # the test has seen the first chunk
        await response.write(b"second")
        await response.write_eof()
        return response

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        self.seen.append({"path": request.path, "headers": dict(request.headers)})
        ws = web.WebSocketResponse(protocols=["dash", "other"])
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
        return ws


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    url: str
    upstream: Upstream
    gateway: GatewayHttp

    def at(self, path: str) -> str:
        return f"{self.url}{PREFIX}/{path}"


def _gateway_app(upstream: Upstream) -> web.Application:
    below = web.Application()
    add_owner_route(below, upstream.cluster, SERVICE_TOKEN)
    below.router.add_route("*", "/api/v1/{tail:.*}", upstream.echo)
    below.router.add_get("/clusters/{name}/stream", upstream.stream)
    below.router.add_route("*", "/clusters/{name}/{tail:.*}", upstream.echo)
    root = web.Application()
    root.add_subapp(PREFIX, below)  # the proxy serves everything below the prefix
    return root


@contextlib.asynccontextmanager
async def _front(
    gateway_url: str, hub_url: str, timeouts: Timeouts | None = None
) -> AsyncIterator[tuple[str, GatewayHttp]]:
    gateway = GatewayHttp(gateway_url, PREFIX, SERVICE_TOKEN, timeouts=timeouts)
    auth = FrontAuth(
        api_url=hub_url + "/hub/api",
        api_token=SERVICE_TOKEN,
        oauth_client_id="service-dask-gateway",
        base_url=PREFIX + "/",
        oauth_redirect_uri=PREFIX + "/oauth_callback",
        access_scopes={ACCESS_SCOPE},
    )
    context = FrontContext(
        gateway=gateway,
        auth=auth,
        owners=OwnerCache(gateway.owner_of, 60.0),
        log=logging.getLogger("test-front"),
    )
    app = make_app(
        context,
        cookie_secret=secrets.token_bytes(32),
        websocket_max_message_size=2**20,
        websocket_ping_interval=None,
    )
    port = _free_port()
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    try:
        yield f"http://127.0.0.1:{port}", gateway
    finally:
        server.stop()
        gateway.close()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    hub = web.Application()
    hub.router.add_get("/hub/api/user", _hub_user)
    upstream = Upstream()
    async with (
        serve(hub) as hub_url,
        serve(_gateway_app(upstream)) as gateway_url,
        _front(gateway_url, hub_url) as (url, gateway),
    ):
        yield Stack(url, upstream, gateway)
        upstream.release.set()


async def _fetch(url: str, **kwargs: Any) -> Any:
    client = AsyncHTTPClient(force_instance=True)
    try:
        request = HTTPRequest(url, follow_redirects=False, request_timeout=20, **kwargs)
        return await client.fetch(request, raise_error=False)
    finally:
        client.close()


def _as(token: str, scheme: str = "token") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


# ---------------------------------------------------------------- who sees what


@pytest.mark.parametrize(
    ("headers", "cluster", "status"),
    [
        pytest.param(_as("bob-token"), CLUSTER, 200, id="owner"),
        pytest.param(_as("bob-token", "jupyterhub"), CLUSTER, 200, id="jupyterhub"),
        pytest.param(_as("bob-token", "Bearer"), CLUSTER, 200, id="bearer"),
        pytest.param(_as("alice-token"), CLUSTER, 200, id="admin"),
        pytest.param(_as("gina-token"), CLUSTER, 403, id="another-user"),
        pytest.param(_as("noaccess-token"), CLUSTER, 403, id="no-gateway-access"),
        pytest.param(_as("bob-token"), "2" * 32, 404, id="unknown-cluster"),
        pytest.param(_as("wrong-token"), CLUSTER, 401, id="bad-token"),
        pytest.param({"Sec-Fetch-Mode": "cors"}, CLUSTER, 401, id="nobody-fetching"),
    ],
)
async def test_who_sees_a_dashboard(
    stack: Stack, headers: dict[str, str], cluster: str, status: int
) -> None:
    response = await _fetch(stack.at(f"clusters/{cluster}/status"), headers=headers)
    assert response.code == status, response.body
    reached = [s for s in stack.upstream.seen if s["path"].startswith(PREFIX + "/cl")]
    assert bool(reached) is (status == 200)
    if status != 200:
        assert response.body.decode().endswith("\n")  # the short message
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "token"


async def test_a_browser_without_a_session_is_sent_to_the_hubs_oauth(
    stack: Stack,
) -> None:
    response = await _fetch(stack.at(f"clusters/{CLUSTER}/status?x=1"))
    assert response.code == 302
    location = response.headers["Location"]
    assert location.startswith("/hub/api/oauth2/authorize?")
    assert "client_id=service-dask-gateway" in location
    assert "code_challenge=" in location  # PKCE, as JupyterHub 6 does it
    assert "service-dask-gateway-oauth-state=" in response.headers["Set-Cookie"]
    assert not stack.upstream.seen


# ---------------------------------------------------------------- what crosses


async def test_hub_credentials_stop_at_the_front(stack: Stack) -> None:
    headers = {
        **_as("bob-token"),
        "Cookie": "service-dask-gateway=abc; jupyterhub-session-id=s",
        "X-Private": "kept",
    }
    url = stack.at(f"clusters/{CLUSTER}/info/worker/tcp%3A%2F%2F10.0.0.7%3A1.html")
    response = await _fetch(url + "?token=bob-token&a=1", headers=headers)
    assert response.code == 200
    (seen,) = stack.upstream.seen
    assert seen["query"] == "a=1"
    lower = {k.lower(): v for k, v in seen["headers"].items()}
    assert "authorization" not in lower and "cookie" not in lower
    assert lower["x-private"] == "kept"
    assert "%2F%2F10.0.0.7" in seen["path"] or "//10.0.0.7" in seen["path"]
    # The scheduler may not set cookies on the hub's origin.
    assert "Set-Cookie" not in response.headers


async def test_the_gateway_api_passes_through_untouched(stack: Stack) -> None:
    headers = {**_as("anything", "jupyterhub"), "Cookie": "c=1"}
    response = await _fetch(
        stack.at("api/v1/clusters/?status=running"),
        method="POST",
        body='{"cluster_options": {}}',
        headers=headers,
    )
    assert response.code == 200
    (seen,) = stack.upstream.seen
    assert seen["query"] == "status=running"
    assert seen["headers"]["Authorization"] == "jupyterhub anything"
    assert seen["headers"]["Cookie"] == "c=1"
    assert json.loads(seen["body"]) == {"cluster_options": {}}
    assert "service-dask-gateway=from-the-scheduler" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("api/../clusters/x/status", id="dot-dot"),
        pytest.param("api/%2e%2e/clusters/x/status", id="encoded-dot-dot"),
    ],
)
async def test_ambiguous_paths_are_refused(stack: Stack, path: str) -> None:
    response = await _fetch(f"{stack.url}{PREFIX}/{path}")
    assert response.code == 400
    assert not stack.upstream.seen


async def test_a_response_streams_before_it_is_complete(stack: Stack) -> None:
    first = asyncio.get_running_loop().create_future()
    chunks: list[bytes] = []

    def on_chunk(chunk: bytes) -> None:
        chunks.append(chunk)
        if not first.done():
            first.set_result(chunk)

    client = AsyncHTTPClient(force_instance=True)
    request = HTTPRequest(
        stack.at(f"clusters/{CLUSTER}/stream"),
        headers=_as("bob-token"),
        streaming_callback=on_chunk,
        request_timeout=20,
    )
    done = asyncio.ensure_future(client.fetch(request))
    try:
        assert await asyncio.wait_for(first, 10) == b"first-"
        assert not done.done()  # the upstream has not finished yet
        stack.upstream.release.set()
        assert (await done).code == 200
    finally:
        client.close()
    assert b"".join(chunks) == b"first-second"


# ---------------------------------------------------------------- websockets


async def test_the_owners_websocket_is_relayed(stack: Stack) -> None:
    request = HTTPRequest(
        "ws" + stack.at(f"clusters/{CLUSTER}/ws").removeprefix("http"),
        headers={**_as("bob-token"), "Cookie": "c=1"},
    )
    conn = await websocket_connect(request, subprotocols=["dash"])
    try:
        assert conn.selected_subprotocol == "dash"
        await conn.write_message("ping")
        assert await asyncio.wait_for(conn.read_message(), 10) == "echo:ping"
    finally:
        conn.close()
    (seen,) = stack.upstream.seen
    lower = {k.lower() for k in seen["headers"]}
    assert "authorization" not in lower and "cookie" not in lower


async def test_another_users_websocket_is_refused_before_the_upgrade(
    stack: Stack,
) -> None:
    request = HTTPRequest(
        "ws" + stack.at(f"clusters/{CLUSTER}/ws").removeprefix("http"),
        headers=_as("gina-token"),
    )
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(request)
    assert refused.value.code == 403
    assert not stack.upstream.seen


async def test_the_front_answers_its_own_health_check(stack: Stack) -> None:
    response = await _fetch(f"{stack.url}/healthz")
    assert (response.code, response.body) == (200, b"ok\n")
    assert not stack.upstream.seen


# ---------------------------------------------------------------- the gateway


async def test_the_owner_route_answers_only_the_service() -> None:
    upstream = Upstream()
    async with serve(_gateway_app(upstream)) as url:
        route = f"{url}{PREFIX}/api/wbspawner/clusters/{CLUSTER}/owner"
        assert (await _fetch(route)).code == 401
        assert (await _fetch(route, headers=_as("guess"))).code == 401
        answer = await _fetch(route, headers=_as(SERVICE_TOKEN, "Bearer"))
        assert json.loads(answer.body) == {"cluster": CLUSTER, "owner": "bob"}
        gateway = GatewayHttp(url, PREFIX, SERVICE_TOKEN)
        try:
            assert await gateway.owner_of(CLUSTER) == "bob"
            assert await gateway.owner_of("3" * 32) is None
        finally:
            gateway.close()


async def test_a_gateway_without_the_owner_route_is_an_error() -> None:
    async with serve(web.Application()) as url:
        gateway = GatewayHttp(url, PREFIX, SERVICE_TOKEN)
        try:
            with pytest.raises(GatewayHttpError, match="is its backend wbspawner's"):
                await gateway.owner_of(CLUSTER)
        finally:
            gateway.close()


async def test_the_owner_route_without_a_token_answers_503() -> None:
    app = web.Application()
    add_owner_route(app, Upstream().cluster, "")
    async with serve(app) as url:
        route = f"{url}/api/wbspawner/clusters/{CLUSTER}/owner"
        assert (await _fetch(route, headers=_as(""))).code == 503


async def test_no_gateway_is_502_and_a_slow_one_504() -> None:
    hub = web.Application()
    hub.router.add_get("/hub/api/user", _hub_user)
    upstream = Upstream()
    gone = f"http://127.0.0.1:{_free_port()}"
    async with (
        serve(hub) as hub_url,
        _front(gone, hub_url) as (url, _),
    ):
        api = await _fetch(f"{url}{PREFIX}/api/v1/clusters/")
        assert api.code == 502
        dash = await _fetch(
            f"{url}{PREFIX}/clusters/{CLUSTER}/", headers=_as("bob-token")
        )
        assert dash.code == 502  # the owner cannot be asked: nothing is shown
    upstream.delay_s = 5.0
    short = Timeouts(connect=2.0, request=0.5, owner=2.0)
    async with (
        serve(hub) as hub_url,
        serve(_gateway_app(upstream)) as gateway_url,
        _front(gateway_url, hub_url, short) as (url, _),
    ):
        slow = await _fetch(f"{url}{PREFIX}/api/v1/clusters/")
        assert slow.code == 504
        assert b"in time" in slow.body


# ---------------------------------------------------------------- the parts


async def test_owners_are_remembered_for_their_ttl_unknown_ones_not() -> None:
    asked: list[str] = []
    now = [0.0]

    async def lookup(name: str) -> str | None:
        asked.append(name)
        return "bob" if name == "c1" else None

    cache = OwnerCache(lookup, ttl_s=10.0, size=2, clock=lambda: now[0])
    assert await cache.owner_of("c1") == "bob"
    assert await cache.owner_of("c1") == "bob"
    assert await cache.owner_of("c9") is None
    assert await cache.owner_of("c9") is None
    assert asked == ["c1", "c9", "c9"]
    now[0] = 11.0
    assert await cache.owner_of("c1") == "bob"
    assert asked[-1] == "c1"


def test_a_front_without_its_settings_stops_with_the_missing_ones(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("URL", "FRONT_URL", "API_TOKEN", "API_TOKEN_FILE", "HUB_API_URL"):
        monkeypatch.delenv(f"WBSPAWNER_DASK_GATEWAY_{name}", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    app = DashboardFront()
    app.log.propagate = True  # traitlets' own handler aside, caplog sees it
    with caplog.at_level(logging.CRITICAL), pytest.raises(SystemExit) as stopped:
        app.start()
    assert stopped.value.code == 1
    assert "needs WBSPAWNER_DASK_GATEWAY_URL" in caplog.text
    assert "WBSPAWNER_DASK_GATEWAY_API_TOKEN" in caplog.text
    assert "Traceback" not in caplog.text


def test_every_front_setting_has_help() -> None:
    own = DashboardFront.class_own_traits(config=True)
    assert own, "the front has settings"
    assert [name for name, trait in own.items() if not trait.help] == []


async def test_the_front_stops_once_the_hub_that_started_it_is_gone(
    gateway_env: Mapping[str, str],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **gateway_env,
        "WBSPAWNER_DASK_GATEWAY_FRONT_URL": f"http://127.0.0.1:{port}",
    }
    settings = GatewaySettings.from_env(env)
    front = DashboardFront(parent_pid=1)  # PID 1 is no test's parent: gone
    await asyncio.wait_for(front.serve(settings), 5)
