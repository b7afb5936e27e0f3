"""A stand-in for traefik 3 as the dask-gateway chart runs it, for devcluster.

traefik is a Go program this machine does not have; devcluster maps the
chart's ``traefik.image`` to this module (``images/environments.yaml``). It
takes the chart's arguments and does what traefik does with them, for what
the chart and the dask-gateway controller configure:

- ``--entrypoints.<name>.address=:<port>``: a listener per entry point; the
  one named ``traefik`` answers ``GET /ping`` (``--ping=true``: the chart's
  probes) and the others route;
- ``--providers.kubernetescrd``: IngressRoute, IngressRouteTCP and Middleware
  objects (``traefik.io/v1alpha1``, every namespace) are listed and watched
  through the API server with the pod's ServiceAccount (in-cluster
  configuration, as traefik's provider does), filtered by
  ``--providers.kubernetescrd.labelselector``;
  ``--providers.kubernetescrd.allowcrossnamespace`` lets routes name Services
  and Middlewares of other namespaces; a change takes effect at most every
  ``--providers.kubernetescrd.throttleduration`` seconds;
- HTTP entry points proxy requests by the rules of
  :mod:`devcluster.standins.traefik_config` (``PathPrefix``/``Path``/``Host``,
  priorities, ``stripPrefix``/``stripPrefixRegex`` with
  ``X-Forwarded-Prefix``), adding ``X-Forwarded-For/-Host/-Proto``; no match
  is a 404, a backend that cannot be reached a 502, as traefik answers;
- TCP entry points route TLS connections by ``HostSNI`` with
  ``tls.passthrough`` (the dask schedulers' routes) and pass the bytes through.

Not implemented: websockets through HTTP routes (the Dask dashboard's live
plots), TLS termination, other middlewares, weighted or several services per
route, UDP, the dashboard and API (``--api.*``), metrics, access logs,
``nativeLB``. A route's Service is reached at its ready endpoints, from its
EndpointSlices (round robin), as traefik does; a Service without one is a 503.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from devcluster.standins import traefik_config as rules

log = logging.getLogger("traefik")

GROUP, VERSION = "traefik.io", "v1alpha1"
KINDS = ("ingressroutes", "ingressroutetcps", "middlewares")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def parse_args(argv: Sequence[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Return the entry points (name → port) and the other ``--key=value`` flags."""
    entrypoints: dict[str, int] = {}
    flags: dict[str, str] = {}
    for arg in argv:
        key, _, value = arg.lstrip("-").partition("=")
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "entrypoints" and parts[2] == "address":
            entrypoints[parts[1]] = int(value.rsplit(":", 1)[1])
        else:
            flags[key.lower()] = value or "true"
    return entrypoints, flags


