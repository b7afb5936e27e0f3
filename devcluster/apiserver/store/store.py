"""The object store of the Kubernetes API emulator: CRUD, resourceVersions, deletion.

One ``Store`` per cluster holds every object, a global resourceVersion counter
(like etcd's revision) and a bounded per-resource history for watches. Stored
objects are never mutated in place: every write stores a new dict, so history
entries can share them. Callers always get deep copies.

Semantics follow the apiserver where clients can tell the difference:

* ``create`` fills uid, resourceVersion, creationTimestamp, generation,
  generateName and the per-kind defaults (see ``devcluster.apiserver.defaults``).
* Resources with a ``/status`` subresource keep their old status on main
  writes, and ``subresource="status"`` writes change only ``status``.
  In-process controllers must therefore patch status with ``subresource="status"``.
* Pod deletion is graceful: ``deletionTimestamp`` and
  ``deletionGracePeriodSeconds`` are set and the pod is removed when the grace
  period (scaled by ``time_factor``) ends or when a delete with grace 0 comes
  (the kubelet sends one once the process is gone). Unscheduled or finished pods
  go at once. Finalizers hold any object until they are removed.
* Removing an object garbage-collects its dependents (ownerReferences), in the
  background; ``propagationPolicy=Orphan`` strips the references instead.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import uuid
from collections.abc import Callable
from typing import Any

from devcluster.apiserver import defaults
from devcluster.apiserver.admission import check_kind, check_namespace, pick_name
from devcluster.apiserver.patches import apply_patch, clone
from devcluster.apiserver.resources import RESOURCES, Resource
from devcluster.apiserver.selectors import make_matcher
from devcluster.apiserver.store.history import (
    History,
    ListPage,
    Watch,
    WatchEvent,
    continue_expired,
)
from devcluster.apiserver.store.lifecycle import Lifecycle, now_iso
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError, already_exists, bad_request, conflict, not_found

__all__ = ["ApiError", "ListPage", "Store", "Watch", "WatchEvent", "now_iso"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
Validator = Callable[[Resource, dict[str, Any]], None]
Subscriber = Callable[[str, str, dict[str, Any]], None]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


class Store(Lifecycle, History):
    """All objects of one emulated cluster, with watch history and subscribers.

    Args:
        config: the cluster settings (``time_factor`` scales grace periods).
        validator: called on every object about to be stored; raises
            ``ApiError`` (422) to reject it.
        history: watch events kept per resource before compaction (410 Gone).
    """

    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        validator: Validator | None = None,
        history: int = 10000,
    ) -> None:
        super().__init__(history)
        self.config = config or ClusterConfig()
        self.validator = validator
        self._objs: dict[str, dict[Key, dict[str, Any]]] = {p: {} for p in RESOURCES}
        self._uids: dict[str, tuple[str, Key]] = {}
        self._subscribers: builtins.list[Subscriber] = []
        self._timers: dict[tuple[str, Key], asyncio.TimerHandle] = {}
        self._event_index: dict[tuple[str, str, str, str], Key] = {}

    # ----------------------------------------------------------------- reads
    def _res(self, kind: str) -> Resource:
        try:
            return RESOURCES[kind]
        except KeyError:
            raise ApiError(
                404, "NotFound", "the server could not find the requested resource"
            ) from None

    def _key(self, res: Resource, namespace: str | None, name: str) -> Key:
        return ((namespace or "") if res.namespaced else "", name)

    def _get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        res = self._res(kind)
        obj = self._objs[kind].get(self._key(res, namespace, name))
        if obj is None:
            raise not_found(kind, name, res.group)
        return obj

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Return a copy of one object (404 ApiError when missing)."""
        return clone(self._get(kind, namespace, name))

    def get_or_none(
        self, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """Return a copy of one object, or None when it does not exist."""
        try:
            return self.get(kind, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def ensure(
        self, kind: str, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """Create an object unless one with its name exists; return the stored one."""
        existing = self.get_or_none(kind, namespace, obj["metadata"]["name"])
        return existing if existing is not None else self.create(kind, namespace, obj)

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        """Tell whether an object exists."""
        res = self._res(kind)
        return self._key(res, namespace, name) in self._objs[kind]

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        """Return a copy of the object with this uid, or None."""
        found = self._uids.get(uid)
        if found is None:
            return None
        return clone(self._objs[found[0]][found[1]])

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Return copies of the matching objects and the list resourceVersion."""
        page = self.list_page(kind, namespace, label_selector, field_selector)
        return page.items, page.resource_version

    def list_page(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        resource_version: str = "",
        resource_version_match: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> ListPage:
        """List with the apiserver's resourceVersion, limit and continue semantics."""
        res = self._res(kind)
        match = make_matcher(kind, label_selector, field_selector)
        ns = namespace if res.namespaced else None
        start_after: Key | None = None
        if continue_token:
            rv, start_after = self.decode_continue(continue_token)
            try:
                objs, list_rv = self.snapshot_at(kind, str(rv), "Exact")
            except ApiError as exc:
                if exc.code == 410:
                    raise continue_expired() from None
                raise
        else:
            objs, list_rv = self.snapshot_at(
                kind, resource_version, resource_version_match
            )
        keys = sorted(k for k in objs if ns is None or k[0] == ns)
        return self.paginate(kind, keys, objs, match, limit, start_after, list_rv)

    def _current(self, kind: str) -> dict[Key, dict[str, Any]]:
        return self._objs[kind]

    def items_raw(self, kind: str) -> builtins.list[dict[str, Any]]:
        """Return the stored objects themselves (read-only; never mutate them)."""
        return list(self._objs[kind].values())

    # ---------------------------------------------------------------- writes
    def _store(
        self, kind: str, key: Key, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        rv = self.next_rv()
        _meta(obj)["resourceVersion"] = str(rv)
        self._objs[kind][key] = obj
        self._uids[obj["metadata"]["uid"]] = (kind, key)
        self.record(kind, "MODIFIED" if old is not None else "ADDED", obj, old, rv)
        self._notify("MODIFIED" if old is not None else "ADDED", kind, obj)
        return obj

    def _notify(self, event_type: str, kind: str, obj: dict[str, Any]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event_type, kind, clone(obj))
            except Exception:
                log.exception(
                    "store subscriber %r failed on %s %s", callback, event_type, kind
                )

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event_type, kind, obj)`` after every change.

        The callback runs synchronously inside the write; it gets its own copy.
        Returns a function that unsubscribes it.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def create(
        self, kind: str, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """Create an object and return a copy of what was stored.

        Raises:
            ApiError: 400 (kind/namespace mismatch), 404 (namespace missing),
                409 (name taken), 422 (invalid), 403 (admission).
        """
        res = self._res(kind)
        obj = clone(obj)
        check_kind(res, obj)
        meta = _meta(obj)
        check_namespace(res, namespace, meta, self._objs["namespaces"])
        name = pick_name(
            res, meta, lambda n: self._key(res, namespace, n) in self._objs[kind]
        )
        key = self._key(res, namespace, name)
        for field in (
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
        ):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        defaults.apply_defaults(kind, obj, self.items_raw, self._service_ips())
        if self.validator is not None:
            self.validator(res, obj)
        if key in self._objs[kind]:
            raise already_exists(kind, name, res.group)
        return clone(self._store(kind, key, obj, None))

    def _service_ips(self) -> set[str]:
        return {
            str((s.get("spec") or {}).get("clusterIP"))
            for s in self._objs["services"].values()
        }

    def replace(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object (PUT); a stale ``metadata.resourceVersion`` is a 409."""
        res = self._res(kind)
        old = self._get(kind, namespace, name)
        new = clone(obj)
        check_kind(res, new)
        meta = _meta(new)
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the "
                f"name on the URL ({name})"
            )
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, res.group)
        return self._update(res, old, new, subresource)

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Patch an object with a ``merge``, ``strategic`` or ``json`` patch."""
        res = self._res(kind)
        old = self._get(kind, namespace, name)
        new = apply_patch(old, patch, patch_type)
        if not isinstance(new, dict):
            raise bad_request("patch did not produce an object")
        check_kind(res, new)
        meta = _meta(new)
        if meta.get("name") != name or meta.get("uid") != old["metadata"]["uid"]:
            raise ApiError(
                422, "Invalid", f'{res.kind} "{name}" is invalid: metadata: immutable'
            )
        rv = meta.get("resourceVersion")  # a patch may carry one as a precondition
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, res.group)
        return self._update(res, old, new, subresource)

    def _update(
        self,
        res: Resource,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        kind = res.plural
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
        meta = _meta(new)
        old_meta = old["metadata"]
        for field in (
            "uid",
            "creationTimestamp",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if _spec_of(new) != _spec_of(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if old_meta.get("deletionTimestamp") and set(
            meta.get("finalizers") or []
        ) - set(old_meta.get("finalizers") or []):
            raise ApiError(
                422,
                "Invalid",
                f'{res.kind} "{meta["name"]}" is invalid: metadata.finalizers: '
                "Forbidden: no new finalizers can be added if the object is being "
                "deleted",
            )
        if self.validator is not None:
            self.validator(res, new)
        key = self._key(res, meta.get("namespace"), meta["name"])
        stored = self._store(kind, key, new, old)
        self._maybe_finish(kind, key)
        return clone(stored)

    # ------------------------------------------------------------------ misc
    def close(self) -> None:
        """Cancel pending grace-period timers and end every watch."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.close_watches()


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
