"""HTTP between the dashboards front and Dask Gateway, both ends.

This module owns every request the front (:mod:`wbspawner.gateway.front`) sends
on to the gateway's own HTTP proxy (the local ``dask-gateway-proxy`` or the
chart's traefik), which routes ``<prefix>/api/…`` to the gateway's API and
``<prefix>/clusters/<name>/…`` to the cluster's scheduler dashboard:

- :meth:`GatewayHttp.relay`: one HTTP request, its response streamed back
  chunk by chunk as it arrives; the caller's ``on_chunk`` is awaited before more
  is read, so a slow client slows the upstream read instead of filling memory;
- :meth:`GatewayHttp.websocket`: a websocket to the same path;
- :meth:`GatewayHttp.owner_of`: who owns a cluster, asked with the gateway's
  hub service token (the front is the same hub service and holds it).

It also owns the other end of that last question, :func:`add_owner_route`:
``GET /api/wbspawner/clusters/<name>/owner`` (:data:`OWNER_PATH`), which
wbspawner's backends add to the gateway's own aiohttp API at setup. Only a
caller with the gateway's service token may ask (compared in constant time);
the answer is ``{"cluster": name, "owner": user}``, 404 with ``"owner": null``
for an unknown cluster, 401 for anyone else, 503 when the gateway has no token
to compare with. Upstream's ``GET /api/v1/clusters/<name>`` cannot serve here:
it answers the owner only, never an admin.

Every request has a connect timeout and an overall timeout. The client is
tornado's, which forwards paths byte for byte (a dashboard's worker pages carry
``%2F`` in their paths) and shares the front's tornado event loop. No policy:
which headers cross is the caller's business.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)
from tornado.httputil import HTTPHeaders, parse_response_start_line
from tornado.simple_httpclient import HTTPTimeoutError
from tornado.websocket import WebSocketClientConnection, websocket_connect

OWNER_PATH = "/api/wbspawner/clusters/{cluster}/owner"
"""The owner route as the gateway's API serves it (behind the proxy: below the
prefix, which the proxy strips on the way to the API)."""
MAX_BODY = 2**31
"""Bytes one streamed response may have; it is never held in memory whole."""

Header = tuple[str, str]


class GatewayHttpError(Exception):
    """The gateway's proxy could not be reached or answered unexpectedly.

    Attributes:
        status: what the front should answer: 502 (unreachable or a wrong
            answer), 504 (no answer in time), or the upstream's own status when
            it refused a websocket upgrade.
        started: whether a response had begun reaching the client already.
    """

    def __init__(self, message: str, *, status: int = 502, started: bool = False):
        super().__init__(message)
        self.status = status
        self.started = started


@dataclass(frozen=True, slots=True)
class Head:
    """The status line and headers of an upstream response."""

    status: int
    reason: str
    headers: tuple[Header, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Bounds of every upstream request, in seconds."""

    connect: float = 10.0
    request: float = 300.0
    """Whole request, streaming included (a long-poll of the API fits)."""
    owner: float = 15.0
    """Whole owner lookup."""


