"""The OpenAPI documents of the served resources: ``/openapi/v2`` and ``/openapi/v3``.

Generated from the JSON schemas devcluster validates writes with (the
kubernetes-validate definitions, see ``devcluster.apiserver.validation``), so
``kubectl explain`` describes exactly what the server checks. The conversion
follows what the apiserver publishes: one type per schema (the JSON schemas
allow ``null`` everywhere), ``IntOrString`` as a string of format
``int-or-string``, no ``additionalProperties: false``; the top-level kinds keep
their ``x-kubernetes-group-version-kind``.

Paths carry one operation per verb with ``x-kubernetes-action`` and
``x-kubernetes-group-version-kind``. kubectl reads the PATCH operation's
parameters to decide whether the server validates fields itself: listing
``fieldValidation`` there makes kubectl send ``fieldValidation=Strict`` and skip
its own client-side check (cli-runtime ``query_param_verifier_v3.go``).

v3 is served as an index (``/openapi/v3``) of one document per group-version
(``/openapi/v3/api/v1``, ``/openapi/v3/apis/apps/v1``); v2 as one document,
in protobuf when asked for it (client-go only parses protobuf there), else JSON.
Documents are built once per process: the registry does not change at runtime.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from devcluster.apiserver import openapi_proto, validation
from devcluster.apiserver.discovery import K8S_VERSION
from devcluster.apiserver.resources import GROUPS, SUBRESOURCES, Resource, in_group

GVK = "x-kubernetes-group-version-kind"
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""The media type of the protobuf v2 document. client-go asks for the older
spelling with ``@v1.0``, which Go's ``mime`` package cannot parse back, so the
apiserver (kube-openapi ``handler.go``) answers with this one."""

_V2_REF = "#/definitions/"
_V3_REF = "#/components/schemas/"
_STRING_FORMATS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int-or-string",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "",
}
"""Definitions the JSON schemas spell as ``oneOf`` and OpenAPI as a string."""
_DROPPED = frozenset({"$schema", "$id", "additionalProperties", "oneOf"})


