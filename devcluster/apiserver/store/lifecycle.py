"""Deletion and garbage collection: how objects leave the store.

``Lifecycle`` works on the store's ``ObjectTable``. It owns graceful pod
deletion (``deletionTimestamp`` and ``deletionGracePeriodSeconds``; the pod is
removed by a delete with grace 0, which the kubelet sends once its processes
are gone, as a real kubelet does; a pod no kubelet runs is removed when the
grace period, scaled by ``time_factor``, ends; unscheduled or finished pods go
at once), finalizers (they hold any object until
removed), ownerReferences garbage collection (dependents go in the background;
``propagationPolicy=Orphan`` strips the references instead, ``Foreground``
deletes the dependents first) and namespace termination.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import RESOURCES
from devcluster.apiserver.store.table import ObjectTable
from devcluster.apiserver.store.watch import Key
from devcluster.config import ClusterConfig
from devcluster.errors import conflict
from devcluster.timestamps import iso_after, now_iso


class Lifecycle:
    """Deletion, grace periods, finalizers, garbage collection of one store.

    Args:
        table: the store's objects.
        config: the cluster settings (``time_factor`` scales grace periods).
    """

    def __init__(self, table: ObjectTable, config: ClusterConfig) -> None:
        self._table = table
        self._config = config
        self._timers: dict[tuple[str, Key], asyncio.TimerHandle] = {}
        self.kubelet_runs: Callable[[dict[str, Any]], bool] | None = None
        """Tells whether a kubelet runs a pod (then only the kubelet removes it)."""

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Delete an object (graceful for pods) and return its last state."""
        res = self._table.resource(kind)
        obj = self._table.stored(kind, namespace, name)
        key = self._table.key(res, namespace, name)
        meta = obj["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(kind, name, res.group)
        if (
            pre.get("resourceVersion")
            and pre["resourceVersion"] != meta["resourceVersion"]
        ):
            raise conflict(kind, name, res.group)
        if propagation_policy == "Orphan":
            self._orphan(meta["uid"])
        elif propagation_policy == "Foreground":
            self._delete_dependents(meta["uid"])
        grace = self._grace(kind, obj, grace_period_seconds)
        if kind == "namespaces":
            return self._delete_namespace(key, obj)
        if grace == 0 and not meta.get("finalizers"):
            return clone(self._remove(kind, key))
        return clone(self._mark_deleting(kind, key, obj, grace))

    def maybe_finish(self, kind: str, key: Key) -> None:
        """Remove an object being deleted once nothing holds it any more."""
        obj = self._table.objects(kind).get(key)
        if obj is None:
            return
        meta = obj["metadata"]
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and meta.get("deletionGracePeriodSeconds", 0) == 0
            and kind != "namespaces"
        ):
            self._remove(kind, key)

    def close(self) -> None:
        """Cancel pending grace-period timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # ------------------------------------------------------- graceful delete
    def _grace(self, kind: str, obj: dict[str, Any], requested: int | None) -> int:
        if kind != "pods":
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = (
            requested
            if requested is not None
            else spec.get("terminationGracePeriodSeconds", 30)
        )
        grace = max(0, int(grace))
        current = obj["metadata"].get("deletionGracePeriodSeconds")
        if current is not None:
            grace = min(grace, int(current))
        return grace

    def _mark_deleting(
        self, kind: str, key: Key, obj: dict[str, Any], grace: int
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        if (
            meta.get("deletionTimestamp")
            and meta.get("deletionGracePeriodSeconds") == grace
        ):
            return obj
        new = clone(obj)
        new["metadata"]["deletionTimestamp"] = iso_after(self._config.real(grace))
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        stored = self._table.put(kind, key, new, obj)
        if grace > 0 and not (kind == "pods" and self._kubelet_runs(new)):
            self._schedule_removal(kind, key, self._config.real(grace))
        else:
            self.maybe_finish(kind, key)
        return stored

    def _kubelet_runs(self, pod: dict[str, Any]) -> bool:
        return self.kubelet_runs is not None and self.kubelet_runs(pod)

    def _schedule_removal(self, kind: str, key: Key, delay: float) -> None:
        timer = self._timers.pop((kind, key), None)
        if timer is not None:
            timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._grace_over(kind, key)
            return
        self._timers[(kind, key)] = loop.call_later(delay, self._grace_over, kind, key)

    def _grace_over(self, kind: str, key: Key) -> None:
        self._timers.pop((kind, key), None)
        obj = self._table.objects(kind).get(key)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if obj["metadata"].get("finalizers"):
            new = clone(obj)
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            self._table.put(kind, key, new, obj)
            return
        self._remove(kind, key)

    def _remove(self, kind: str, key: Key) -> dict[str, Any]:
        timer = self._timers.pop((kind, key), None)
        if timer is not None:
            timer.cancel()
        final = self._table.remove(kind, key)
        self._collect_garbage(final["metadata"]["uid"])
        if key[0]:
            self._maybe_finish_namespace(key[0])
        return final

    # ---------------------------------------------------- garbage collection
    def _dependents(self, uid: str) -> list[tuple[str, Key, dict[str, Any]]]:
        found = []
        for kind, objs in self._table.tables():
            for key, obj in objs.items():
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    found.append((kind, key, obj))
        return found

    def _collect_garbage(self, uid: str) -> None:
        for kind, key, obj in self._dependents(uid):
            refs = obj["metadata"].get("ownerReferences") or []
            if all(
                not self._table.has_uid(r.get("uid")) for r in refs
            ) and key in self._table.objects(kind):
                self.delete(kind, key[0] or None, key[1])

    def _delete_dependents(self, uid: str) -> None:
        for kind, key, _ in self._dependents(uid):
            if key in self._table.objects(kind):
                self.delete(
                    kind, key[0] or None, key[1], propagation_policy="Foreground"
                )

    def _orphan(self, uid: str) -> None:
        for kind, key, obj in self._dependents(uid):
            new = clone(obj)
            refs = [
                r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid
            ]
            new["metadata"]["ownerReferences"] = refs
            self._table.put(kind, key, new, obj)

    # ------------------------------------------------------------ namespaces
    def _delete_namespace(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        name = key[1]
        if not obj["metadata"].get("deletionTimestamp"):
            new = clone(obj)
            new["metadata"]["deletionTimestamp"] = now_iso()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            obj = self._table.put("namespaces", key, new, obj)
        for kind, res in RESOURCES.items():
            if not res.namespaced:
                continue
            for okey in [k for k in self._table.objects(kind) if k[0] == name]:
                if okey in self._table.objects(kind):
                    self.delete(kind, name, okey[1])
        self._maybe_finish_namespace(name)
        return clone(self._table.objects("namespaces").get(key, obj))

    def _maybe_finish_namespace(self, name: str) -> None:
        ns = self._table.objects("namespaces").get(("", name))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for kind, res in RESOURCES.items():
            if res.namespaced and any(k[0] == name for k in self._table.objects(kind)):
                return
        self._remove("namespaces", ("", name))
