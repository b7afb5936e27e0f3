"""The dashboards front's tornado handlers (the process: :mod:`~.front`).

This module owns the HTTP side of the front: ``/healthz`` (the front itself, for
the kubelet) and everything under the gateway's prefix:

- ``<prefix>/oauth_callback``: the end of the hub's OAuth flow (JupyterHub's
  own callback handler), which leaves the service's cookie in the browser;
- websocket upgrades (:class:`SocketHandler`) and every other request
  (:class:`RelayHandler`): what the path is comes from
  :func:`~wbspawner.gateway.front_policy.route_for`; a dashboard request is
  identified with the hub and decided by
  :func:`~wbspawner.gateway.front_policy.may_view` before anything reaches the
  gateway; then the request goes on through
  :class:`~wbspawner.adapters.gatewayhttp.GatewayHttp` and its answer streams
  back.

Refusals are short plain-text messages for people, logged with who asked; the
access log leaves out query strings (a websocket may carry ``?token=``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from tornado import web
from tornado.httputil import HTTPServerRequest
from tornado.iostream import StreamClosedError
from tornado.routing import PathMatches, Rule
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
)

from wbspawner.adapters.gatewayhttp import GatewayHttp, GatewayHttpError, Head
from wbspawner.gateway.config import PREFIX
from wbspawner.gateway.front_policy import (
    Route,
    Verdict,
    Viewer,
    dashboard_query,
    may_view,
    request_headers,
    response_headers,
    route_for,
)

MESSAGES = {
    400: "This address is ambiguous; the front does not pass it on.",
    401: "Log in to the hub to see Dask dashboards.",
    403: "Only the cluster's owner and hub admins may see this Dask dashboard.",
    404: "There is no Dask cluster of that name.",
    502: "The Dask Gateway did not answer; try again in a moment.",
    504: "The Dask Gateway did not answer in time; try again in a moment.",
}
"""What people are told for each refusal (nothing from the request is echoed)."""
WHY = {
    Verdict.LOGIN: "no valid hub login or token",
    Verdict.FORBIDDEN: "neither its owner nor a hub admin, or no access to the gateway",
    Verdict.NOT_FOUND: "no such cluster",
}
"""Why a dashboard request was refused, for the log."""


class OwnerCache:
    """Owners of clusters the gateway confirmed, for a while.

    A cluster's owner never changes (names are random and never reused), so a
    confirmed owner is kept for ``ttl_s``; an unknown name is asked again next
    time (it may be a cluster that is just starting).

    Args:
        lookup: asks the gateway (``GatewayHttp.owner_of``).
        ttl_s: seconds a confirmed owner is kept.
        size: clusters kept at most (the least recently used go first).
        clock: monotonic seconds (tests inject one).
    """

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[str | None]],
        ttl_s: float,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._size = size
        self._clock = clock
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def owner_of(self, cluster: str) -> str | None:
        """Return the cluster's owner, or ``None`` when it does not exist."""
        now = self._clock()
        hit = self._owners.get(cluster)
        if hit is not None and hit[1] > now:
            self._owners.move_to_end(cluster)
            return hit[0]
        owner: str | None = await self._lookup(cluster)
        if owner is None:
            self._owners.pop(cluster, None)
            return None
        self._owners[cluster] = (owner, now + self._ttl_s)
        self._owners.move_to_end(cluster)
        while len(self._owners) > self._size:
            self._owners.popitem(last=False)
        return owner


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontContext:
    """What the handlers share: the gateway client, the hub auth, the owners."""

    gateway: GatewayHttp
    auth: HubOAuth
    owners: OwnerCache
    log: logging.Logger


