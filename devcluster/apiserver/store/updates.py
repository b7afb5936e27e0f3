"""What an update may change: the apiserver's update rules, as pure functions.

``prepare_update`` turns the object a client sent (PUT or patch result) into the
object to store: the ``/status`` subresource changes only ``status`` and a main
write keeps the old status; server-set metadata (uid, creationTimestamp,
namespace, deletion fields, generation) cannot be changed; ``generation`` grows
when anything but metadata and status changed; no finalizer may be added to an
object being deleted. ``bound_pod`` is a pod after ``pods/{name}/binding``.
Neither mutates its inputs.
"""

from __future__ import annotations

from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import Resource
from devcluster.apiserver.store.table import meta_of
from devcluster.errors import ApiError
from devcluster.timestamps import now_iso

_SERVER_SET = (
    "uid",
    "creationTimestamp",
    "namespace",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def prepare_update(
    res: Resource,
    old: dict[str, Any],
    new: dict[str, Any],
    subresource: str | None,
) -> dict[str, Any]:
    """Return the object to store for an update of ``old`` to ``new``.

    ``new`` is the caller's own copy; it may be changed and returned.

    Raises:
        ApiError: 422 when finalizers are added to an object being deleted.
    """
    if subresource == "status":
        status = new.get("status")
        new = clone(old)
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = status
    elif res.status and "status" in old:
        new["status"] = clone(old["status"])
    elif res.status:
        new.pop("status", None)
    meta = meta_of(new)
    old_meta = old["metadata"]
    for field in _SERVER_SET:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    if _spec_of(new) != _spec_of(old):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or []) - set(
        old_meta.get("finalizers") or []
    ):
        raise ApiError(
            422,
            "Invalid",
            f'{res.kind} "{meta["name"]}" is invalid: metadata.finalizers: '
            "Forbidden: no new finalizers can be added if the object is being "
            "deleted",
        )
    return new


def bound_pod(old: dict[str, Any], node_name: str) -> dict[str, Any]:
    """Return the pod ``old`` bound to ``node_name`` (PodScheduled=True).

    Raises:
        ApiError: 409 when the pod is already bound to a node.
    """
    name = old["metadata"]["name"]
    if (old.get("spec") or {}).get("nodeName"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} '
            f'is already assigned to node "{old["spec"]["nodeName"]}"',
        )
    new = clone(old)
    new["spec"]["nodeName"] = node_name
    status = new.setdefault("status", {})
    conditions = [
        c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
    ]
    conditions.append(
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": now_iso(),
        }
    )
    status["conditions"] = conditions
    return new


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
