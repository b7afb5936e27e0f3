"""The ``/scale`` subresource of Deployments and ReplicaSets (``autoscaling/v1 Scale``).

``kubectl scale`` and autoscalers read and write ``spec.replicas`` through it.
A Scale shows the object's ``spec.replicas``, its ``status.replicas`` and its
selector as a string; writing one changes only ``spec.replicas`` of the object
(a ``metadata.resourceVersion`` in the Scale is a precondition, as on the
object itself).
"""

from __future__ import annotations

from typing import Any

from devcluster.apiserver.patches import apply_patch
from devcluster.apiserver.routes import Route, WriteOptions
from devcluster.apiserver.selectors import format_selector
from devcluster.apiserver.store import Store
from devcluster.errors import ApiError, bad_request, conflict

_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}


def of(obj: dict[str, Any]) -> dict[str, Any]:
    """Return the Scale of a Deployment or ReplicaSet."""
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in (
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "creationTimestamp",
            )
            if k in meta
        },
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {
            "replicas": int(status.get("replicas", 0)),
            "selector": format_selector(spec.get("selector") or {}),
        },
    }


def read(store: Store, route: Route) -> dict[str, Any]:
    """Return the Scale of the object at ``route``."""
    return of(store.get(route.res.plural, route.namespace, route.name or ""))


def update(
    store: Store,
    route: Route,
    method: str,
    body: Any,
    content_type: str,
    opts: WriteOptions,
) -> dict[str, Any]:
    """Apply a PUT or PATCH of the Scale and return the new Scale.

    Raises:
        ApiError: 400 for a malformed Scale, 409 for a stale resourceVersion,
            415 for an unknown patch type, 422 for negative replicas.
    """
    name = route.name or ""
    obj = store.get(route.res.plural, route.namespace, name)
    current = of(obj)
    if method == "PUT":
        wanted = body
    else:
        patch_type = _PATCH_TYPES.get(content_type)
        if patch_type is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format: {content_type}",
            )
        wanted = apply_patch(current, body, patch_type)
    if not isinstance(wanted, dict):
        raise bad_request("the Scale must be an object")
    rv = (wanted.get("metadata") or {}).get("resourceVersion")
    if rv not in (None, "") and str(rv) != obj["metadata"]["resourceVersion"]:
        raise conflict(route.res.plural, name, route.res.group)
    replicas = (wanted.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or replicas < 0:
        cause = {
            "reason": "FieldValueInvalid",
            "message": f"Invalid value: {replicas}: must be greater than or equal to 0",
            "field": "spec.replicas",
        }
        raise ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{name}" is invalid: spec.replicas: {cause["message"]}',
            {"name": name, "group": "autoscaling", "kind": "Scale", "causes": [cause]},
        )
    updated = store.patch(
        route.res.plural,
        route.namespace,
        name,
        {"spec": {"replicas": replicas}},
        "merge",
        dry_run=opts.dry_run,
        field_manager=opts.field_manager,
    )
    return of(updated)
