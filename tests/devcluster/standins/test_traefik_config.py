"""The traefik stand-in's routing decisions, against traefik's documented behaviour.

Objects are shaped as the dask-gateway chart (2026.3.0) and its controller
write them.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from devcluster.standins import traefik_config as rules

NS = "dask-gateway"
CLUSTER_PREFIX = "/services/dask-gateway/clusters/dask-gateway.abc/"


def _obj(kind: str, name: str, spec: dict[str, Any], ns: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


API_ROUTE = _obj(
    "IngressRoute",
    "api-dask-gateway",
    {
        "entryPoints": ["web"],
        "routes": [
            {
                "match": "PathPrefix(`/services/dask-gateway`)",
                "kind": "Rule",
                "services": [{"name": "api-dask-gateway", "port": 8000}],
                "middlewares": [{"name": "api-prefix-dask-gateway"}],
            }
        ],
    },
)
DASHBOARD_ROUTE = _obj(
    "IngressRoute",
    "dask-abc",
    {
        "entryPoints": ["web"],
        "routes": [
            {
                "kind": "Rule",
                "match": f"PathPrefix(`{CLUSTER_PREFIX}`)",
                "services": [
                    {"name": "dask-abc", "namespace": NS, "port": 8787},
                ],
                "middlewares": [
                    {"name": "clusters-prefix-dask-gateway", "namespace": NS}
                ],
            }
        ],
    },
)
MIDDLEWARES = [
    _obj(
        "Middleware",
        "api-prefix-dask-gateway",
        {"stripPrefix": {"prefixes": ["/services/dask-gateway"]}},
    ),
    _obj(
        "Middleware",
        "clusters-prefix-dask-gateway",
        {
            "stripPrefixRegex": {
                "regex": ["/services/dask-gateway/clusters/[a-zA-Z0-9.-]+"]
            }
        },
    ),
]


def _http(*routes: dict[str, Any], cross: bool = True) -> list[rules.Route]:
    middlewares = rules.middlewares_by_key(MIDDLEWARES)
    return rules.http_routes(routes, middlewares, "web", cross)


def test_the_longest_rule_wins_and_its_prefix_is_stripped() -> None:
    """Default priority is the rule's length; stripPrefixRegex removes the
    match (the cluster's dashboard sees ``/status``)."""
    routes = _http(API_ROUTE, DASHBOARD_ROUTE)
    path = "/services/dask-gateway/clusters/dask-gateway.abc/status"
    route = rules.pick(routes, "traefik", path)
    assert route is not None and route.backend == rules.Backend(NS, "dask-abc", 8787)
    assert route.middlewares[0].apply(path) == (
        "/status",
        "/services/dask-gateway/clusters/dask-gateway.abc",
    )
    api = rules.pick(routes, "traefik", "/services/dask-gateway/api/v1/clusters/")
    assert api is not None and api.backend.name == "api-dask-gateway"
    assert api.middlewares[0].apply("/services/dask-gateway/api/v1/clusters/") == (
        "/api/v1/clusters/",
        "/services/dask-gateway",
    )
    assert api.middlewares[0].apply("/services/dask-gateway") == (
        "/",
        "/services/dask-gateway",
    )
    assert rules.pick(routes, "traefik", "/hub/api") is None


def test_routes_keep_to_their_entry_points_and_namespaces() -> None:
    """A route serves the entry points it names; without
    ``allowCrossNamespace`` a service or middleware of another namespace
    makes the route unusable."""
    assert rules.http_routes([API_ROUTE], {}, "web", True) == []  # no middleware
    middlewares = rules.middlewares_by_key(MIDDLEWARES)
    assert rules.http_routes([API_ROUTE], middlewares, "tcp", True) == []
    elsewhere = _obj("IngressRoute", "x", DASHBOARD_ROUTE["spec"], ns="jhub")
    assert _http(elsewhere, cross=False) == []
    assert len(_http(elsewhere, cross=True)) == 1


@pytest.mark.parametrize(
    ("rule", "host", "path", "expected"),
    [
        ("Path(`/a`)", "h", "/a", True),
        ("Path(`/a`)", "h", "/a/b", False),
        ("Host(`Example.org`) && PathPrefix(`/a`)", "example.org:80", "/a/b", True),
        ("Host(`example.org`) && PathPrefix(`/a`)", "other", "/a/b", False),
        ("PathPrefix(`/x`) || PathPrefix(`/a`)", "h", "/a", True),
        ("PathPrefix(`/x`, `/y`)", "h", "/y/z", True),
        ("HostSNI(`*`)", "anything", "", True),
    ],
)
def test_rules(rule: str, host: str, path: str, expected: bool) -> None:
    assert rules.parse_rule(rule)(host, path) is expected


def test_unsupported_rules_are_refused() -> None:
    with pytest.raises(rules.RuleError):
        rules.parse_rule("PathRegexp(`^/a`)")
    with pytest.raises(rules.RuleError):
        rules.parse_rule("!Path(`/a`)")


def _client_hello(server_hostname: str | None) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = server_hostname is not None
    if server_hostname is None:
        context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_server_name_of_a_real_client_hello() -> None:
    """The name a TLS client (Python's ssl, as the Dask client) sends in SNI
    picks the IngressRouteTCP with that ``HostSNI``; passthrough is kept."""
    name = "daskgateway-dask-gateway.abc"
    hello = _client_hello(name)
    assert rules.server_name(hello[:3]) is None
    assert rules.server_name(hello[:-1]) is None
    assert rules.server_name(hello) == name
    assert rules.server_name(_client_hello(None)) == ""
    with pytest.raises(ValueError):
        rules.server_name(b"GET / HTTP/1.1\r\n")
    route = _obj(
        "IngressRouteTCP",
        "dask-abc",
        {
            "entryPoints": ["tcp"],
            "routes": [
                {
                    "match": f"HostSNI(`{name}`)",
                    "services": [{"name": "dask-abc", "namespace": NS, "port": 8786}],
                }
            ],
            "tls": {"passthrough": True},
        },
    )
    routes = rules.tcp_routes([route], "tcp", True)
    found = rules.pick(routes, name, "")
    assert found is not None and found.passthrough
    assert found.backend == rules.Backend(NS, "dask-abc", 8786)
    assert rules.pick(routes, "daskgateway-dask-gateway.other", "") is None


def test_a_headless_services_ready_endpoints_by_port_name() -> None:
    """traefik sends to the Service's endpoints (EndpointSlices), so a
    headless Service (the dask schedulers') works; not-ready ones are left
    out."""
    slices = [
        {
            "ports": [
                {"name": "scheduler", "port": 8786},
                {"name": "dashboard", "port": 8787},
            ],
            "endpoints": [
                {"addresses": ["127.0.1.8"], "conditions": {"ready": True}},
                {"addresses": ["127.0.1.9"], "conditions": {"ready": False}},
            ],
        },
        {"ports": [{"name": "other", "port": 1}], "endpoints": []},
    ]
    assert rules.ready_endpoints(slices, "scheduler") == [("127.0.1.8", 8786)]
    assert rules.ready_endpoints(slices, "dashboard") == [("127.0.1.8", 8787)]
    assert rules.ready_endpoints(slices, "api") == []
    unnamed = [{"ports": [{"port": 80}], "endpoints": [{"addresses": ["a"]}]}]
    assert rules.ready_endpoints(unnamed, None) == [("a", 80)]
