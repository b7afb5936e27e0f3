"""The apiextensions controllers: serve custom resources and establish them.

``CrdLoop`` keeps the API server's registry equal to the stored
CustomResourceDefinitions (:mod:`devcluster.apiserver.crds` says what each
serves): a definition's resources are served as soon as it is stored (the
apiserver serves them once its names are accepted, which here is at once) and
the loop then writes the status the naming and establishing controllers write
(``NamesAccepted``, ``Established``, ``acceptedNames``, ``storedVersions``).
When a definition is deleted, its objects are deleted and its resources stop
being served, as the apiserver's CRD finalizer does
(``customresourcecleanup.apiextensions.k8s.io``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from devcluster.apiserver import crds
from devcluster.apiserver.resources import register_custom, unregister_custom
from devcluster.apiserver.store import Store
from devcluster.apiserver.validation import set_custom_schema
from devcluster.config import ClusterConfig
from devcluster.controllers.loops import Loop, Obj, ns_name
from devcluster.errors import ApiError
from devcluster.timestamps import now_iso

KIND = "customresourcedefinitions"


class CrdLoop(Loop):
    """Serve every stored definition's resources and write its status."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        super().__init__(store, config, frozenset({KIND}), period_s=30.0)
        self._served: dict[str, tuple[str, str]] = {}
        """plural → (kind, apiVersion) of what this loop registered."""

    def on_change(self, event: str, kind: str, obj: dict[str, Any]) -> None:
        """Serve a new definition's resources at once, then wake the loop."""
        if kind == KIND and event != "DELETED":
            self._serve(obj)
        super().on_change(event, kind, obj)

    def _serve(self, crd: Obj) -> None:
        if crds.names_conflict(crd, self.store.items_raw(KIND)):
            return
        for res, subresources, schema in crds.served(crd):
            if not res.plural or not res.kind:
                continue
            with contextlib.suppress(ValueError):  # a built-in plural: refused
                register_custom(res, subresources)
                set_custom_schema(res.kind, res.api_version, schema or None)
                self._served[res.plural] = (res.kind, res.api_version)

    async def run_pass(self) -> None:
        """Establish new definitions; stop serving deleted ones."""
        definitions = self.store.items_raw(KIND)
        wanted: set[str] = set()
        for crd in definitions:
            self._serve(crd)
            wanted.update(res.plural for res, _, _ in crds.served(crd))
            conflict = crds.names_conflict(crd, definitions)
            status = crds.status_of(crd, conflict, now_iso())
            if _same(status, crd.get("status") or {}):
                continue
            new = {**crd, "status": status}
            with contextlib.suppress(ApiError):  # changed meanwhile: next pass
                self.store.replace(
                    KIND, None, ns_name(crd)[1], new, subresource="status"
                )
        for plural in [p for p in self._served if p not in wanted]:
            self._remove(plural)

    def _remove(self, plural: str) -> None:
        for obj in list(self.store.items_raw(plural)):
            namespace, name = ns_name(obj)
            with contextlib.suppress(ApiError):
                self.store.delete(plural, namespace or None, name)
        kind, api_version = self._served.pop(plural)
        unregister_custom(plural)
        set_custom_schema(kind, api_version, None)

    def forget(self) -> None:
        """Stop serving what this loop registered (the cluster stops)."""
        for plural, (kind, api_version) in list(self._served.items()):
            unregister_custom(plural)
            set_custom_schema(kind, api_version, None)
        self._served.clear()


def _same(new: Obj, old: Obj) -> bool:
    """Tell whether two statuses differ only in transition times."""

    def plain(status: Obj) -> Obj:
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return {**status, "conditions": conditions}

    return plain(new) == plain(old)
