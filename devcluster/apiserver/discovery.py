"""Discovery documents (/api, /apis, resource lists, /version) from the registry."""

from __future__ import annotations

from typing import Any

from devcluster.apiserver.resources import GROUPS, SUBRESOURCES, Resource, in_group

K8S_VERSION = ("1", "33", "v1.33.0-devcluster")

_SUB_VERBS = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "log": ("get",),
    "binding": ("create",),
    "eviction": ("create",),
    "finalize": ("update",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
}
_SUB_KIND = {
    "binding": "Binding",
    "eviction": "Eviction",
    "scale": "Scale",
    "exec": "PodExecOptions",
    "attach": "PodAttachOptions",
    "portforward": "PodPortForwardOptions",
}
_SUB_GROUP = {"eviction": ("policy", "v1"), "scale": ("autoscaling", "v1")}
_CATEGORY_ALL = frozenset({"pods", "services", "deployments", "replicasets"})


def _resource_entries(res: Resource) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular or res.kind.lower(),
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.plural in _CATEGORY_ALL:
        entry["categories"] = ["all"]
    entries = [entry]
    for sub in SUBRESOURCES.get(res.plural, ()):
        sub_entry: dict[str, Any] = {
            "name": f"{res.plural}/{sub}",
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": _SUB_KIND.get(sub, res.kind),
            "verbs": list(_SUB_VERBS[sub]),
        }
        if sub in _SUB_GROUP:
            group, version = _SUB_GROUP[sub]
            sub_entry.update(group=group, version=version)
        entries.append(sub_entry)
    return entries


def resource_list(group: str, version: str) -> dict[str, Any]:
    """Return the APIResourceList of one group/version."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            e for r in in_group(group, version) for e in _resource_entries(r)
        ],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def version_info() -> dict[str, str]:
    """Return the ``/version`` document."""
    major, minor, git = K8S_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def document(path: str, host: str) -> dict[str, Any] | str | int | None:
    """Return the discovery document at ``path``, 404 for unserved docs, or None.

    None means the path is not a discovery path (a resource path, probably).
    """
    path = path.rstrip("/") or "/"
    parts = [p for p in path.split("/") if p]
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": host}
            ],
        }
    if path == "/apis":
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(g) for g in GROUPS if g],
        }
    if path == "/api/v1":
        return resource_list("", "v1")
    if len(parts) == 2 and parts[0] == "apis":
        return _group(parts[1]) if parts[1] in GROUPS and parts[1] else 404
    if len(parts) == 3 and parts[0] == "apis":
        if parts[2] in GROUPS.get(parts[1], ()):
            return resource_list(parts[1], parts[2])
        return 404
    if path == "/version":
        return version_info()
    if path in ("/healthz", "/livez", "/readyz"):
        return "ok"
    if parts and parts[0] in ("swagger.json", "metrics", "logs"):
        return 404
    if path == "/":
        return {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]}
    return None
