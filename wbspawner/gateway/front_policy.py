"""What the dashboards front decides: which requests, who may see, what crosses.

The front (:mod:`wbspawner.gateway.front`) answers everything the hub's proxy
sends to ``/services/dask-gateway``. This module holds its decisions as pure
functions, so that they can be read and tested as tables:

- :func:`route_for`: whether a request path is a cluster's dashboard (and of
  which cluster), the OAuth callback, or the gateway's own API, which passes
  through untouched. Paths whose meaning could change on the way (dot segments,
  encoded slashes or percent signs where the route is decided) are refused, so
  that the gateway's proxy never sees a dashboard path the front took for
  something else.
- :func:`may_view`: whether a hub identity may see a cluster's dashboard: its
  owner or a hub admin, and only with access to the ``dask-gateway`` service.
- :func:`request_headers`, :func:`response_headers`, :func:`dashboard_query`:
  what crosses the front. Hop-by-hop headers never do. A dashboard is served by
  the cluster's scheduler, which runs the user's chosen image, so the hub
  credentials that reached the front (cookies, the ``Authorization`` header, a
  ``token`` query parameter) stop there, and nothing the scheduler answers may
  set a cookie on the hub's origin.

No I/O here, and no web framework.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
"""A cluster name as dask-gateway makes them: a hex id, with the namespace and a
dot in front on Kubernetes (``dask-gateway.0f3c…``)."""

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers of one connection, never forwarded (RFC 9110, section 7.6.1)."""
CREDENTIALS = frozenset({"authorization", "cookie", "x-xsrftoken", "x-csrftoken"})
"""Request headers that carry hub credentials; they stop at the front."""

Header = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Route:
    """What a request path under the prefix is."""

    kind: Literal["dashboard", "oauth_callback", "gateway", "refused"]
    """``dashboard``: a cluster's dashboard (needs the owner or an admin);
    ``oauth_callback``: the end of the hub's OAuth flow; ``gateway``: the
    gateway's API (passed through, the gateway authenticates it); ``refused``:
    an ambiguous or malformed path (answered with :attr:`status`)."""
    cluster: str | None = None
    """The cluster, for ``dashboard``."""
    status: int = 200
    """For ``refused``: 400 (ambiguous path) or 404 (no such cluster name)."""


def route_for(path: str, prefix: str) -> Route:
    """Return what a request path is.

    Args:
        path: the request's path as received, still percent-encoded, without
            the query.
        prefix: the gateway's prefix, e.g. ``/services/dask-gateway``.

    Returns:
        The route.
    """
    prefix = prefix.rstrip("/")
    if path != prefix and not path.startswith(prefix + "/"):
        return Route("refused", status=404)
    # Empty segments are dropped: a proxy that merges slashes must not turn a
    # path the front passed through into a dashboard path.
    raw = [s for s in path[len(prefix) :].split("/") if s]
    decoded = [unquote(s) for s in raw]
    for segment in decoded:
        if {".", ".."} & set(re.split(r"[/\\]", segment)):
            return Route("refused", status=400)
    first = decoded[0] if decoded else ""
    if "%" in first or "/" in first or "\\" in first:
        return Route("refused", status=400)
    if first == "oauth_callback" and len(decoded) == 1:
        return Route("oauth_callback")
    if first != "clusters":
        return Route("gateway")
    name = decoded[1] if len(decoded) > 1 else ""
    if not CLUSTER_NAME.fullmatch(name):
        return Route("refused", status=404)
    return Route("dashboard", cluster=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    """Who the hub says is asking."""

    name: str
    kind: str = "user"
    """``user`` or ``service``: a service is never a cluster's owner."""
    admin: bool = False
    """A hub admin (the user model's ``admin``)."""
    access: bool = True
    """The credential may use the ``dask-gateway`` service
    (``access:services!service=dask-gateway``)."""

    @classmethod
    def from_model(cls, model: Mapping[str, Any], *, access: bool) -> Viewer:
        """Build a viewer from the hub's ``GET /hub/api/user`` model.

        Args:
            model: the user or service model the hub returned for the credential.
            access: whether the credential's scopes grant access to the service.

        Returns:
            The viewer.
        """
        return cls(
            name=str(model["name"]),
            kind=str(model.get("kind") or "user"),
            admin=model.get("admin") is True,
            access=access,
        )


class Verdict(enum.Enum):
    """The answer to a dashboard request."""

    LOGIN = 401
    """Nobody identified: a browser is sent to log in, anything else gets 401."""
    ALLOW = 200
    FORBIDDEN = 403
    NOT_FOUND = 404


def may_view(viewer: Viewer | None, owner: str | None) -> Verdict:
    """Return whether a viewer may see the dashboard of a cluster.

    Args:
        viewer: who asks; ``None`` when the request carries no valid credential.
        owner: the cluster's owner; ``None`` when no such cluster exists.

    Returns:
        :attr:`Verdict.ALLOW` for the owner and for hub admins;
        :attr:`Verdict.NOT_FOUND` for an unknown cluster (to anyone identified).
    """
    if viewer is None:
        return Verdict.LOGIN
    if not viewer.access:
        return Verdict.FORBIDDEN
    if owner is None:
        return Verdict.NOT_FOUND
    if viewer.kind == "user" and (viewer.admin or viewer.name == owner):
        return Verdict.ALLOW
    return Verdict.FORBIDDEN


def _connection_tokens(headers: Iterable[Header]) -> set[str]:
    """Header names the ``Connection`` header marks as hop-by-hop."""
    names: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            names |= {t.strip().lower() for t in value.split(",") if t.strip()}
    return names


def request_headers(
    headers: Iterable[Header], *, dashboard: bool, websocket: bool = False
) -> list[Header]:
    """Return the request headers to send on to the gateway's proxy.

    ``Content-Length`` is left to the client that sends the body, and a
    websocket's own handshake headers to the websocket client. A dashboard
    websocket goes on without its ``Origin``: the front has checked it against
    the hub's host already, and the gateway's proxy may change the ``Host`` the
    scheduler compares it with.

    Args:
        headers: the request's headers as (name, value) pairs.
        dashboard: whether the request is for a dashboard (credentials stop).
        websocket: whether the request opens a websocket.

    Returns:
        New pairs, in order.
    """
    headers = list(headers)
    drop = HOP_BY_HOP | _connection_tokens(headers) | {"content-length"}
    if dashboard:
        drop |= CREDENTIALS
    if dashboard and websocket:
        drop |= {"origin"}
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in drop and not name.lower().startswith("sec-websocket-")
    ]


def response_headers(headers: Iterable[Header], *, dashboard: bool) -> list[Header]:
    """Return the response headers to send back to the client.

    Args:
        headers: the upstream response's headers as (name, value) pairs.
        dashboard: whether the response comes from a scheduler's dashboard,
            which may set no cookie on the hub's origin.

    Returns:
        New pairs, in order.
    """
    headers = list(headers)
    drop = HOP_BY_HOP | _connection_tokens(headers)
    if dashboard:
        drop |= {"set-cookie", "set-cookie2"}
    return [(name, value) for name, value in headers if name.lower() not in drop]


def dashboard_query(query: str) -> str:
    """Return a dashboard request's query without a ``token`` parameter.

    JupyterHub's service auth accepts ``?token=`` on websockets; it is a hub
    credential and stops at the front. The other parameters are kept as sent.

    Args:
        query: the raw query string (without ``?``).

    Returns:
        The raw query string without ``token`` parameters.
    """
    kept = [
        part
        for part in query.split("&")
        if part and unquote(part.partition("=")[0].replace("+", " ")) != "token"
    ]
    return "&".join(kept)
