"""The dashboards front's decisions, as tables (wbspawner.gateway.front_policy)."""

from __future__ import annotations

import pytest

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

P = "/services/dask-gateway"
NAME = "0f3c9a8e1b2d4c5f8a7b6c5d4e3f2a1b"


@pytest.mark.parametrize(
    ("path", "route"),
    [
        pytest.param(
            f"{P}/clusters/{NAME}/status", Route("dashboard", NAME), id="dashboard"
        ),
        pytest.param(f"{P}/clusters/{NAME}", Route("dashboard", NAME), id="bare"),
        pytest.param(
            f"{P}/clusters/dask-gateway.{NAME}/info/main/workers.html",
            Route("dashboard", f"dask-gateway.{NAME}"),
            id="kubernetes-name",
        ),
        pytest.param(
            f"{P}/clusters/{NAME}/info/worker/tcp%3A%2F%2F10.0.0.7%3A3456.html",
            Route("dashboard", NAME),
            id="encoded-worker-address",
        ),
        pytest.param(
            f"{P}/cl%75sters/{NAME}/status", Route("dashboard", NAME), id="encoded"
        ),
        pytest.param(
            f"{P}//clusters/{NAME}/status", Route("dashboard", NAME), id="double-slash"
        ),
        pytest.param(f"{P}/api/v1/clusters/", Route("gateway"), id="api"),
        pytest.param(f"{P}/api/v1/clusters/{NAME}", Route("gateway"), id="api-one"),
        pytest.param(f"{P}/api/health", Route("gateway"), id="health"),
        pytest.param(P, Route("gateway"), id="prefix"),
        pytest.param(f"{P}/", Route("gateway"), id="prefix-slash"),
        pytest.param(f"{P}/oauth_callback", Route("oauth_callback"), id="callback"),
        pytest.param(
            f"{P}/oauth_callback/x", Route("gateway"), id="not-quite-the-callback"
        ),
        pytest.param(f"{P}/clusters/", Route("refused", status=404), id="no-name"),
        pytest.param(
            f"{P}/clusters/a%20b/status", Route("refused", status=404), id="bad-name"
        ),
        pytest.param(
            f"{P}/api/../clusters/{NAME}/status",
            Route("refused", status=400),
            id="dot-dot",
        ),
        pytest.param(
            f"{P}/api/%2e%2e/clusters/{NAME}",
            Route("refused", status=400),
            id="encoded-dot-dot",
        ),
        pytest.param(
            f"{P}/api%2F..%2Fclusters/{NAME}",
            Route("refused", status=400),
            id="encoded-slash-dot-dot",
        ),
        pytest.param(
            f"{P}/clusters/{NAME}/..%5C..%5Capi",
            Route("refused", status=400),
            id="backslash-dot-dot",
        ),
        pytest.param(f"{P}/./clusters/{NAME}", Route("refused", status=400), id="dot"),
        pytest.param(
            f"{P}/cl%2575sters/{NAME}", Route("refused", status=400), id="double-enc"
        ),
        pytest.param(
            f"{P}/api%2Fv1/clusters", Route("refused", status=400), id="encoded-slash"
        ),
        pytest.param(
            "/services/dask-gateway-other/clusters/x",
            Route("refused", status=404),
            id="other-prefix",
        ),
        pytest.param("/hub/api/users", Route("refused", status=404), id="elsewhere"),
    ],
)
def test_route_for(path: str, route: Route) -> None:
    assert route_for(path, P) == route
    assert route_for(path, P + "/") == route  # the prefix with its slash


BOB = Viewer(name="bob")
GINA = Viewer(name="gina")
ALICE = Viewer(name="alice", admin=True)


@pytest.mark.parametrize(
    ("viewer", "owner", "verdict"),
    [
        pytest.param(BOB, "bob", Verdict.ALLOW, id="owner"),
        pytest.param(ALICE, "bob", Verdict.ALLOW, id="admin"),
        pytest.param(GINA, "bob", Verdict.FORBIDDEN, id="another-user"),
        pytest.param(None, "bob", Verdict.LOGIN, id="nobody"),
        pytest.param(None, None, Verdict.LOGIN, id="nobody-unknown-cluster"),
        pytest.param(BOB, None, Verdict.NOT_FOUND, id="unknown-cluster"),
        pytest.param(GINA, None, Verdict.NOT_FOUND, id="unknown-cluster-other"),
        pytest.param(
            Viewer(name="bob", kind="service"),
            "bob",
            Verdict.FORBIDDEN,
            id="service-named-like-the-owner",
        ),
        pytest.param(
            Viewer(name="x", kind="service", admin=True),
            "bob",
            Verdict.FORBIDDEN,
            id="service-is-never-admin",
        ),
        pytest.param(
            Viewer(name="bob", access=False),
            "bob",
            Verdict.FORBIDDEN,
            id="owner-without-gateway-access",
        ),
        pytest.param(
            Viewer(name="alice", admin=True, access=False),
            "bob",
            Verdict.FORBIDDEN,
            id="admin-without-gateway-access",
        ),
        pytest.param(
            Viewer(name="bob", access=False),
            None,
            Verdict.FORBIDDEN,
            id="no-access-learns-nothing",
        ),
    ],
)
def test_may_view(viewer: Viewer | None, owner: str | None, verdict: Verdict) -> None:
    assert may_view(viewer, owner) is verdict


