"""The Kubernetes API over HTTP: routing, verbs, watch streams, discovery.

An aiohttp application in front of a ``Store``. It speaks the wire protocol
unmodified clients expect (kubernetes_asyncio, KubeSpawner, kubectl): JSON
bodies, ``Status`` errors, chunked watch streams that close at
``timeoutSeconds``, ``watch=true/True/1``, list paging, ``as=Table`` for
kubectl, the ServiceAccount issuer's ``/.well-known/openid-configuration``
and ``/openid/v1/jwks``, the ``/status``, ``/log`` (streamed with ``follow``)
and ``/binding`` subresources, and ``exec``, ``attach`` and ``portforward``,
which it hands to the kubelet's streaming server as the apiserver proxies them
to a kubelet.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from devcluster import tokens
from devcluster.apiserver import (
    authorization,
    chaos,
    discovery,
    openapi,
    request_counts,
    scale,
    tables,
)
from devcluster.apiserver.routes import (
    TRUE,
    Faults,
    Route,
    int_param,
    json_response,
    not_found_path,
    parse_document,
    parse_route,
    read_body,
    write_options,
)
from devcluster.apiserver.store import Store
from devcluster.apiserver.watch_http import serve_watch
from devcluster.errors import ApiError, bad_request

log = logging.getLogger(__name__)

LogReader = Callable[[str, str, dict[str, str]], Awaitable[AsyncIterator[bytes]]]
"""``(namespace, pod, query) -> chunks``; raises ApiError when there is no log."""
StreamServer = Callable[[web.Request, str, str, str], Awaitable[web.StreamResponse]]
"""``(request, subresource, namespace, pod) -> response`` for exec, attach and
portforward; raises ApiError before upgrading the connection."""

STREAMING = ("exec", "attach", "portforward")
STORE_KEY = web.AppKey("store", Store)
LOGS_KEY = web.AppKey("logs", object)
STREAMS_KEY = web.AppKey("streams", object)
FAULTS_KEY = web.AppKey("faults", object)
CHAOS_KEY = web.AppKey("chaos", chaos.Chaos)
COUNTS_KEY = web.AppKey("counts", request_counts.RequestCounts)
REQUESTS_KEY = web.AppKey("requests", object)
ISSUER_KEY = web.AppKey("issuer", tokens.TokenIssuer)

APPLY_PATCH = "application/apply-patch+yaml"
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}


@web.middleware
async def error_middleware(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Turn ApiError (and crashes) into Status bodies; log each request."""
    requests = request.app[REQUESTS_KEY]
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_response(exc.status(), exc.code)
    except web.HTTPException:
        raise
    except Exception as exc:  # a bug: report it like the apiserver would
        log.exception("%s %s failed", request.method, request.path_qs)
        response = json_response(
            ApiError(500, "InternalError", repr(exc)).status(), 500
        )
    requests.append((request.method, request.path_qs, response.status))  # type: ignore[attr-defined]
    return response


async def handle(request: web.Request) -> web.StreamResponse:
    """Serve every path: discovery documents or resource verbs."""
    path = request.path
    issuer = request.app.get(ISSUER_KEY)
    if path in (tokens.DISCOVERY_PATH, tokens.JWKS_PATH) and issuer is not None:
        # the ServiceAccount issuer's OIDC documents, public as on EKS
        if request.method != "GET":
            raise _not_allowed()
        if path == tokens.JWKS_PATH:
            return json_response(issuer.jwks())
        return json_response(issuer.discovery(f"{request.scheme}://{request.host}"))
    if path.startswith("/openapi/"):
        found = openapi.respond(path, request.headers.get("Accept", ""))
        if found is None:
            raise not_found_path()
        return web.Response(body=found[0], content_type=found[1])
    doc = discovery.document(path, request.host)
    if doc is not None:
        if doc == 404:
            raise not_found_path()
        return (
            json_response(doc) if not isinstance(doc, str) else web.Response(text=doc)
        )
    if path == chaos.PATH:
        return await _chaos_settings(request)
    if path == request_counts.PATH:
        if request.method != "GET":
            raise _not_allowed()
        return json_response(request.app[COUNTS_KEY].report())
    route = parse_route(path)
    watch = bool(route.watch_prefix) or request.query.get("watch") in TRUE
    request.app[COUNTS_KEY].add(
        request.headers.get("User-Agent", ""),
        request_counts.verb_of(request.method, route.name is not None, watch),
    )
    if chaos.EXEMPT_HEADER not in request.headers:
        kind = request.app[CHAOS_KEY].draw(request.method)
        if kind is not None:
            error, headers = await request.app[CHAOS_KEY].fail(kind)
            response = json_response(error.status(), error.code)
            response.headers.update(headers)
            return response
    fault = request.app[FAULTS_KEY].take(request.method, route.res.plural)  # type: ignore[attr-defined]
    if fault is not None:
        raise ApiError(
            fault.status,
            "InternalError" if fault.status >= 500 else "BadRequest",
            fault.message,
        )
    store = request.app[STORE_KEY]
    if not route.res.stored and (request.method != "POST" or route.name):
        raise _not_allowed()
    if route.res.plural == "pods" and route.subresource in STREAMING:
        return await _stream(request, store, route)
    if request.method == "GET":
        return await _get(request, store, route)
    if request.method == "POST":
        return await _post(request, store, route)
    if request.method in ("PUT", "PATCH"):
        return await _update(request, store, route)
    if request.method == "DELETE":
        return await _delete(request, store, route)
    raise _not_allowed()