class Routes:
    """The objects seen through the watches and the route tables built from them."""

    def __init__(self, entrypoints: Mapping[str, int], cross_namespace: bool) -> None:
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            k: {} for k in KINDS
        }
        self.entrypoints = entrypoints
        self.cross_namespace = cross_namespace
        self.http: dict[str, list[rules.Route]] = {}
        self.tcp: dict[str, list[rules.Route]] = {}
        self.changed = asyncio.Event()

    def update(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """Record one watch event."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if event == "DELETED":
            self.objects[kind].pop(key, None)
        else:
            self.objects[kind][key] = obj
        self.changed.set()

    def rebuild(self) -> None:
        """Build every entry point's routes from the objects now known."""
        middlewares = rules.middlewares_by_key(self.objects["middlewares"].values())
        for name in self.entrypoints:
            self.http[name] = rules.http_routes(
                self.objects["ingressroutes"].values(),
                middlewares,
                name,
                self.cross_namespace,
            )
            self.tcp[name] = rules.tcp_routes(
                self.objects["ingressroutetcps"].values(), name, self.cross_namespace
            )
        log.info(
            "configuration: %s",
            {n: [r.rule for r in self.http[n] + self.tcp[n]] for n in self.entrypoints},
        )


class Provider:
    """The Kubernetes CRD provider: list and watch, then throttled rebuilds."""

    def __init__(self, routes: Routes, selector: str, throttle_s: float) -> None:
        self.routes = routes
        self.selector = selector
        self.throttle_s = throttle_s
        self.api: client.ApiClient | None = None
        self._turn = 0

    async def start(self) -> list[asyncio.Task[None]]:
        """Connect with the in-cluster configuration and start watching."""
        config.load_incluster_config()
        self.api = client.ApiClient()
        tasks = [asyncio.create_task(self._watch(kind)) for kind in KINDS]
        tasks.append(asyncio.create_task(self._rebuilds()))
        return tasks

    async def _watch(self, kind: str) -> None:
        custom = client.CustomObjectsApi(self.api)
        while True:
            try:
                listed = await custom.list_cluster_custom_object(
                    GROUP, VERSION, kind, label_selector=self.selector
                )
                self.routes.objects[kind] = {}
                for obj in listed.get("items") or []:
                    self.routes.update(kind, "ADDED", obj)
                self.routes.changed.set()
                version = listed["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(
                    custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    kind,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=300,
                )
                async for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.routes.update(kind, event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except (ApiException, aiohttp.ClientError, ValueError) as err:
                # a 410 Gone or a dropped connection: list again
                log.warning("watch of %s ended: %s; listing again", kind, err)
                await asyncio.sleep(1)

    async def _rebuilds(self) -> None:
        while True:
            await self.routes.changed.wait()
            self.routes.changed.clear()
            self.routes.rebuild()
            await asyncio.sleep(self.throttle_s)

    async def address(self, backend: rules.Backend) -> tuple[str, int]:
        """Return a ready endpoint (address, port) of a route's Service port.

        As traefik does, from the Service's EndpointSlices (so headless
        Services, such as the dask schedulers', work), the next ready
        endpoint each time.

        Raises:
            LookupError: the Service, its port or a ready endpoint is missing.
        """
        assert self.api is not None, "start() first"
        service = await client.CoreV1Api(self.api).read_namespaced_service(
            backend.name, backend.namespace
        )
        wanted = next(
            (
                p
                for p in service.spec.ports or []
                if str(backend.port) in (str(p.port), str(p.name))
            ),
            None,
        )
        if wanted is None:
            raise LookupError(f"service {backend.name} has no port {backend.port}")
        slices = await client.DiscoveryV1Api(self.api).list_namespaced_endpoint_slice(
            backend.namespace,
            label_selector=f"kubernetes.io/service-name={backend.name}",
        )
        found = rules.ready_endpoints(
            [self.api.sanitize_for_serialization(s) for s in slices.items],
            wanted.name,
        )
        if not found:
            raise LookupError(f"service {backend.name} has no ready endpoint")
        self._turn += 1
        return found[self._turn % len(found)]


class HttpEntryPoint:
    """An HTTP entry point: match, strip, forward."""

    def __init__(self, name: str, provider: Provider) -> None:
        self.name = name
        self.provider = provider
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request (matched and forwarded with its path as sent)."""
        raw_path, _, query = request.raw_path.partition("?")
        route = rules.pick(
            self.provider.routes.http.get(self.name, []), request.host, raw_path
        )
        if route is None:
            return web.Response(status=404, text="404 page not found\n")
        path, headers = raw_path, _forwarded(request)
        for strip in route.middlewares:
            path, prefix = strip.apply(path)
            if prefix:
                headers["X-Forwarded-Prefix"] = prefix
        try:
            ip, port = await self.provider.address(route.backend)
        except (ApiException, LookupError):
            return web.Response(status=503, text="Service Unavailable")
        url = f"http://{ip}:{port}{path}"
        if query:
            url += "?" + query
        assert self.session is not None
        try:
            async with self.session.request(
                request.method,
                url,
                headers=headers,
                data=await request.read() if request.can_read_body else None,
                allow_redirects=False,
            ) as answer:
                response = web.StreamResponse(status=answer.status)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError:
            return web.Response(status=502, text="Bad Gateway")


def _forwarded(request: web.Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = request.scheme
    headers["Host"] = request.host
    return headers


class TcpEntryPoint:
    """A TCP entry point: TLS passthrough routed by the ClientHello's server name."""

    def __init__(self, name: str, provider: Provider) -> None:
        self.name = name
        self.provider = provider

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Route one connection."""
        try:
            await self._handle(reader, writer)
        except (OSError, ValueError, ApiException, LookupError) as err:
            log.info("tcp connection on %s closed: %s", self.name, err)
        finally:
            writer.close()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        hello = b""
        name = None
        while name is None:
            chunk = await asyncio.wait_for(reader.read(16384), 30)
            if not chunk:
                return
            hello += chunk
            name = rules.server_name(hello)
        routes = self.provider.routes.tcp.get(self.name, [])
        route = rules.pick([r for r in routes if r.passthrough], name, "")
        if route is None:
            log.info("no TCP route for server name %r", name)
            return
        ip, port = await self.provider.address(route.backend)
        up_reader, up_writer = await asyncio.open_connection(ip, port)
        up_writer.write(hello)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _ping(_request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def serve(argv: Sequence[str]) -> None:
    """Run until SIGTERM or SIGINT (traefik's ``--ping`` answers meanwhile)."""
    entrypoints, flags = parse_args(argv)
    routes = Routes(
        entrypoints, flags.get("providers.kubernetescrd.allowcrossnamespace") == "true"
    )
    provider = Provider(
        routes,
        flags.get("providers.kubernetescrd.labelselector", ""),
        float(flags.get("providers.kubernetescrd.throttleduration", "2").rstrip("s")),
    )
    tasks = await provider.start()
    runners: list[web.AppRunner] = []
    servers: list[asyncio.Server] = []
    session = aiohttp.ClientSession(auto_decompress=False)
    for name, port in entrypoints.items():
        if name == "traefik":
            app = web.Application()
            app.router.add_get("/ping", _ping)
        elif name == "tcp":
            tcp = TcpEntryPoint(name, provider)
            servers.append(await asyncio.start_server(tcp.handle, "0.0.0.0", port))
            continue
        else:
            http = HttpEntryPoint(name, provider)
            http.session = session
            app = web.Application(client_max_size=64 * 1024**2)
            app.router.add_route("*", "/{tail:.*}", http.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()
        runners.append(runner)
    log.info("traefik stand-in: entry points %s", entrypoints)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    for server in servers:
        server.close()
    for runner in runners:
        await runner.cleanup()
    await session.close()
    if provider.api is not None:
        await provider.api.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: the chart's traefik arguments."""
    parser = argparse.ArgumentParser(prog="traefik", add_help=True)
    parser.add_argument("args", nargs="*")
    known, rest = parser.parse_known_args(argv)
    args = [*known.args, *rest]
    level = next(
        (a.split("=", 1)[1] for a in args if a.lower().startswith("--log.level=")),
        "INFO",
    )
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