class _Front(HubOAuthenticated):
    """Identification and decision, shared by both handlers."""

    context: FrontContext
    route: Route

    def initialize(self, context: FrontContext) -> None:
        """Receive the shared context."""
        self.context = context
        self.hub_auth = context.auth

    async def viewer(self) -> Viewer | None:
        """Return who the hub says sent this request (``None``: nobody)."""
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            return None
        self.current_user = model
        access = bool(self.hub_auth.check_scopes(self.hub_auth.access_scopes, model))
        return Viewer.from_model(model, access=access)

    async def decide(self, cluster: str) -> tuple[Verdict, Viewer | None]:
        """Return the verdict on this request for ``cluster``'s dashboard."""
        viewer = await self.viewer()
        owner = None
        if viewer is not None and viewer.access:
            try:
                owner = await self.context.owners.owner_of(cluster)
            except GatewayHttpError as err:
                self.context.log.warning("owner of %s: %s", cluster, err)
                raise web.HTTPError(err.status) from None
        verdict = may_view(viewer, owner)
        if verdict is not Verdict.ALLOW:
            who = f"{viewer.kind} {viewer.name}" if viewer else "a client"
            self.context.log.info(
                "Dashboard of %s refused to %s: %s", cluster, who, WHY[verdict]
            )
        return verdict, viewer

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer a refusal with a short message for people."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        if status_code == 401:
            self.set_header("WWW-Authenticate", "token")
        message = MESSAGES.get(status_code) or self._reason or "Error"
        self.finish(f"{message}\n")


def _credentials_in_header(request: HTTPServerRequest) -> bool:
    return bool(request.headers.get("Authorization"))


class RelayHandler(_Front, web.RequestHandler):
    """Every non-websocket request under the prefix: decide, then relay."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def compute_etag(self) -> None:
        """No ETag of our own: the response is the upstream's, streamed."""
        return None

    async def prepare(self) -> None:
        """Classify the path; refuse, send to login, or let the request on."""
        self.route = route_for(self.request.path, PREFIX)
        if self.route.kind == "refused":
            raise web.HTTPError(self.route.status)
        if self.route.kind == "oauth_callback":  # only an encoded spelling gets here
            raise web.HTTPError(404)
        if self.route.kind != "dashboard":
            return
        assert self.route.cluster is not None
        verdict, _ = await self.decide(self.route.cluster)
        if verdict is Verdict.LOGIN and self._may_redirect():
            self.redirect(self.get_login_url())
            return
        if verdict is not Verdict.ALLOW:
            raise web.HTTPError(verdict.value)

    def _may_redirect(self) -> bool:
        """Whether a browser is navigating here (others cannot follow OAuth)."""
        mode = self.request.headers.get("Sec-Fetch-Mode", "navigate")
        return (
            self.request.method in ("GET", "HEAD")
            and mode == "navigate"
            and not _credentials_in_header(self.request)
        )

    async def _relay(self) -> None:
        dashboard = self.route.kind == "dashboard"
        query = self.request.query
        if dashboard:
            query = dashboard_query(query)
        path = self.request.path + (f"?{query}" if query else "")
        headers = request_headers(self.request.headers.get_all(), dashboard=dashboard)

        def on_head(head: Head) -> None:
            self.set_status(head.status, head.reason or None)
            for name in ("Content-Type", "Server", "Date"):
                self.clear_header(name)
            for name, value in response_headers(head.headers, dashboard=dashboard):
                self.add_header(name, value)

        async def on_chunk(chunk: bytes) -> None:
            self.write(chunk)
            await self.flush()

        try:
            await self.context.gateway.relay(
                self.request.method or "GET",
                path,
                headers,
                self.request.body or None,
                on_head,
                on_chunk,
            )
        except GatewayHttpError as err:
            self.context.log.warning("%s %s: %s", self.request.method, path, err)
            if err.started:  # the status is out already: all we can do is stop
                self.request.connection.close()  # type: ignore[union-attr]
                return
            raise web.HTTPError(err.status) from None
        except StreamClosedError:
            return  # the client went away
        self.finish()

    async def get(self, *args: str) -> None:
        """Relay the request."""
        await self._relay()

    head = post = delete = patch = put = options = get


def _closing_code(code: int | None) -> int | None:
    """Return a close code that may be sent on, else ``None`` (RFC 6455 7.4)."""
    if code is None or code in (1004, 1005, 1006, 1015) or not 1000 <= code < 5000:
        return None
    return code


