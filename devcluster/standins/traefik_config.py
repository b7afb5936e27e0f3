"""Routing decisions of the traefik stand-in, as pure functions.

What traefik's Kubernetes CRD provider makes of IngressRoute, IngressRouteTCP
and Middleware objects (``traefik.io/v1alpha1``), for the subset the
dask-gateway chart and its controller write:

- rules: ``PathPrefix``, ``Path``, ``Host`` (HTTP) and ``HostSNI`` (TCP), each
  with one or more backquoted values, joined by ``&&`` or ``||`` (no
  parentheses, no negation, no regular-expression matchers);
- priority: a route's ``priority``, else the length of its rule, longest first
  (traefik's default), so ``/services/dask-gateway/clusters/x/`` wins over
  ``/services/dask-gateway``;
- ``entryPoints``: a route serves only the entry points it names (all when it
  names none);
- middlewares ``stripPrefix`` (``prefixes``) and ``stripPrefixRegex``
  (``regex``): the matched prefix is removed from the path (an empty path
  becomes ``/``) and sent as ``X-Forwarded-Prefix``; a middleware is found in
  the route's namespace unless the reference names one; other middleware
  types make the route unusable (traefik refuses the route as well);
- services: the first service of a route (traefik balances over several; the
  charts write one), a Service ``name``, ``namespace`` (the route's unless
  set; another only with ``allowCrossNamespace``) and ``port`` (number or
  name), reached at the ready endpoints of its EndpointSlices;
- TCP: ``HostSNI`` routes with ``tls.passthrough``: the TLS server name of the
  client's ClientHello picks the route and the connection, ClientHello
  included, is passed through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]
Matcher = Callable[[str, str], bool]
"""``(host, path) -> bool`` (for TCP routes, host is the TLS server name)."""

_CALL = re.compile(r"\s*(PathPrefix|Path|Host|HostSNI)\(([^)]*)\)\s*$")
_VALUE = re.compile(r"`([^`]*)`")


class RuleError(ValueError):
    """A rule this stand-in does not understand (the route is skipped)."""


def _matcher(name: str, values: list[str]) -> Matcher:
    if name == "PathPrefix":
        return lambda _h, p: any(p.startswith(v) for v in values)
    if name == "Path":
        return lambda _h, p: p in values
    lowered = [v.lower() for v in values]
    if name == "HostSNI" and "*" in lowered:
        return lambda _h, _p: True
    return lambda h, _p: h.split(":", 1)[0].lower() in lowered


def parse_rule(rule: str) -> Matcher:
    """Return the matcher of a traefik rule.

    Raises:
        RuleError: the rule uses something not implemented here.
    """
    alternatives: list[list[Matcher]] = []
    for alternative in rule.split("||"):
        terms = []
        for term in alternative.split("&&"):
            found = _CALL.match(term)
            if found is None:
                raise RuleError(f"unsupported rule: {rule!r}")
            values = _VALUE.findall(found.group(2))
            if not values:
                raise RuleError(f"no value in {term.strip()!r}")
            terms.append(_matcher(found.group(1), values))
        alternatives.append(terms)

    def match(host: str, path: str) -> bool:
        return any(all(t(host, path) for t in terms) for terms in alternatives)

    return match


@dataclass(frozen=True)
class Strip:
    """A prefix-stripping middleware: literal prefixes or regular expressions."""

    prefixes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def apply(self, path: str) -> tuple[str, str]:
        """Return ``(new path, stripped prefix)`` ("" when nothing matched)."""
        for prefix in self.prefixes:
            if path.startswith(prefix):
                return _rooted(path[len(prefix) :]), prefix
        for pattern in self.patterns:
            found = re.match(pattern, path)
            if found is not None and found.group(0):
                return _rooted(path[found.end() :]), found.group(0)
        return path, ""


def _rooted(path: str) -> str:
    return path if path.startswith("/") else "/" + path


@dataclass(frozen=True)
class Backend:
    """A Service port a route sends to."""

    namespace: str
    name: str
    port: int | str


@dataclass(frozen=True)
class Route:
    """One usable route, HTTP or TCP."""

    rule: str
    priority: int
    match: Matcher = field(compare=False)
    backend: Backend
    middlewares: tuple[Strip, ...] = ()
    passthrough: bool = False


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def middlewares_by_key(objs: Iterable[Obj]) -> dict[tuple[str, str], Strip | None]:
    """Return each Middleware by ``(namespace, name)`` (None: a type not handled)."""
    found: dict[tuple[str, str], Strip | None] = {}
    for obj in objs:
        spec = obj.get("spec") or {}
        key = (str(_meta(obj).get("namespace", "")), str(_meta(obj).get("name", "")))
        if "stripPrefix" in spec:
            prefixes = (spec["stripPrefix"] or {}).get("prefixes") or []
            found[key] = Strip(prefixes=tuple(str(p) for p in prefixes))
        elif "stripPrefixRegex" in spec:
            patterns = (spec["stripPrefixRegex"] or {}).get("regex") or []
            found[key] = Strip(patterns=tuple(str(p) for p in patterns))
        else:
            found[key] = None
    return found


def _backend(service: Obj, namespace: str, cross_namespace: bool) -> Backend | None:
    target = str(service.get("namespace") or namespace)
    if target != namespace and not cross_namespace:
        return None
    port = service.get("port")
    if port is None or not service.get("name"):
        return None
    return Backend(target, str(service["name"]), port)


def http_routes(
    ingressroutes: Iterable[Obj],
    middlewares: Mapping[tuple[str, str], Strip | None],
    entrypoint: str,
    cross_namespace: bool,
) -> list[Route]:
    """Return the usable HTTP routes of an entry point, highest priority first."""
    routes = []
    for _, namespace, entry in _route_entries(ingressroutes, entrypoint):
        route = _http_route(entry, namespace, middlewares, cross_namespace)
        if route is not None:
            routes.append(route)
    return sorted(routes, key=lambda r: -r.priority)


def _route_entries(
    objs: Iterable[Obj], entrypoint: str
) -> Iterator[tuple[Obj, str, Obj]]:
    """Yield ``(spec, namespace, route entry)`` of the objects on ``entrypoint``
    (an object that names no entry points is on every one)."""
    for obj in objs:
        spec = obj.get("spec") or {}
        namespace = str(_meta(obj).get("namespace", ""))
        if spec.get("entryPoints") and entrypoint not in spec["entryPoints"]:
            continue
        for entry in spec.get("routes") or []:
            yield spec, namespace, entry


def _http_route(
    entry: Obj,
    namespace: str,
    middlewares: Mapping[tuple[str, str], Strip | None],
    cross_namespace: bool,
) -> Route | None:
    rule = str(entry.get("match", ""))
    try:
        match = parse_rule(rule)
    except RuleError:
        return None
    chain = []
    for ref in entry.get("middlewares") or []:
        where = str(ref.get("namespace") or namespace)
        if where != namespace and not cross_namespace:
            return None
        strip = middlewares.get((where, str(ref.get("name", ""))))
        if strip is None:
            return None
        chain.append(strip)
    services = entry.get("services") or []
    backend = _backend(services[0], namespace, cross_namespace) if services else None
    if backend is None:
        return None
    priority = int(entry.get("priority") or len(rule))
    return Route(rule, priority, match, backend, tuple(chain))


def tcp_routes(
    ingressroutetcps: Iterable[Obj], entrypoint: str, cross_namespace: bool
) -> list[Route]:
    """Return the usable TCP routes of an entry point, highest priority first."""
    routes = []
    for spec, namespace, entry in _route_entries(ingressroutetcps, entrypoint):
        passthrough = bool((spec.get("tls") or {}).get("passthrough"))
        rule = str(entry.get("match", ""))
        services = entry.get("services") or []
        try:
            match = parse_rule(rule)
        except RuleError:
            continue
        backend = (
            _backend(services[0], namespace, cross_namespace) if services else None
        )
        if backend is not None:
            priority = int(entry.get("priority") or len(rule))
            routes.append(Route(rule, priority, match, backend, (), passthrough))
    return sorted(routes, key=lambda r: -r.priority)


def pick(routes: Iterable[Route], host: str, path: str) -> Route | None:
    """Return the first route that matches (routes are in priority order)."""
    return next((r for r in routes if r.match(host, path)), None)


def ready_endpoints(
    slices: Iterable[Obj], port_name: str | None
) -> list[tuple[str, int]]:
    """Return ``(address, port)`` of every ready endpoint of a Service port.

    ``slices`` are the Service's EndpointSlices; the port is found by the
    Service port's name (unnamed when the Service has a single port).
    """
    found = []
    for slice_ in slices:
        ports = [
            p
            for p in slice_.get("ports") or []
            if (p.get("name") or None) == (port_name or None)
        ]
        if not ports:
            continue
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            found += [(str(a), int(ports[0]["port"])) for a in endpoint["addresses"]]
    return found


def server_name(hello: bytes) -> str | None:
    """Return the SNI host name of a TLS ClientHello record ("" when it has none).

    Returns None while ``hello`` is too short to tell (read more and ask
    again). Raises ValueError when it is not a TLS handshake.
    """
    if len(hello) < 5:
        return None
    if hello[0] != 0x16:
        raise ValueError("not a TLS handshake")
    length = int.from_bytes(hello[3:5], "big")
    if len(hello) < 5 + length:
        return None
    body = hello[5 : 5 + length]
    if not body or body[0] != 0x01:
        raise ValueError("not a ClientHello")
    pos = 4 + 2 + 32  # handshake header, client version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= min(end, len(body)):
        kind = int.from_bytes(body[pos : pos + 2], "big")
        size = int.from_bytes(body[pos + 2 : pos + 4], "big")
        data = body[pos + 4 : pos + 4 + size]
        if kind == 0:  # server_name: list length, type 0 (host_name), length, name
            return data[5 : 5 + int.from_bytes(data[3:5], "big")].decode("ascii")
        pos += 4 + size
    return ""