# ------------------------------------------------------------------ schemas
@functools.lru_cache(maxsize=1)
def _kind_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in validation.definitions().items():
        for gvk in schema.get(GVK) or []:
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            index.setdefault(key, name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """Return the definition name of a kind (``io.k8s.api.core.v1.Pod``), or None."""
    return _kind_index().get((group, version, kind))


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _closure(roots: list[str]) -> list[str]:
    """Return ``roots`` and every definition they refer to, sorted."""
    defs = validation.definitions()
    seen: set[str] = set()
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(r for r in _refs(defs[name]) if r not in seen and r in defs)
    return sorted(seen)


def _one_type(value: Any) -> Any:
    if isinstance(value, list):
        return next((t for t in value if t != "null"), value[0] if value else None)
    return value


def convert(node: Any, prefix: str, name: str = "") -> Any:
    """Return a JSON schema node as OpenAPI has it, refs under ``prefix``."""
    if name in _STRING_FORMATS:
        out: dict[str, Any] = {"type": "string"}
        if _STRING_FORMATS[name]:
            out["format"] = _STRING_FORMATS[name]
        if "description" in node:
            out["description"] = node["description"]
        return out
    if isinstance(node, list):
        return [convert(v, prefix) for v in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            if key == "additionalProperties" and isinstance(value, dict):
                result[key] = convert(value, prefix)
            continue
        if key == "$ref":
            result[key] = prefix + str(value).rsplit("/", 1)[-1]
        elif key == "type":
            result[key] = _one_type(value)
        elif key == "properties":
            result[key] = {
                prop: _property(prop, schema, prefix) for prop, schema in value.items()
            }
        elif key == GVK or key.startswith("x-kubernetes-"):
            result[key] = value
        else:
            result[key] = convert(value, prefix)
    return result


def _property(prop: str, schema: Mapping[str, Any], prefix: str) -> Any:
    out = convert(schema, prefix)
    if prop in ("apiVersion", "kind") and isinstance(out, dict):
        out.pop("enum", None)  # the apiserver's documents carry no enum here
    return out


def _schemas(roots: list[str], prefix: str) -> dict[str, Any]:
    defs = validation.definitions()
    return {name: convert(defs[name], prefix, name) for name in _closure(roots)}


# -------------------------------------------------------------------- paths
def _base(res: Resource, namespaced: bool) -> str:
    root = f"/apis/{res.group}/{res.version}" if res.group else "/api/v1"
    return (
        f"{root}/namespaces/{{namespace}}/{res.plural}"
        if namespaced
        else (f"{root}/{res.plural}")
    )


def _operation(
    res: Resource, action: str, verb: str, scope: str, kind: str
) -> dict[str, Any]:
    group = "".join(p.capitalize() for p in res.group.split(".")[:1]) or "Core"
    return {
        "action": action,
        "operationId": f"{verb}{group}{res.version.capitalize()}{scope}{kind}",
        "gvk": {"group": res.group, "version": res.version, "kind": res.kind},
    }


_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)


def _resource_paths(res: Resource) -> dict[str, dict[str, Any]]:
    """Return ``{path: {method: operation facts}}`` for one resource."""
    out: dict[str, dict[str, Any]] = {}
    scope = "Namespaced" if res.namespaced else ""
    collection = _base(res, res.namespaced)
    if not res.stored:
        op = _operation(res, "post", "create", scope, res.kind)
        out[collection] = {"post": {**op, "params": _WRITE_PARAMS, "body": res.kind}}
        return out
    list_kind = res.list_kind
    out[collection] = {
        "get": {
            **_operation(res, "list", "list", scope, res.kind),
            "params": _LIST_PARAMS,
            "returns": list_kind,
        },
        "post": {
            **_operation(res, "post", "create", scope, res.kind),
            "params": _WRITE_PARAMS,
            "body": res.kind,
        },
        "delete": {
            **_operation(res, "deletecollection", "deleteCollection", scope, res.kind),
            "params": ("gracePeriodSeconds", "propagationPolicy"),
        },
    }
    item = collection + "/{name}"
    out[item] = {
        "get": {**_operation(res, "get", "read", scope, res.kind), "params": ()},
        "put": {
            **_operation(res, "put", "replace", scope, res.kind),
            "params": _WRITE_PARAMS,
            "body": res.kind,
        },
        "patch": {
            **_operation(res, "patch", "patch", scope, res.kind),
            "params": (*_WRITE_PARAMS, "force"),
            "body": "Patch",
        },
        "delete": {
            **_operation(res, "delete", "delete", scope, res.kind),
            "params": ("dryRun", "gracePeriodSeconds", "propagationPolicy"),
        },
    }
    if "status" in SUBRESOURCES.get(res.plural, ()):
        out[item + "/status"] = {
            "get": {
                **_operation(res, "get", "read", scope, res.kind + "Status"),
                "params": (),
            },
            "put": {
                **_operation(res, "put", "replace", scope, res.kind + "Status"),
                "params": _WRITE_PARAMS,
                "body": res.kind,
            },
            "patch": {
                **_operation(res, "patch", "patch", scope, res.kind + "Status"),
                "params": (*_WRITE_PARAMS, "force"),
                "body": "Patch",
            },
        }
    if res.namespaced:
        out[_base(res, False)] = {
            "get": {
                **_operation(res, "list", "list", "ForAllNamespaces", res.kind),
                "params": _LIST_PARAMS,
                "returns": list_kind,
            },
        }
    return out


def _path_params(path: str) -> list[str]:
    return [p[1:-1] for p in path.split("/") if p.startswith("{")]


def _kind_ref(res: Resource, kind: str) -> str:
    return definition_name(res.group, res.version, kind) or ""


_PATCH_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
_STATUS_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"


def _v3_operation(res: Resource, facts: dict[str, Any]) -> dict[str, Any]:
    returns = _kind_ref(res, facts.get("returns", res.kind))
    op: dict[str, Any] = {
        "operationId": facts["operationId"],
        "parameters": [
            {
                "name": p,
                "in": "query",
                "schema": {"type": "string", "uniqueItems": True},
            }
            for p in facts["params"]
        ],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": _V3_REF + returns}}
                },
            }
        },
        "x-kubernetes-action": facts["action"],
        GVK: facts["gvk"],
    }
    if "body" in facts:
        body = _PATCH_DEF if facts["body"] == "Patch" else _kind_ref(res, res.kind)
        op["requestBody"] = {
            "content": {"*/*": {"schema": {"$ref": _V3_REF + body}}},
            "required": True,
        }
    return op