@pytest.mark.parametrize(
    ("model", "viewer"),
    [
        pytest.param(
            {"kind": "user", "name": "alice", "admin": True, "scopes": []},
            Viewer(name="alice", admin=True),
            id="admin",
        ),
        pytest.param(
            {"kind": "user", "name": "bob", "admin": False},
            Viewer(name="bob"),
            id="user",
        ),
        pytest.param(
            {"kind": "service", "name": "warmer"},
            Viewer(name="warmer", kind="service"),
            id="service",
        ),
        pytest.param(
            {"name": "bob", "admin": "yes"}, Viewer(name="bob"), id="admin-only-if-true"
        ),
    ],
)
def test_viewer_from_the_hub_model(model: dict[str, object], viewer: Viewer) -> None:
    assert Viewer.from_model(model, access=True) == viewer


CLIENT = [
    ("Host", "hub.example.org"),
    ("Cookie", "service-dask-gateway=abc; jupyterhub-session-id=x"),
    ("Authorization", "token s3cret"),
    ("X-XSRFToken", "x"),
    ("Connection", "keep-alive, X-Private"),
    ("X-Private", "per-hop"),
    ("Keep-Alive", "timeout=5"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Key", "k"),
    ("Sec-WebSocket-Protocol", "bokeh, t"),
    ("Content-Length", "3"),
    ("Origin", "https://hub.example.org"),
    ("Accept", "text/html"),
]


def test_dashboard_requests_keep_no_hub_credential() -> None:
    assert request_headers(CLIENT, dashboard=True) == [
        ("Host", "hub.example.org"),
        ("Origin", "https://hub.example.org"),
        ("Accept", "text/html"),
    ]


def test_dashboard_websockets_go_on_without_their_origin() -> None:
    assert request_headers(CLIENT, dashboard=True, websocket=True) == [
        ("Host", "hub.example.org"),
        ("Accept", "text/html"),
    ]
    kept = request_headers(CLIENT, dashboard=False, websocket=True)
    assert ("Origin", "https://hub.example.org") in kept


def test_gateway_requests_keep_everything_but_hop_by_hop() -> None:
    assert request_headers(CLIENT, dashboard=False) == [
        ("Host", "hub.example.org"),
        ("Cookie", "service-dask-gateway=abc; jupyterhub-session-id=x"),
        ("Authorization", "token s3cret"),
        ("X-XSRFToken", "x"),
        ("Origin", "https://hub.example.org"),
        ("Accept", "text/html"),
    ]


UPSTREAM = [
    ("Content-Type", "text/html"),
    ("Set-Cookie", "service-dask-gateway=evil; Path=/services/dask-gateway/"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "close"),
    ("Content-Length", "10"),
]


@pytest.mark.parametrize(
    ("dashboard", "expected"),
    [
        pytest.param(
            True,
            [("Content-Type", "text/html"), ("Content-Length", "10")],
            id="dashboard-sets-no-cookie",
        ),
        pytest.param(
            False,
            [
                ("Content-Type", "text/html"),
                (
                    "Set-Cookie",
                    "service-dask-gateway=evil; Path=/services/dask-gateway/",
                ),
                ("Content-Length", "10"),
            ],
            id="gateway",
        ),
    ],
)
def test_response_headers(dashboard: bool, expected: list[tuple[str, str]]) -> None:
    assert response_headers(UPSTREAM, dashboard=dashboard) == expected


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("token=abc", "", id="only-token"),
        pytest.param("a=1&token=abc&b=%20x", "a=1&b=%20x", id="kept-as-sent"),
        pytest.param("to%6Ben=abc&tokens=1", "tokens=1", id="encoded-name"),
        pytest.param("token&x", "x", id="bare"),
    ],
)
def test_dashboard_query_drops_the_token(query: str, kept: str) -> None:
    assert dashboard_query(query) == kept
