"""Create-time checks of the apiserver: kind, namespace, name generation, and
the ServiceAccount admission of pods."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from devcluster.apiserver.resources import Resource
from devcluster.errors import ApiError, bad_request, invalid, not_found

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet of generated name suffixes (the apiserver's, without vowels)."""


def check_kind(res: Resource, obj: dict[str, Any]) -> None:
    """Check (and fill in) ``apiVersion`` and ``kind`` of a body for ``res``.

    Raises:
        ApiError: 400 when the body names another kind or version.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version and api_version != res.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the "
            f"expected API version ({res.api_version})"
        )
    if kind and kind != res.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind "
            f"({res.kind})"
        )
    obj["apiVersion"], obj["kind"] = res.api_version, res.kind


def check_namespace(
    res: Resource,
    namespace: str | None,
    meta: dict[str, Any],
    namespaces: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Check the namespace of a new object (NamespaceLifecycle admission).

    Raises:
        ApiError: 400 on a mismatch, 404 when missing, 403 when terminating.
    """
    if not res.namespaced:
        meta.pop("namespace", None)
        return
    if not namespace:
        raise bad_request("a namespace is required for namespaced resources")
    if meta.get("namespace") not in (None, "", namespace):
        raise bad_request(
            "the namespace of the provided object does not match the namespace "
            "sent on the request"
        )
    meta["namespace"] = namespace
    ns_obj = namespaces.get(("", namespace))
    if ns_obj is None:
        raise not_found("namespaces", namespace)
    if ns_obj.get("metadata", {}).get("deletionTimestamp"):
        raise ApiError(
            403,
            "Forbidden",
            f"unable to create new content in namespace {namespace} because it "
            "is being terminated",
        )


def pick_name(res: Resource, meta: dict[str, Any], taken: Callable[[str], bool]) -> str:
    """Return the object's name, generating one from ``generateName`` if needed.

    Raises:
        ApiError: 422 when there is neither a name nor a generateName.
    """
    name = meta.get("name")
    if name:
        return str(name)
    prefix = meta.get("generateName")
    if not prefix:
        cause = {
            "field": "metadata.name",
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
        }
        raise invalid(res.kind, "", [cause], res.group)
    for _ in range(100):
        name = prefix + "".join(random.choices(_NAME_CHARS, k=5))
        if not taken(name):
            meta["name"] = name
            return name
    raise ApiError(500, "InternalError", "could not generate a unique name")


def check_service_account(obj: dict[str, Any], lister: Callable[[str], Any]) -> None:
    """Refuse a pod whose ServiceAccount does not exist (ServiceAccount admission).

    As the API server's plugin: ``403 Forbidden`` with its message. ``default``
    is taken as there: devcluster's ServiceAccount controller makes it in every
    namespace right after the namespace (the real admission would refuse a pod
    in that instant; no test or client here races it on purpose).

    Raises:
        ApiError: 403 when the pod's ``serviceAccountName`` names no
            ServiceAccount of its namespace.
    """
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    namespace = meta.get("namespace")
    account = spec.get("serviceAccountName") or "default"
    if account == "default":
        return
    if any(
        sa["metadata"].get("namespace") == namespace
        and sa["metadata"]["name"] == account
        for sa in lister("serviceaccounts")
    ):
        return
    name = meta.get("name") or meta.get("generateName") or ""
    raise ApiError(
        403,
        "Forbidden",
        f'pods "{name}" is forbidden: error looking up service account '
        f'{namespace}/{account}: serviceaccount "{account}" not found',
        {"name": name, "kind": "pods"},
    )
