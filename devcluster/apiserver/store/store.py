"""``Store``: the object store of the Kubernetes API emulator, one per cluster.

The store is composed of its parts: an ``ObjectTable`` (the objects, versioned
writes, subscribers), a ``History`` (resourceVersion counter, watch cache) and a
``Lifecycle`` (deletion, grace periods, finalizers, garbage collection). The
``Store`` itself is the API the HTTP layer, the kubelet and the controllers use;
callers always get deep copies. Semantics follow the apiserver where clients can
tell the difference:

* ``create`` fills uid, resourceVersion, creationTimestamp, generation,
  generateName and the per-kind defaults (see ``devcluster.apiserver.defaults``).
* Resources with a ``/status`` subresource keep their old status on main
  writes, and ``subresource="status"`` writes change only ``status``.
  In-process controllers must therefore patch status with ``subresource="status"``
  (see ``devcluster.apiserver.store.updates``).
* ``delete`` is graceful for pods bound to a node; see
  ``devcluster.apiserver.store.lifecycle``. A kubelet that runs pods says so
  with ``attach_kubelet``: its pods then go only by its final delete.
* ``emit_event`` aggregates repeated Events like client-go's event recorder.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from devcluster.apiserver import defaults, irsa
from devcluster.apiserver.admission import (
    check_kind,
    check_namespace,
    check_service_account,
    pick_name,
)
from devcluster.apiserver.apply import apply as apply_fields
from devcluster.apiserver.apply import track_update
from devcluster.apiserver.patches import apply_patch, clone
from devcluster.apiserver.resources import Resource, status_reset_on_create
from devcluster.apiserver.selectors import make_matcher
from devcluster.apiserver.store.events import build_event
from devcluster.apiserver.store.history import History
from devcluster.apiserver.store.lifecycle import Lifecycle
from devcluster.apiserver.store.paging import (
    ListPage,
    continue_expired,
    decode_continue,
    paginate,
)
from devcluster.apiserver.store.table import ObjectTable, Subscriber, meta_of
from devcluster.apiserver.store.updates import bound_pod, prepare_update
from devcluster.apiserver.store.watch import Key, Watch
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError, already_exists, bad_request, conflict
from devcluster.timestamps import now_iso

Validator = Callable[[Resource, dict[str, Any], str], None]
"""``(resource, object, fieldValidation)``; raises ApiError to reject the object
and may drop unknown fields from it (``fieldValidation`` Ignore or Warn)."""


class Store:
    """All objects of one emulated cluster, with watch history and subscribers.

    Args:
        config: the cluster settings (``time_factor`` scales grace periods).
        validator: called on every object about to be stored; raises
            ``ApiError`` (422) to reject it.
        history: most watch events kept per resource (410 Gone beyond); the
            fewest kept and their freshness come from ``config``.
    """

    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        validator: Validator | None = None,
        history: int = 10000,
    ) -> None:
        self.config = config or ClusterConfig()
        self._irsa = irsa.IrsaSettings(self.config.region, self.config.pod_aws_endpoint)
        self.validator = validator
        self._history = History(
            history,
            self.config.watch_cache_min_events,
            self.config.watch_cache_fresh_s,
        )
        self._table = ObjectTable(self._history)
        self._lifecycle = Lifecycle(self._table, self.config)
        self._event_index: dict[tuple[str, str, str, str], Key] = {}

    # ----------------------------------------------------------------- reads
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Return a copy of one object (404 ApiError when missing)."""
        return clone(self._table.stored(kind, namespace, name))

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
        res = self._table.resource(kind)
        return self._table.key(res, namespace, name) in self._table.objects(kind)

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        """Return a copy of the object with this uid, or None."""
        obj = self._table.by_uid(uid)
        return None if obj is None else clone(obj)

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
        res = self._table.resource(kind)
        match = make_matcher(kind, label_selector, field_selector)
        ns = namespace if res.namespaced else None
        current = self._table.objects(kind)
        start_after: Key | None = None
        if continue_token:
            rv, start_after = decode_continue(continue_token)
            try:
                objs, list_rv = self._history.snapshot_at(
                    kind, current, str(rv), "Exact"
                )
            except ApiError as exc:
                if exc.code == 410:
                    raise continue_expired() from None
                raise
        else:
            objs, list_rv = self._history.snapshot_at(
                kind, current, resource_version, resource_version_match
            )
        keys = sorted(k for k in objs if ns is None or k[0] == ns)
        return paginate(keys, objs, match, limit, start_after, list_rv)

    def items_raw(self, kind: str) -> builtins.list[dict[str, Any]]:
        """Return the stored objects themselves (read-only; never mutate them)."""
        return list(self._table.objects(kind).values())

    # ---------------------------------------------------------------- writes
    def create(
        self,
        kind: str,
        namespace: str | None,
        obj: dict[str, Any],
        *,
        field_validation: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Create an object and return a copy of what was stored.

        ``field_validation`` is the request's ``fieldValidation`` (see
        ``devcluster.apiserver.validation.validate``); with ``dry_run`` nothing
        is stored and the object is returned as it would have been.

        Raises:
            ApiError: 400 (kind/namespace mismatch), 404 (namespace missing),
                409 (name taken), 422 (invalid), 403 (admission).
        """
        res = self._table.resource(kind)
        objs = self._table.objects(kind)
        obj = clone(obj)
        check_kind(res, obj)
        meta = meta_of(obj)
        check_namespace(res, namespace, meta, self._table.objects("namespaces"))
        name = pick_name(
            res, meta, lambda n: self._table.key(res, namespace, n) in objs
        )
        key = self._table.key(res, namespace, name)
        for field in (
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
        ):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        if status_reset_on_create(res):
            obj.pop("status", None)
        meta["generation"] = 1
        defaults.apply_defaults(
            kind, obj, self.items_raw, self._service_ips(), self.config.service_cidr
        )
        if kind == "pods":
            check_service_account(obj, self.items_raw)
            # the pod identity webhook (a mutating webhook: after the built-ins)
            irsa.mutate_pod(obj, self.items_raw, self._irsa)
        if self.validator is not None:
            self.validator(res, obj, field_validation or self.config.field_validation)
        if key in objs:
            raise already_exists(kind, name, res.group)
        if dry_run:
            return obj
        return clone(self._table.put(kind, key, obj, None))

    def _service_ips(self) -> set[str]:
        return {
            str((s.get("spec") or {}).get("clusterIP"))
            for s in self._table.objects("services").values()
        }

    def replace(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        *,
        field_validation: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> dict[str, Any]:
        """Replace an object (PUT); a stale ``metadata.resourceVersion`` is a 409.

        ``field_manager`` names the writer for ``managedFields`` (objects that
        were server-side applied record who changed which fields).
        """
        res = self._table.resource(kind)
        old = self._table.stored(kind, namespace, name)
        new = clone(obj)
        check_kind(res, new)
        meta = meta_of(new)
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the "
                f"name on the URL ({name})"
            )
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, res.group)
        return self._update(
            res, old, new, subresource, field_validation, dry_run, field_manager
        )

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        subresource: str | None = None,
        *,
        field_validation: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> dict[str, Any]:
        """Patch an object with a ``merge``, ``strategic`` or ``json`` patch."""
        res = self._table.resource(kind)
        old = self._table.stored(kind, namespace, name)
        new = apply_patch(old, patch, patch_type)
        if not isinstance(new, dict):
            raise bad_request("patch did not produce an object")
        check_kind(res, new)
        meta = meta_of(new)
        if meta.get("name") != name or meta.get("uid") != old["metadata"]["uid"]:
            raise ApiError(
                422, "Invalid", f'{res.kind} "{name}" is invalid: metadata: immutable'
            )
        rv = meta.get("resourceVersion")  # a patch may carry one as a precondition
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, res.group)
        return self._update(
            res, old, new, subresource, field_validation, dry_run, field_manager
        )

    def apply(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        manager: str,
        *,
        force: bool = False,
        field_validation: str = "",
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply ``body`` as ``manager``; return (object, created).

        Creates the object when it does not exist. See
        ``devcluster.apiserver.apply`` for the merge and ownership rules.

        Raises:
            ApiError: 400 without a field manager or kind, 409 on conflicts.
        """
        res = self._table.resource(kind)
        if not manager:
            raise bad_request(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                "value: is required for apply patch"
            )
        if not body.get("apiVersion") or not body.get("kind"):
            raise bad_request(
                f"invalid object type: {body.get('apiVersion', '')}, "
                f"Kind={body.get('kind', '')}"
            )
        check_kind(res, clone(body))
        meta = meta_of(body)
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the "
                f"name on the URL ({name})"
            )
        live = self.get_or_none(kind, namespace, name)
        result = apply_fields(live, body, res, manager, force)
        meta_of(result)["name"] = name
        if live is None:
            created = self.create(
                kind,
                namespace,
                result,
                field_validation=field_validation,
                dry_run=dry_run,
            )
            return created, True
        return self.replace(
            kind,
            namespace,
            name,
            result,
            field_validation=field_validation,
            dry_run=dry_run,
        ), False

    def _update(
        self,
        res: Resource,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        field_validation: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> dict[str, Any]:
        new = prepare_update(res, old, new, subresource)
        if subresource is None:
            _track_managers(res, old, new, field_manager)
        if self.validator is not None:
            self.validator(res, new, field_validation or self.config.field_validation)
        if dry_run:
            return new
        meta = new["metadata"]
        key = self._table.key(res, meta.get("namespace"), meta["name"])
        stored = self._table.put(res.plural, key, new, old)
        self._lifecycle.maybe_finish(res.plural, key)
        return clone(stored)

    def bind(self, namespace: str, name: str, node_name: str) -> dict[str, Any]:
        """Bind a pod to a node, as POST ``pods/{name}/binding`` does.

        Raises:
            ApiError: 409 when the pod is already bound to a node.
        """
        old = self._table.stored("pods", namespace, name)
        new = bound_pod(old, node_name)
        key = self._table.key(self._table.resource("pods"), namespace, name)
        return clone(self._table.put("pods", key, new, old))

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
        return self._lifecycle.delete(
            kind,
            namespace,
            name,
            grace_period_seconds,
            propagation_policy,
            preconditions,
        )

    def attach_kubelet(self, runs_pod: Callable[[dict[str, Any]], bool]) -> None:
        """Let a kubelet end the graceful deletion of the pods it runs.

        Args:
            runs_pod: tells whether the kubelet runs a pod; such a pod stays
                (with its deletionTimestamp) past its grace period until the
                kubelet deletes it with grace 0.
        """
        self._lifecycle.kubelet_runs = runs_pod

    def emit_event(
        self,
        involved: dict[str, Any],
        reason: str,
        message: str,
        type_: str = "Normal",
        source: str = "default-scheduler",
        host: str = "",
        field_path: str = "",
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Record a core/v1 Event about an object, aggregating repeats like client-go.

        A repeat (same object, reason, message and source) increments ``count``
        and ``lastTimestamp`` of the existing Event instead of creating a new one.
        Events about cluster-scoped objects (Nodes) go to namespace ``default``.
        """
        meta = involved.get("metadata") or {}
        ident = (str(meta.get("uid", "")), reason, message, source)
        key = self._event_index.get(ident)
        existing = self._table.objects("events").get(key) if key else None
        if key is not None and existing is not None:
            count = int(existing.get("count") or 1) + 1
            return self.patch(
                "events", key[0], key[1], {"count": count, "lastTimestamp": now_iso()}
            )
        event = build_event(
            involved, reason, message, type_, source, host, field_path, annotations
        )
        namespace = event["metadata"]["namespace"]
        created = self.create("events", namespace, event)
        self._event_index[ident] = (namespace, created["metadata"]["name"])
        return created

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event_type, kind, obj)`` after every change.

        The callback runs synchronously inside the write; it gets its own copy.
        Returns a function that unsubscribes it.
        """
        return self._table.subscribe(callback)

    # --------------------------------------------------------------- watches
    @property
    def resource_version(self) -> int:
        """Return the newest resourceVersion handed out."""
        return self._history.resource_version

    def compact(self, kind: str | None = None) -> None:
        """Forget the history (of one resource or all), as etcd compaction does."""
        self._history.compact(kind)

    def watch(
        self,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ``(type, object)`` for changes, like a watch request.

        Raises:
            ApiError: 410 when ``resource_version`` is older than the history.
        """
        watch = self.open_watch(
            kind, namespace, resource_version, label_selector, field_selector
        )
        return watch.iter_objects()

    def open_watch(
        self,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Watch:
        """Register a watch now and return it (close it when done).

        Raises:
            ApiError: 410 for a compacted resourceVersion, 400 for a bad selector.
        """
        res = self._table.resource(kind)
        match = make_matcher(kind, label_selector, field_selector)
        ns = namespace if res.namespaced else None
        current = self._table.objects(kind)
        return self._history.start_watch(kind, ns, resource_version, match, current)

    def watch_count(self) -> int:
        """Return how many watches are open."""
        return self._history.watch_count()

    # ------------------------------------------------------------------ misc
    def close(self) -> None:
        """Cancel pending grace-period timers and end every watch."""
        self._lifecycle.close()
        self._history.close_watches()


def _track_managers(
    res: Resource, old: dict[str, Any], new: dict[str, Any], manager: str
) -> None:
    """Keep ``managedFields`` of an update (the apiserver's field manager).

    A write that leaves ``managedFields`` out, or sends them unchanged, keeps
    them and, with a manager, gives it the fields it changed; a write that
    sends other ``managedFields`` sets them (``[]`` or ``[{}]`` clears them).
    Objects never applied have none and cost nothing here.
    """
    meta, old_fields = new["metadata"], old["metadata"].get("managedFields")
    if "managedFields" not in meta:
        if old_fields is None:
            return
        meta["managedFields"] = old_fields
    sent = meta["managedFields"]
    if sent != old_fields:
        if not [e for e in sent or [] if e]:
            meta.pop("managedFields")
        return
    if sent and manager:
        tracked = track_update(old, new, res, manager)
        if tracked:
            meta["managedFields"] = tracked
        else:
            meta.pop("managedFields")