class SocketHandler(_Front, WebSocketHandler):
    """A websocket under the prefix: decide, connect upstream, then pump."""

    upstream: WebSocketClientConnection | None = None
    _pump: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        """Classify the path and refuse before the upgrade when not allowed."""
        self.route = route_for(self.request.path, PREFIX)
        if self.route.kind == "refused":
            raise web.HTTPError(self.route.status)
        if self.route.kind == "oauth_callback":
            raise web.HTTPError(404)
        if self.route.kind != "dashboard":
            return
        assert self.route.cluster is not None
        verdict, _ = await self.decide(self.route.cluster)
        if verdict is not Verdict.ALLOW:
            raise web.HTTPError(verdict.value)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Open the upstream websocket, then accept the client's."""
        dashboard = self.route.kind == "dashboard"
        query = self.request.query
        if dashboard:
            query = dashboard_query(query)
        path = self.request.path + (f"?{query}" if query else "")
        asked = self.request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [p.strip() for p in asked.split(",") if p.strip()]
        headers = request_headers(
            self.request.headers.get_all(), dashboard=dashboard, websocket=True
        )
        try:
            self.upstream = await self.context.gateway.websocket(
                path, headers, protocols
            )
        except GatewayHttpError as err:
            self.context.log.warning("websocket %s: %s", self.request.path, err)
            raise web.HTTPError(err.status) from None
        try:
            # Returns when the client's websocket ends (or was never accepted).
            await super().get(*args, **kwargs)
        finally:
            self.upstream.close()

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Agree on what the upstream chose."""
        return self.upstream.selected_subprotocol if self.upstream else None

    def open(self, *args: str, **kwargs: str) -> None:
        """Start sending upstream messages to the client."""
        self._pump = asyncio.ensure_future(self._from_upstream())

    async def _from_upstream(self) -> None:
        upstream = self.upstream
        assert upstream is not None
        while True:
            message = await upstream.read_message()
            if message is None:
                self.close(_closing_code(upstream.close_code), upstream.close_reason)
                return
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                upstream.close()
                return

    async def on_message(self, message: str | bytes) -> None:
        """Send a client message upstream (the next waits until it is written)."""
        if self.upstream is None:
            return
        try:
            await self.upstream.write_message(
                message, binary=isinstance(message, bytes)
            )
        except WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        """Close the upstream side too."""
        if self.upstream is not None:
            self.upstream.close(_closing_code(self.close_code), self.close_reason)


class CallbackHandler(HubOAuthCallbackHandler):
    """JupyterHub's OAuth callback, with the front's hub auth."""

    def initialize(self, context: FrontContext) -> None:
        """Receive the shared context."""
        self.hub_auth = context.auth


class HealthHandler(web.RequestHandler):
    """``/healthz``: the front itself answers (the kubelet's probes).

    Outside the prefix, so the hub's proxy never sends a request here; it says
    nothing about the gateway, whose own health is ``<prefix>/api/health``.
    """

    def get(self) -> None:
        """Answer ok."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok\n")


class _UpgradeMatches(PathMatches):
    """A path that matches only websocket upgrade requests."""

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        """Match when the request asks for a websocket."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        return super().match(request)


def _log_request(handler: web.RequestHandler) -> None:
    """Log a request without its query string (it may carry a token)."""
    status = handler.get_status()
    log = logging.getLogger("tornado.access")
    level = logging.INFO if status < 400 else logging.WARNING
    if status >= 500:
        level = logging.ERROR
    ms = 1000.0 * handler.request.request_time()
    log.log(
        level,
        "%d %s %s %.1fms",
        status,
        handler.request.method,
        handler.request.path,
        ms,
    )


def make_app(
    context: FrontContext,
    *,
    cookie_secret: bytes,
    websocket_max_message_size: int,
    websocket_ping_interval: float | None,
) -> web.Application:
    """Return the front's tornado application.

    Args:
        context: what the handlers share.
        cookie_secret: signs the OAuth state and the service's cookie (a new
            one per start: browsers then go through OAuth again, unnoticed).
        websocket_max_message_size: bytes one websocket message may have.
        websocket_ping_interval: seconds between pings on the client side.

    Returns:
        The application.
    """
    under = PREFIX + r"(?:/.*)?$"
    kwargs = {"context": context}
    return web.Application(
        [
            Rule(PathMatches("/healthz$"), HealthHandler),
            Rule(PathMatches(PREFIX + "/oauth_callback$"), CallbackHandler, kwargs),
            Rule(_UpgradeMatches(under), SocketHandler, kwargs),
            Rule(PathMatches(under), RelayHandler, kwargs),
        ],
        cookie_secret=cookie_secret,
        websocket_max_message_size=websocket_max_message_size,
        websocket_ping_interval=websocket_ping_interval,
        log_function=_log_request,
    )
