"""Deletion, garbage collection and Events: the lifecycle half of the store.

``Lifecycle`` is a mixin of ``devcluster.apiserver.store.store.Store``; it owns graceful
pod deletion (deletionTimestamp, grace periods scaled by ``time_factor``), finalizers,
ownerReferences garbage collection, namespace termination and the Events that
controllers emit (aggregated like client-go's event recorder).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import RESOURCES, Resource
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError, conflict

Key = tuple[str, str]


def now_iso() -> str:
    """Return the current time as an RFC 3339 timestamp with seconds (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_after(seconds: float) -> str:
    """Return the RFC 3339 timestamp ``seconds`` from now."""
    return datetime.fromtimestamp(time.time() + seconds, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


_last_stamp = [0]


def _event_stamp() -> int:
    """Return unique, increasing nanoseconds: event names sort in time order."""
    stamp = max(time.time_ns(), _last_stamp[0] + 1)
    _last_stamp[0] = stamp
    return stamp


def build_event(
    involved: dict[str, Any],
    reason: str,
    message: str,
    type_: str,
    source: str,
    host: str = "",
    field_path: str = "",
) -> dict[str, Any]:
    """Return a new core/v1 Event about ``involved`` (not yet stored)."""
    meta = involved.get("metadata") or {}
    res = next((r for r in RESOURCES.values() if r.kind == involved.get("kind")), None)
    stamp = now_iso()
    ref = {
        "kind": involved.get("kind", res.kind if res else ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": involved.get("apiVersion", res.api_version if res else "v1"),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return {
        "metadata": {
            "name": f"{meta.get('name', 'unknown')}.{_event_stamp():x}",
            "namespace": meta.get("namespace") or "default",
        },
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": source, **({"host": host} if host else {})},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": None,
        "count": 1,
        "reportingComponent": source,
        "reportingInstance": host,
    }


class Lifecycle:
    """Deletion, garbage collection and Events (a mixin of ``Store``)."""

    config: ClusterConfig
    _objs: dict[str, dict[Key, dict[str, Any]]]
    _uids: dict[str, tuple[str, Key]]
    _timers: dict[tuple[str, Key], asyncio.TimerHandle]
    _event_index: dict[tuple[str, str, str, str], Key]

    if TYPE_CHECKING:  # provided by Store and History

        def _res(self, kind: str) -> Resource:
            raise NotImplementedError

        def _key(self, res: Resource, namespace: str | None, name: str) -> Key:
            raise NotImplementedError

        def _get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
            raise NotImplementedError

        def _store(
            self, kind: str, key: Key, obj: dict[str, Any], old: dict[str, Any] | None
        ) -> dict[str, Any]:
            raise NotImplementedError

        def _notify(self, event_type: str, kind: str, obj: dict[str, Any]) -> None:
            raise NotImplementedError

        def next_rv(self) -> int:
            raise NotImplementedError

        def record(
            self,
            kind: str,
            event_type: str,
            obj: dict[str, Any],
            old: dict[str, Any] | None,
            rv: int,
        ) -> None:
            raise NotImplementedError

        def create(
            self, kind: str, namespace: str | None, obj: dict[str, Any]
        ) -> dict[str, Any]:
            raise NotImplementedError

        def patch(
            self,
            kind: str,
            namespace: str | None,
            name: str,
            patch: Any,
            patch_type: str = "merge",
            subresource: str | None = None,
        ) -> dict[str, Any]:
            raise NotImplementedError

    def bind(self, namespace: str, name: str, node_name: str) -> dict[str, Any]:
        """Bind a pod to a node, as POST ``pods/{name}/binding`` does.

        Raises:
            ApiError: 409 when the pod is already bound to a node.
        """
        old = self._get("pods", namespace, name)
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
        key = self._key(RESOURCES["pods"], namespace, name)
        return clone(self._store("pods", key, new, old))

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
        res = self._res(kind)
        obj = self._get(kind, namespace, name)
        key = self._key(res, namespace, name)
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
        new["metadata"]["deletionTimestamp"] = iso_after(self.config.real(grace))
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        stored = self._store(kind, key, new, obj)
        if grace > 0:
            self._schedule_removal(kind, key, self.config.real(grace))
        else:
            self._maybe_finish(kind, key)
        return stored

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
        obj = self._objs[kind].get(key)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if obj["metadata"].get("finalizers"):
            new = clone(obj)
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            self._store(kind, key, new, obj)
            return
        self._remove(kind, key)

    def _maybe_finish(self, kind: str, key: Key) -> None:
        obj = self._objs[kind].get(key)
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

    def _remove(self, kind: str, key: Key) -> dict[str, Any]:
        obj = self._objs[kind].pop(key)
        timer = self._timers.pop((kind, key), None)
        if timer is not None:
            timer.cancel()
        uid = obj["metadata"]["uid"]
        self._uids.pop(uid, None)
        rv = self.next_rv()
        final = dict(obj)
        final["metadata"] = {**obj["metadata"], "resourceVersion": str(rv)}
        self.record(kind, "DELETED", final, obj, rv)
        self._notify("DELETED", kind, final)
        self._collect_garbage(uid)
        if key[0]:
            self._maybe_finish_namespace(key[0])
        return final

    # ---------------------------------------------------- garbage collection
    def _dependents(self, uid: str) -> list[tuple[str, Key, dict[str, Any]]]:
        found = []
        for kind, objs in self._objs.items():
            for key, obj in objs.items():
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    found.append((kind, key, obj))
        return found

    def _collect_garbage(self, uid: str) -> None:
        for kind, key, obj in self._dependents(uid):
            refs = obj["metadata"].get("ownerReferences") or []
            if (
                all(r.get("uid") not in self._uids for r in refs)
                and key in self._objs[kind]
            ):
                self.delete(kind, key[0] or None, key[1])

    def _delete_dependents(self, uid: str) -> None:
        for kind, key, _ in self._dependents(uid):
            if key in self._objs[kind]:
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
            self._store(kind, key, new, obj)

    def _delete_namespace(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        name = key[1]
        if not obj["metadata"].get("deletionTimestamp"):
            new = clone(obj)
            new["metadata"]["deletionTimestamp"] = now_iso()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            obj = self._store("namespaces", key, new, obj)
        for kind, res in RESOURCES.items():
            if not res.namespaced:
                continue
            for okey in [k for k in self._objs[kind] if k[0] == name]:
                if okey in self._objs[kind]:
                    self.delete(kind, name, okey[1])
        self._maybe_finish_namespace(name)
        return clone(self._objs["namespaces"].get(key, obj))

    def _maybe_finish_namespace(self, name: str) -> None:
        ns = self._objs["namespaces"].get(("", name))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for kind, res in RESOURCES.items():
            if res.namespaced and any(k[0] == name for k in self._objs[kind]):
                return
        self._remove("namespaces", ("", name))

    def emit_event(
        self,
        involved: dict[str, Any],
        reason: str,
        message: str,
        type_: str = "Normal",
        source: str = "default-scheduler",
        host: str = "",
        field_path: str = "",
    ) -> dict[str, Any]:
        """Record a core/v1 Event about an object, aggregating repeats like client-go.

        A repeat (same object, reason, message and source) increments ``count``
        and ``lastTimestamp`` of the existing Event instead of creating a new one.
        Events about cluster-scoped objects (Nodes) go to namespace ``default``.
        """
        meta = involved.get("metadata") or {}
        ident = (str(meta.get("uid", "")), reason, message, source)
        key = self._event_index.get(ident)
        existing = self._objs["events"].get(key) if key else None
        if key is not None and existing is not None:
            count = int(existing.get("count") or 1) + 1
            return self.patch(
                "events", key[0], key[1], {"count": count, "lastTimestamp": now_iso()}
            )
        event = build_event(involved, reason, message, type_, source, host, field_path)
        namespace = event["metadata"]["namespace"]
        created = self.create("events", namespace, event)
        self._event_index[ident] = (namespace, created["metadata"]["name"])
        return created
