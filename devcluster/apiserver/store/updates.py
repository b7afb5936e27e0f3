"""What an update may change: the apiserver's update rules, as pure functions.

``prepare_update`` turns the object a client sent (PUT or patch result) into the
object to store: the ``/status`` subresource changes only ``status`` and a main
write keeps the old status; server-set metadata (uid, creationTimestamp,
namespace, deletion fields, generation) cannot be changed; ``generation`` grows
when anything but metadata and status changed; no finalizer may be added to an
object being deleted; a pod's spec may change only where the apiserver lets
it (``check_pod_update``). ``bound_pod`` is a pod after
``pods/{name}/binding``. None of them mutates its inputs.
"""

from __future__ import annotations

from typing import Any

from devcluster.apiserver.defaults import default_pod_spec, default_workload
from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import Resource
from devcluster.apiserver.store.table import meta_of
from devcluster.errors import ApiError, invalid
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
    if subresource is None:
        default_workload(res.plural, new)
    if _spec_of(new) != _spec_of(old):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    if res.plural == "pods" and subresource is None:
        keep_token_volume(old, new)
        check_pod_update(old, new)
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


POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)
"""The apiserver's message (``ValidatePodUpdate``, Kubernetes 1.33)."""


def _mutable_view(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Return ``new`` with every change the apiserver allows undone onto ``old``.

    What is left differing from ``old`` is a forbidden change.
    """
    view = clone(new)
    for field in ("containers", "initContainers"):
        olds, news = old.get(field) or [], view.get(field) or []
        if len(olds) == len(news):
            for before, after in zip(olds, news, strict=True):
                if before.get("name") == after.get("name") and "image" in before:
                    after["image"] = before["image"]
    deadline, old_deadline = (
        view.get("activeDeadlineSeconds"),
        old.get("activeDeadlineSeconds"),
    )
    if deadline is not None and (old_deadline is None or deadline <= old_deadline):
        view["activeDeadlineSeconds"] = old_deadline
        if old_deadline is None:
            view.pop("activeDeadlineSeconds")
    old_tolerations = old.get("tolerations") or []
    if all(t in (view.get("tolerations") or []) for t in old_tolerations):
        view["tolerations"] = clone(old_tolerations)
        if "tolerations" not in old:
            view.pop("tolerations")
    grace = old.get("terminationGracePeriodSeconds")
    if (
        isinstance(grace, int)
        and grace < 0
        and view.get("terminationGracePeriodSeconds") == 1
    ):
        view["terminationGracePeriodSeconds"] = grace
    gates = view.get("schedulingGates") or []
    if all(g in (old.get("schedulingGates") or []) for g in gates):
        view["schedulingGates"] = clone(old.get("schedulingGates") or [])
        if "schedulingGates" not in old:
            view.pop("schedulingGates")
    return view


def check_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Reject a pod update that changes its spec where Kubernetes forbids it.

    Allowed: container and init container images, ``activeDeadlineSeconds``
    set or lowered, tolerations added, ``terminationGracePeriodSeconds`` from
    negative to 1, scheduling gates removed. ``nodeName`` is set through the
    binding subresource only. Fields a write leaves out are defaulted first,
    as the apiserver defaults every request.

    Raises:
        ApiError: 422 Invalid with the apiserver's Forbidden message.
    """
    old_spec = old.get("spec") or {}
    new_spec = clone(new.get("spec") or {})
    default_pod_spec(new_spec)
    if _mutable_view(old_spec, new_spec) == old_spec:
        return
    name = str(new["metadata"].get("name", ""))
    cause = {
        "reason": "FieldValueForbidden",
        "message": f"Forbidden: {POD_UPDATE_FORBIDDEN}",
        "field": "spec",
    }
    raise invalid("Pod", name, [cause])


def keep_token_volume(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Keep the ServiceAccount admission's token volume an update leaves out.

    The apiserver adds ``kube-api-access-*`` at create; a client that PUTs a
    pod it built itself (not the one it read) leaves it out, which the real
    apiserver refuses as a spec change. devcluster puts it back instead, so
    such a write changes only what the client meant to change.
    """
    old_spec, new_spec = old.get("spec") or {}, new.get("spec")
    if not isinstance(new_spec, dict):
        return
    tokens = [
        v
        for v in old_spec.get("volumes") or []
        if str(v.get("name", "")).startswith("kube-api-access-")
    ]
    names = {v["name"] for v in tokens}
    if not tokens or names & {v.get("name") for v in new_spec.get("volumes") or []}:
        return
    new_spec["volumes"] = [*(new_spec.get("volumes") or []), *clone(tokens)]
    old_containers = {
        c.get("name"): c
        for c in [*old_spec.get("containers", []), *old_spec.get("initContainers", [])]
    }
    for container in [
        *(new_spec.get("containers") or []),
        *(new_spec.get("initContainers") or []),
    ]:
        before = old_containers.get(container.get("name")) or {}
        mounts = [m for m in before.get("volumeMounts") or [] if m.get("name") in names]
        if mounts:
            container["volumeMounts"] = [
                *(container.get("volumeMounts") or []),
                *clone(mounts),
            ]


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
