"""The EndpointSlice and Endpoints controllers acting on the store.

``EndpointsLoop`` keeps, for every Service with a selector, its EndpointSlices
(named ``<service>-<random>``, found again by their ``kubernetes.io/service-name``
label) and its Endpoints (named like the Service) equal to what
:mod:`devcluster.controllers.endpoints.decisions` computes from the pods, and
writes only what changed. Slices go with their Service through garbage
collection (they are owned by it); Endpoints of a Service that is gone (or lost
its selector) are deleted here, as the Endpoints controller does.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.endpoints import decisions
from devcluster.controllers.loops import Loop, Obj, ns_name
from devcluster.controllers.predicates import meta_of
from devcluster.errors import ApiError


def _content(obj: Mapping[str, Any]) -> Obj:
    """What the controller decides about an object (metadata it sets, the rest)."""
    meta = meta_of(obj)
    return {
        "labels": meta.get("labels") or {},
        **{k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")},
    }


class EndpointsLoop(Loop):
    """The EndpointSlice and Endpoints controllers."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        kinds = frozenset({"services", "pods", "endpointslices", "endpoints"})
        super().__init__(store, config, kinds, period_s=30.0)

    async def run_pass(self) -> None:
        """Sync the endpoints of every Service once."""
        services = list(self.store.items_raw("services"))
        if not any(decisions.selects(s) for s in services):
            self._drop_stale_endpoints(set())
            return
        # pods by (namespace, label, value): a Service looks at the pods
        # carrying its selector's rarest pair only, not at every pod
        pods: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for pod in self.store.items_raw("pods"):
            namespace = str(meta_of(pod).get("namespace"))
            for key, value in (meta_of(pod).get("labels") or {}).items():
                pods[(namespace, str(key), str(value))].append(pod)
        slices: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for slice_ in self.store.items_raw("endpointslices"):
            labels = meta_of(slice_).get("labels") or {}
            if labels.get(decisions.MANAGED_BY) == decisions.SLICE_CONTROLLER:
                key = (
                    str(meta_of(slice_).get("namespace")),
                    str(labels.get(decisions.SERVICE_NAME)),
                )
                slices[key].append(slice_)
        wanted: set[tuple[str, str]] = set()
        for service in services:
            if not decisions.selects(service) or meta_of(service).get(
                "deletionTimestamp"
            ):
                continue
            key = ns_name(service)
            wanted.add(key)
            selector = (service.get("spec") or {}).get("selector") or {}
            candidates = min(
                (pods.get((key[0], str(k), str(v)), []) for k, v in selector.items()),
                key=len,
            )
            found = decisions.addresses(service, candidates)
            self._sync_slices(service, found, slices.get(key, []))
            self._sync_endpoints(service, found)
        self._drop_stale_endpoints(wanted)

    def _sync_slices(
        self, service: Obj, found: list[decisions.Address], current: list[Obj]
    ) -> None:
        namespace, name = ns_name(service)
        desired = decisions.endpoint_slices(service, found)
        existing = sorted(current, key=lambda s: str(meta_of(s).get("name")))
        for index, slice_ in enumerate(desired):
            if index < len(existing):
                old = existing[index]
                if _content(old) == _content(slice_):
                    continue
                with contextlib.suppress(ApiError):
                    fresh = self.store.get("endpointslices", *ns_name(old))
                    fresh["metadata"]["labels"] = slice_["metadata"]["labels"]
                    fresh["endpoints"] = slice_["endpoints"]
                    fresh.pop("ports", None)
                    if "ports" in slice_:
                        fresh["ports"] = slice_["ports"]
                    self.store.replace("endpointslices", *ns_name(old), fresh)
                continue
            slice_["metadata"]["generateName"] = f"{name}-"
            with contextlib.suppress(ApiError):
                self.store.create("endpointslices", namespace, slice_)
        for old in existing[len(desired) :]:
            with contextlib.suppress(ApiError):
                self.store.delete("endpointslices", *ns_name(old))

    def _sync_endpoints(self, service: Obj, found: list[decisions.Address]) -> None:
        namespace, name = ns_name(service)
        desired = decisions.endpoints(service, found)
        old = self.store.get_or_none("endpoints", namespace, name)
        if old is None:
            with contextlib.suppress(ApiError):
                self.store.create("endpoints", namespace, desired)
            return
        if _content(old) == _content(desired):
            return
        old["metadata"]["labels"] = desired["metadata"]["labels"]
        old.pop("subsets", None)
        if "subsets" in desired:
            old["subsets"] = desired["subsets"]
        with contextlib.suppress(ApiError):
            self.store.replace("endpoints", namespace, name, old)

    def _drop_stale_endpoints(self, wanted: set[tuple[str, str]]) -> None:
        for obj in list(self.store.items_raw("endpoints")):
            labels = meta_of(obj).get("labels") or {}
            if (
                labels.get(decisions.ENDPOINTS_MANAGED_BY)
                == decisions.ENDPOINTS_CONTROLLER
                and ns_name(obj) not in wanted
            ):
                with contextlib.suppress(ApiError):
                    self.store.delete("endpoints", *ns_name(obj))