async def _chaos_settings(request: web.Request) -> web.StreamResponse:
    """Read (``GET``) or set (``PUT``) the share of requests that fail."""
    if request.method == "PUT":
        request.app[CHAOS_KEY].configure(await read_body(request))
    elif request.method != "GET":
        raise _not_allowed()
    return json_response(request.app[CHAOS_KEY].settings())


async def _get(request: web.Request, store: Store, route: Route) -> web.StreamResponse:
    q = request.query
    if route.name is None:
        if route.watch_prefix or q.get("watch") in TRUE:
            return await serve_watch(request, store, route)
        page = store.list_page(
            route.res.plural,
            route.namespace,
            q.get("labelSelector", ""),
            q.get("fieldSelector", ""),
            resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""),
            limit=int_param(q, "limit") or 0,
            continue_token=q.get("continue", ""),
        )
        if tables.wants_table(request.headers.get("Accept", "")):
            return json_response(
                tables.table_for(route.res, page, q.get("includeObject", ""))
            )
        meta: dict[str, Any] = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
            meta["remainingItemCount"] = page.remaining
        return json_response(
            {
                "kind": route.res.list_kind,
                "apiVersion": route.res.api_version,
                "metadata": meta,
                "items": page.items,
            }
        )
    if route.watch_prefix:
        return await serve_watch(request, store, route, name=route.name)
    if route.subresource == "scale":
        return json_response(scale.read(store, route))
    if route.subresource == "log":
        return await _log(request, store, route)
    obj = store.get(route.res.plural, route.namespace, route.name)
    if (
        tables.wants_table(request.headers.get("Accept", ""))
        and route.subresource is None
    ):
        page = store.list_page(
            route.res.plural,
            route.namespace,
            field_selector=f"metadata.name={route.name}",
        )
        return json_response(
            tables.table_for(route.res, page, q.get("includeObject", ""))
        )
    return json_response(obj)


async def _log(request: web.Request, store: Store, route: Route) -> web.StreamResponse:
    """``GET pods/{name}/log``: the whole text, or a stream with ``follow``."""
    reader = request.app[LOGS_KEY]
    store.get("pods", route.namespace, route.name or "")
    if reader is None:
        return web.Response(text="", content_type="text/plain")
    chunks = await reader(route.namespace or "", route.name, dict(request.query))  # type: ignore[operator]
    if request.query.get("follow") not in TRUE:
        body = b"".join([chunk async for chunk in chunks])
        return web.Response(body=body, content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    async for chunk in chunks:
        if chunk:
            await response.write(chunk)
    await response.write_eof()
    return response


async def _stream(
    request: web.Request, store: Store, route: Route
) -> web.StreamResponse:
    """``pods/{name}/exec|attach|portforward`` (GET or POST, websocket upgrade)."""
    if request.method not in ("GET", "POST"):
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    store.get("pods", route.namespace, route.name or "")
    server: StreamServer | None = request.app[STREAMS_KEY]  # type: ignore[assignment]
    if server is None:
        raise ApiError(400, "BadRequest", "no kubelet serves this pod")
    return await server(
        request, route.subresource or "", route.namespace or "", route.name or ""
    )


async def _post(request: web.Request, store: Store, route: Route) -> web.StreamResponse:
    body = await read_body(request)
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    if not route.res.stored:
        who = authorization.requester(
            request.headers.get("Impersonate-User"),
            request.headers.getall("Impersonate-Group", []),
        )
        answer = authorization.review(store, route.res, route.namespace, body, who)
        return json_response(answer, 201)
    opts = write_options(request.query, request.headers.get("User-Agent", ""))
    if route.name is None:
        created = store.create(
            route.res.plural,
            route.namespace,
            body,
            field_validation=opts.field_validation,
            dry_run=opts.dry_run,
        )
        return json_response(created, 201)
    if route.res.plural == "pods" and route.subresource == "binding":
        target = (body.get("target") or {}).get("name")
        if not target:
            raise bad_request("binding target name is required")
        store.bind(route.namespace or "", route.name, target)
        return json_response(_SUCCESS_201, 201)
    if route.res.plural == "pods" and route.subresource == "eviction":
        opts_body = body.get("deleteOptions") or {}
        store.delete(
            "pods", route.namespace, route.name, opts_body.get("gracePeriodSeconds")
        )
        return json_response(_SUCCESS_201, 201)
    raise _not_allowed()


_SUCCESS_201 = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Success",
    "code": 201,
}


