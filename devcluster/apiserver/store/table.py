"""The store's objects: one table per resource, and the writes that version them.

``ObjectTable`` holds every stored object by resource and key
``(namespace or "", name)``, with a uid index. Stored objects are never mutated
in place: every write stores a new dict, so history entries can share them. Each
write takes the next resourceVersion, is recorded in the ``History`` (and so
reaches watches) and is handed to the subscribers, synchronously.
"""

from __future__ import annotations

import builtins
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import RESOURCES, Resource
from devcluster.apiserver.store.history import History
from devcluster.apiserver.store.watch import Key
from devcluster.errors import ApiError, not_found

log = logging.getLogger(__name__)

Subscriber = Callable[[str, str, dict[str, Any]], None]


def meta_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj["metadata"]``, created empty when it is missing."""
    found = obj.get("metadata")
    if not isinstance(found, dict):
        found = obj["metadata"] = {}
    return found


class ObjectTable:
    """Every object of one cluster, by resource and key, and its uid index.

    Args:
        history: where every write is recorded and delivered to watches.
    """

    def __init__(self, history: History) -> None:
        self.history = history
        # a table per resource, custom resources' made when first used
        self._objs: defaultdict[str, dict[Key, dict[str, Any]]] = defaultdict(dict)
        for plural in RESOURCES:
            self._objs[plural] = {}
        self._uids: dict[str, tuple[str, Key]] = {}
        self._subscribers: builtins.list[Subscriber] = []

    # ----------------------------------------------------------------- reads
    def resource(self, kind: str) -> Resource:
        """Return the resource of a plural name (404 ApiError when unknown)."""
        try:
            return RESOURCES[kind]
        except KeyError:
            raise ApiError(
                404, "NotFound", "the server could not find the requested resource"
            ) from None

    @staticmethod
    def key(res: Resource, namespace: str | None, name: str) -> Key:
        """Return the key of an object (cluster-scoped objects have no namespace)."""
        return ((namespace or "") if res.namespaced else "", name)

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Return the stored object itself (never mutate it); 404 when missing."""
        res = self.resource(kind)
        obj = self._objs[kind].get(self.key(res, namespace, name))
        if obj is None:
            raise not_found(kind, name, res.group)
        return obj

    def objects(self, kind: str) -> dict[Key, dict[str, Any]]:
        """Return the live table of one resource (read-only; never mutate it)."""
        return self._objs[kind]

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        """Return the stored object with this uid, or None."""
        found = self._uids.get(uid)
        if found is None:
            return None
        return self._objs[found[0]][found[1]]

    def has_uid(self, uid: str | None) -> bool:
        """Tell whether an object with this uid is stored."""
        return uid in self._uids

    def tables(self) -> builtins.list[tuple[str, dict[Key, dict[str, Any]]]]:
        """Return ``(plural, live table)`` for every resource."""
        return list(self._objs.items())

    # ---------------------------------------------------------------- writes
    def put(
        self, kind: str, key: Key, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Store ``obj`` (ADDED, or MODIFIED when ``old`` is given) and return it."""
        rv = self.history.next_rv()
        meta_of(obj)["resourceVersion"] = str(rv)
        self._objs[kind][key] = obj
        self._uids[obj["metadata"]["uid"]] = (kind, key)
        event_type = "MODIFIED" if old is not None else "ADDED"
        self.history.record(kind, event_type, obj, old, rv)
        self._notify(event_type, kind, obj)
        return obj

    def remove(self, kind: str, key: Key) -> dict[str, Any]:
        """Drop an object (DELETED) and return its last state, at a new version."""
        obj = self._objs[kind].pop(key)
        self._uids.pop(obj["metadata"]["uid"], None)
        rv = self.history.next_rv()
        final = dict(obj)
        final["metadata"] = {**obj["metadata"], "resourceVersion": str(rv)}
        self.history.record(kind, "DELETED", final, obj, rv)
        self._notify("DELETED", kind, final)
        return final

    # ----------------------------------------------------------- subscribers
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

    def _notify(self, event_type: str, kind: str, obj: dict[str, Any]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event_type, kind, clone(obj))
            except Exception:
                log.exception(
                    "store subscriber %r failed on %s %s", callback, event_type, kind
                )