class GatewayHttp:
    """Requests to the gateway's HTTP proxy.

    Args:
        base_url: the proxy as the front reaches it, e.g. ``http://127.0.0.1:8000``
            (request paths carry the prefix).
        prefix: the gateway's prefix, e.g. ``/services/dask-gateway``.
        token: the gateway's hub service token (for the owner route).
        timeouts: the bounds of every request.
        max_clients: requests in flight at once; more wait their turn.
        max_message_size: bytes one websocket message may have.
    """

    def __init__(
        self,
        base_url: str,
        prefix: str,
        token: str,
        *,
        timeouts: Timeouts | None = None,
        max_clients: int = 100,
        max_message_size: int = 32 * 2**20,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = "/" + prefix.strip("/")
        self._token = token
        self.timeouts = timeouts or Timeouts()
        self.max_message_size = max_message_size
        self._client = AsyncHTTPClient(
            force_instance=True, max_clients=max_clients, max_body_size=MAX_BODY
        )

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    async def owner_of(self, cluster: str) -> str | None:
        """Return the user who owns ``cluster``, or ``None`` if it does not exist.

        Args:
            cluster: the cluster's name.

        Returns:
            The owner's user name, or ``None``.

        Raises:
            GatewayHttpError: the gateway did not answer, refused the token or
                has no owner route (not wbspawner's backend).
        """
        path = OWNER_PATH.format(cluster=quote(cluster, safe=""))
        request = HTTPRequest(
            self.base_url + self.prefix + path,
            headers={"Authorization": f"Bearer {self._token}"},
            connect_timeout=self.timeouts.connect,
            request_timeout=self.timeouts.owner,
            follow_redirects=False,
        )
        response = await self._fetch(request, "owner lookup")
        try:
            body = json.loads(response.body or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict) or body.get("cluster") != cluster:
            raise GatewayHttpError(
                f"the gateway's owner route answered {response.code} without the "
                "cluster: is its backend wbspawner's (wbspawner.gateway.backends)?"
            )
        if response.code == 404:
            return None
        owner = body.get("owner")
        if response.code != 200 or not isinstance(owner, str):
            raise GatewayHttpError(
                f"the gateway's owner route answered {response.code}"
            )
        return owner

    async def relay(
        self,
        method: str,
        path: str,
        headers: Sequence[Header],
        body: bytes | None,
        on_head: Callable[[Head], None],
        on_chunk: Callable[[bytes], Awaitable[None]],
    ) -> Head:
        """Send one request and stream its response to the callbacks.

        Args:
            method: the HTTP method.
            path: path and query, starting with the prefix, as the client sent
                them (not re-encoded).
            headers: the headers to send (the caller's choice; ``Host`` kept).
            body: the request body, if any.
            on_head: called once with the status and headers, before any chunk.
            on_chunk: awaited with each piece of the body, in order.

        Returns:
            The response's status and headers.

        Raises:
            GatewayHttpError: no response, or the response broke off (then
                ``started`` is true).
        """
        head: Head | None = None
        lines: list[str] = []

        def header_line(line: str) -> None:
            nonlocal head
            if line.strip():
                lines.append(line)
                return
            start = parse_response_start_line(lines[0].strip())
            parsed = HTTPHeaders.parse("".join(lines[1:]))
            head = Head(start.code, start.reason, tuple(parsed.get_all()))
            lines.clear()
            on_head(head)

        request = HTTPRequest(
            self.base_url + path,
            method=method,
            headers=_headers(headers),
            body=body if body or method in ("POST", "PUT", "PATCH") else None,
            connect_timeout=self.timeouts.connect,
            request_timeout=self.timeouts.request,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            header_callback=header_line,
            streaming_callback=on_chunk,
        )
        what = f"{method} {path.partition('?')[0]}"
        try:
            await self._fetch(request, what)
        except GatewayHttpError as err:
            err.started = head is not None
            raise
        if head is None:  # an answer without its head: no such answer is known
            raise GatewayHttpError(f"{what}: no response head from the gateway")
        return head

    async def _fetch(self, request: HTTPRequest, what: str) -> HTTPResponse:
        """Fetch; any status is an answer, no answer is a :class:`GatewayHttpError`."""
        try:
            return await self._client.fetch(request, raise_error=False)
        except HTTPClientError as err:  # tornado's 599: no HTTP answer
            status = 504 if isinstance(err, HTTPTimeoutError) else 502
            raise GatewayHttpError(f"{what}: {err}", status=status) from None
        except OSError as err:
            raise GatewayHttpError(f"{what}: {err}") from None

    async def websocket(
        self, path: str, headers: Sequence[Header], subprotocols: Sequence[str]
    ) -> WebSocketClientConnection:
        """Open a websocket to ``path`` through the gateway's proxy.

        Args:
            path: path and query, starting with the prefix.
            headers: the headers to send (not the handshake's own).
            subprotocols: the subprotocols the client asked for.

        Returns:
            The open connection.

        Raises:
            GatewayHttpError: the gateway could not be reached in time, or the
                upstream refused the upgrade (its status in ``status``).
        """
        url = "ws" + self.base_url.removeprefix("http") + path
        request = HTTPRequest(
            url,
            headers=_headers(headers),
            connect_timeout=self.timeouts.connect,
            request_timeout=self.timeouts.connect + self.timeouts.owner,
        )
        try:
            return await websocket_connect(
                request,
                subprotocols=list(subprotocols) or None,
                max_message_size=self.max_message_size,
            )
        except HTTPClientError as err:
            status = err.code
            if status == 599:
                status = 504 if isinstance(err, HTTPTimeoutError) else 502
            raise GatewayHttpError(f"websocket: {err}", status=status) from None
        except OSError as err:
            raise GatewayHttpError(f"websocket: {err}") from None


def _headers(pairs: Sequence[Header]) -> HTTPHeaders:
    headers = HTTPHeaders()
    for name, value in pairs:
        headers.add(name, value)
    return headers


# ------------------------------------------------ the owner route, gateway side

GetCluster = Callable[[str], Awaitable[Any]]
"""The backend's ``get_cluster(name)``: a cluster with ``username``, or None."""


def _presented(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else ""


def owner_handler(
    get_cluster: GetCluster, token: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return the aiohttp handler of the owner route.

    Args:
        get_cluster: the backend's ``get_cluster``.
        token: the gateway's hub service token ("" answers 503 to everyone).

    Returns:
        The handler.
    """

    async def owner(request: web.Request) -> web.Response:
        name = request.match_info["cluster_name"]
        if not token:
            return web.json_response(
                {"error": "the gateway has no hub service token"}, status=503
            )
        presented = _presented(request.headers.get("Authorization", ""))
        if not hmac.compare_digest(presented.encode(), token.encode()):
            return web.json_response(
                {"error": "only the dask-gateway service may ask"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        cluster = await get_cluster(name)
        if cluster is None:
            return web.json_response({"cluster": name, "owner": None}, status=404)
        return web.json_response({"cluster": name, "owner": cluster.username})

    return owner


def add_owner_route(app: web.Application, get_cluster: GetCluster, token: str) -> None:
    """Add the owner route to the gateway's aiohttp application.

    Call it before the application starts (a backend's ``setup(app)`` runs then).

    Args:
        app: the gateway's application.
        get_cluster: the backend's ``get_cluster``.
        token: the gateway's hub service token.
    """
    path = OWNER_PATH.format(cluster="{cluster_name}")
    app.router.add_get(path, owner_handler(get_cluster, token))