def _v2_operation(res: Resource, facts: dict[str, Any]) -> dict[str, Any]:
    returns = _kind_ref(res, facts.get("returns", res.kind))
    params: list[dict[str, Any]] = []
    if "body" in facts:
        body = _PATCH_DEF if facts["body"] == "Patch" else _kind_ref(res, res.kind)
        params.append(
            {
                "name": "body",
                "in": "body",
                "required": True,
                "schema": {"$ref": _V2_REF + body},
            }
        )
    params += [
        {"name": p, "in": "query", "type": "string", "uniqueItems": True}
        for p in facts["params"]
    ]
    return {
        "operationId": facts["operationId"],
        "consumes": ["*/*"],
        "produces": ["application/json"],
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "schema": {"$ref": _V2_REF + returns}}
        },
        "x-kubernetes-action": facts["action"],
        GVK: facts["gvk"],
    }


def _roots(resources: list[Resource]) -> list[str]:
    names = [_STATUS_DEF, _PATCH_DEF]
    for res in resources:
        for kind in (res.kind, res.list_kind):
            name = definition_name(res.group, res.version, kind)
            if name:
                names.append(name)
    if any("scale" in SUBRESOURCES.get(r.plural, ()) for r in resources):
        names.append("io.k8s.api.autoscaling.v1.Scale")
    return names


# ---------------------------------------------------------------- documents
def _info() -> dict[str, str]:
    return {"title": "Kubernetes", "version": K8S_VERSION[2]}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.lru_cache(maxsize=32)
def v3_document(group: str, version: str) -> dict[str, Any]:
    """Return the OpenAPI v3 document of one group-version."""
    resources = in_group(group, version)
    paths: dict[str, Any] = {}
    for res in resources:
        for path, methods in _resource_paths(res).items():
            item: dict[str, Any] = {
                method: _v3_operation(res, facts) for method, facts in methods.items()
            }
            item["parameters"] = [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
                for p in _path_params(path)
            ]
            paths[path] = item
    return {
        "openapi": "3.0.0",
        "info": _info(),
        "paths": paths,
        "components": {"schemas": _schemas(_roots(resources), _V3_REF)},
    }


@functools.lru_cache(maxsize=32)
def _v3_bytes(group: str, version: str) -> bytes:
    return json.dumps(v3_document(group, version), separators=(",", ":")).encode()


def v3_index() -> dict[str, Any]:
    """Return the ``/openapi/v3`` index: a URL with a content hash per group-version."""
    paths = {}
    for group, versions in GROUPS.items():
        for version in versions:
            gv = _gv_path(group, version)
            digest = hashlib.sha512(_v3_bytes(group, version)).hexdigest()[:128].upper()
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}


@functools.lru_cache(maxsize=1)
def v2_document() -> dict[str, Any]:
    """Return the OpenAPI v2 (Swagger 2.0) document of every served resource."""
    resources = [
        r
        for group, versions in GROUPS.items()
        for v in versions
        for r in in_group(group, v)
    ]
    paths: dict[str, Any] = {}
    for res in resources:
        for path, methods in _resource_paths(res).items():
            item: dict[str, Any] = {
                method: _v2_operation(res, facts) for method, facts in methods.items()
            }
            item["parameters"] = [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "type": "string",
                    "uniqueItems": True,
                }
                for p in _path_params(path)
            ]
            paths[path] = item
    return {
        "swagger": "2.0",
        "info": _info(),
        "paths": paths,
        "definitions": _schemas(_roots(resources), _V2_REF),
    }


@functools.lru_cache(maxsize=1)
def v2_protobuf() -> bytes:
    """Return the v2 document encoded as gnostic's ``openapi.v2.Document``."""
    return openapi_proto.encode_document(v2_document())


def respond(path: str, accept: str) -> tuple[bytes, str] | None:
    """Return ``(body, content type)`` for an ``/openapi/...`` path, or None (404)."""
    path = path.rstrip("/")
    if path == "/openapi/v2":
        if "protobuf" in accept:
            return v2_protobuf(), PROTOBUF_V2
        return json.dumps(
            v2_document(), separators=(",", ":")
        ).encode(), "application/json"
    if path == "/openapi/v3":
        return json.dumps(v3_index()).encode(), "application/json"
    parts = path.split("/")[3:]
    if parts[:1] == ["api"] and len(parts) == 2 and parts[1] in GROUPS[""]:
        return _v3_bytes("", parts[1]), "application/json"
    if (
        parts[:1] == ["apis"]
        and len(parts) == 3
        and parts[1]
        and parts[2] in GROUPS.get(parts[1], ())
    ):
        return _v3_bytes(parts[1], parts[2]), "application/json"
    return None