def _not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    )


async def _update(
    request: web.Request, store: Store, route: Route
) -> web.StreamResponse:
    if route.name is None or route.subresource not in (None, "status", "scale"):
        raise _not_allowed()
    opts = write_options(request.query, request.headers.get("User-Agent", ""))
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
    if request.method == "PATCH" and ctype == APPLY_PATCH:
        if route.subresource is not None:
            raise _not_allowed()
        applied = parse_document(await request.read())
        if not isinstance(applied, dict):
            raise bad_request("the apply patch must be an object")
        obj, created = store.apply(
            route.res.plural,
            route.namespace,
            route.name,
            applied,
            opts.field_manager if "fieldManager" in request.query else "",
            force=opts.force,
            field_validation=opts.field_validation,
            dry_run=opts.dry_run,
        )
        return json_response(obj, 201 if created else 200)
    body = await read_body(request)
    if route.subresource == "scale":
        return json_response(
            scale.update(store, route, request.method, body, ctype, opts)
        )
    if request.method == "PUT":
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        return json_response(
            store.replace(
                route.res.plural,
                route.namespace,
                route.name,
                body,
                route.subresource,
                field_validation=opts.field_validation,
                dry_run=opts.dry_run,
                field_manager=opts.field_manager,
            )
        )
    patch_type = _PATCH_TYPES.get(ctype)
    if patch_type is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media "
            f"types include: {', '.join((*_PATCH_TYPES, APPLY_PATCH))}",
        )
    return json_response(
        store.patch(
            route.res.plural,
            route.namespace,
            route.name,
            body,
            patch_type,
            route.subresource,
            field_validation=opts.field_validation,
            dry_run=opts.dry_run,
            field_manager=opts.field_manager,
        )
    )


async def _delete(
    request: web.Request, store: Store, route: Route
) -> web.StreamResponse:
    body = await read_body(request)
    opts = body if isinstance(body, dict) else {}
    q = request.query
    grace = int_param(q, "gracePeriodSeconds")
    if grace is None and opts.get("gracePeriodSeconds") is not None:
        grace = int(opts["gracePeriodSeconds"])
    policy = q.get("propagationPolicy") or opts.get("propagationPolicy")
    if opts.get("orphanDependents") is True or q.get("orphanDependents") in TRUE:
        policy = "Orphan"
    if route.name is None:
        page = store.list_page(
            route.res.plural,
            route.namespace,
            q.get("labelSelector", ""),
            q.get("fieldSelector", ""),
        )
        for item in page.items:
            meta = item["metadata"]
            store.delete(
                route.res.plural, meta.get("namespace"), meta["name"], grace, policy
            )
        return json_response(
            {
                "kind": route.res.list_kind,
                "apiVersion": route.res.api_version,
                "metadata": {"resourceVersion": str(store.resource_version)},
                "items": page.items,
            }
        )
    if route.subresource is not None:
        raise _not_allowed()
    obj = store.delete(
        route.res.plural,
        route.namespace,
        route.name,
        grace,
        policy,
        opts.get("preconditions"),
    )
    return json_response(obj)


def make_app(
    store: Store,
    logs: LogReader | None = None,
    request_log: int = 2000,
    streams: StreamServer | None = None,
    issuer: tokens.TokenIssuer | None = None,
) -> web.Application:
    """Build the aiohttp application serving ``store``.

    Args:
        store: the cluster's objects.
        logs: reads a pod's log for ``GET pods/{name}/log`` (the kubelet's).
        request_log: how many recent requests ``app[REQUESTS_KEY]`` keeps.
        streams: serves ``exec``, ``attach`` and ``portforward`` (the kubelet's).
        issuer: the ServiceAccount token issuer whose discovery document and
            JWKS the API serves (None: neither).
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=16 * 1024**2)
    app[STORE_KEY] = store
    app[LOGS_KEY] = logs
    app[STREAMS_KEY] = streams
    app[FAULTS_KEY] = Faults()
    app[CHAOS_KEY] = chaos.Chaos()
    app[COUNTS_KEY] = request_counts.RequestCounts()
    app[REQUESTS_KEY] = deque(maxlen=request_log)
    if issuer is not None:
        app[ISSUER_KEY] = issuer
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
