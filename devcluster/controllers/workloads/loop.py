"""The Deployment and ReplicaSet controllers acting on the store.

``ReplicaSetLoop`` keeps each ReplicaSet's pods at its ``replicas`` (adopting
matching orphans, releasing pods that no longer match, creating pods from the
template and deleting the ones ranked first) and reports its status.
``DeploymentLoop`` keeps one ReplicaSet per template, rolls a template change
out by the strategy, prunes old ReplicaSets past ``revisionHistoryLimit`` and
reports the Deployment's status and conditions. The decisions are in
:mod:`devcluster.controllers.workloads.replicasets` and
:mod:`devcluster.controllers.workloads.rollouts`; Events come from
``replicaset-controller`` and ``deployment-controller`` with the real
controllers' reasons (``SuccessfulCreate``, ``SuccessfulDelete``,
``FailedCreate``, ``ScalingReplicaSet``). Deleting a Deployment or ReplicaSet
takes its dependents with it through the store's garbage collection
(``ownerReferences``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.loops import Loop, Obj, emit, ns_name
from devcluster.controllers.predicates import meta_of
from devcluster.controllers.workloads import progress, rollouts
from devcluster.controllers.workloads import replicasets as rsd
from devcluster.errors import ApiError

log = logging.getLogger(__name__)

RS_CONTROLLER = "replicaset-controller"
DEPLOYMENT_CONTROLLER = "deployment-controller"
BURST = 500
"""Most pods a ReplicaSet creates or deletes in one pass (the controller's burst)."""


def _by_namespace(objs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for obj in objs:
        grouped[str(meta_of(obj).get("namespace", ""))].append(obj)
    return grouped


def _set_owner(
    store: Store, kind: str, obj: Mapping[str, Any], owner: Mapping[str, Any] | None
) -> None:
    """Adopt ``obj`` for ``owner``, or release it from its controller (None)."""
    refs = [
        r for r in meta_of(obj).get("ownerReferences") or [] if not r.get("controller")
    ]
    if owner is not None:
        refs.append(rsd.owner_reference(owner))
    with contextlib.suppress(ApiError):
        store.patch(
            kind, *ns_name(obj), {"metadata": {"ownerReferences": refs or None}}
        )


def _write_status(store: Store, kind: str, obj: Mapping[str, Any], status: Obj) -> None:
    """Replace an object's status when it changed (zero counts are left out)."""
    if (obj.get("status") or {}) == status:
        return
    with contextlib.suppress(ApiError):
        current = store.get(kind, *ns_name(obj))
        current["status"] = status
        store.replace(kind, *ns_name(obj), current, subresource="status")


class ReplicaSetLoop(Loop):
    """The ReplicaSet controller."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        super().__init__(
            store, config, frozenset({"replicasets", "pods"}), period_s=5.0
        )

    async def run_pass(self) -> None:
        """Sync every ReplicaSet once."""
        rses = list(self.store.items_raw("replicasets"))
        if not rses:
            return
        pods = _by_namespace(self.store.items_raw("pods"))
        now = time.time()
        for rs in rses:
            if meta_of(rs).get("deletionTimestamp"):
                continue
            self._sync(rs, pods.get(str(meta_of(rs).get("namespace")), []), now)

    def _sync(self, rs: Obj, candidates: list[Obj], now: float) -> None:
        owned, adopt, release = rsd.claim(rs, candidates)
        for pod in adopt:
            _set_owner(self.store, "pods", pod, {**rs, "kind": "ReplicaSet"})
        for pod in release:
            _set_owner(self.store, "pods", pod, None)
        owned = [*owned, *adopt]
        active = [p for p in owned if rsd.is_active(p)]
        diff = rsd.scale_diff(rs, len(active))
        if diff > 0:
            self._create(rs, min(diff, BURST))
        elif diff < 0:
            for pod in rsd.deletion_order(active)[: min(-diff, BURST)]:
                self._delete(rs, pod)
        _write_status(
            self.store, "replicasets", rs, rsd.replicaset_status(rs, owned, now)
        )

    def _create(self, rs: Obj, n: int) -> None:
        namespace = str(meta_of(rs).get("namespace"))
        for _ in range(n):
            try:
                pod = self.store.create("pods", namespace, rsd.pod_from_template(rs))
            except ApiError as err:
                self.warn_once(
                    rs, "FailedCreate", f"Error creating: {err.message}", RS_CONTROLLER
                )
                return
            emit(
                self.store,
                rs,
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                RS_CONTROLLER,
            )

    def _delete(self, rs: Obj, pod: Mapping[str, Any]) -> None:
        try:
            self.store.delete("pods", *ns_name(pod))
        except ApiError as err:
            if err.code != 404:
                self.warn_once(
                    rs, "FailedDelete", f"Error deleting: {err.message}", RS_CONTROLLER
                )
            return
        emit(
            self.store,
            rs,
            "SuccessfulDelete",
            f"Deleted pod: {ns_name(pod)[1]}",
            RS_CONTROLLER,
        )


class DeploymentLoop(Loop):
    """The Deployment controller."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        super().__init__(
            store, config, frozenset({"deployments", "replicasets"}), period_s=5.0
        )

    async def run_pass(self) -> None:
        """Sync every Deployment once."""
        deploys = list(self.store.items_raw("deployments"))
        if not deploys:
            return
        rses = _by_namespace(self.store.items_raw("replicasets"))
        for deploy in deploys:
            if meta_of(deploy).get("deletionTimestamp"):
                continue
            self._sync(deploy, rses.get(str(meta_of(deploy).get("namespace")), []))

    def _fresh(self, rses: Sequence[Mapping[str, Any]]) -> list[Obj]:
        found = []
        for rs in rses:
            current = self.store.get_or_none("replicasets", *ns_name(rs))
            if current is not None:
                found.append(current)
        return found

    def _sync(self, deploy: Obj, candidates: list[Obj]) -> None:
        owned, adopt, release = rsd.claim(deploy, candidates)
        for rs in adopt:
            _set_owner(self.store, "replicasets", rs, {**deploy, "kind": "Deployment"})
        for rs in release:
            _set_owner(self.store, "replicasets", rs, None)
        every = self._fresh([*owned, *adopt])
        new = rollouts.find_new(deploy, every)
        olds = [rs for rs in every if rs is not new]
        created = False
        if not (deploy.get("spec") or {}).get("paused"):
            if rollouts.is_rolling(deploy):
                new, created = self._roll(deploy, new, olds)
            else:
                new, created = self._recreate(deploy, new, olds)
        every = self._fresh(every + ([new] if created and new is not None else []))
        new = rollouts.find_new(deploy, every)
        olds = [rs for rs in every if rs is not new]
        for name in rollouts.history_to_delete(deploy, olds):
            with contextlib.suppress(ApiError):
                self.store.delete("replicasets", meta_of(deploy)["namespace"], name)
        if new is not None:
            self._annotate_revision(deploy, new)
        status = progress.deployment_status(deploy, new, olds, time.time(), created)
        _write_status(self.store, "deployments", deploy, status)

    def _annotate_revision(self, deploy: Obj, new: Mapping[str, Any]) -> None:
        """The Deployment carries its new ReplicaSet's revision, as upstream's."""
        revision = str(rollouts.revision_of(new))
        annotations = meta_of(deploy).get("annotations") or {}
        if revision == "0" or annotations.get(rollouts.REVISION) == revision:
            return
        with contextlib.suppress(ApiError):
            self.store.patch(
                "deployments",
                *ns_name(deploy),
                {"metadata": {"annotations": {rollouts.REVISION: revision}}},
            )

    def _roll(
        self, deploy: Obj, new: Obj | None, olds: list[Obj]
    ) -> tuple[Obj | None, bool]:
        created = False
        if new is None:
            new = self._create_new(
                deploy, olds, rollouts.rolling_new_replicas(deploy, None, olds)
            )
            created = new is not None
        else:
            self._bump_revision(new, olds)
            self._scale(deploy, new, rollouts.rolling_new_replicas(deploy, new, olds))
        shrink = rollouts.rolling_old_replicas(deploy, new, olds)
        for rs in olds:
            if meta_of(rs)["name"] in shrink:
                self._scale(deploy, rs, shrink[meta_of(rs)["name"]])
        return new, created

    def _recreate(
        self, deploy: Obj, new: Obj | None, olds: list[Obj]
    ) -> tuple[Obj | None, bool]:
        running = [rs for rs in olds if rollouts.replicas_of(rs) > 0]
        for rs in running:
            self._scale(deploy, rs, 0)
        old_uids = {meta_of(rs).get("uid") for rs in olds}
        namespace = meta_of(deploy).get("namespace")
        for pod in self.store.items_raw("pods"):
            ref = rsd.controller_ref(pod)
            if (
                meta_of(pod).get("namespace") == namespace
                and ref
                and ref.get("uid") in old_uids
            ):
                return new, False  # Recreate: old pods go first, entirely
        if new is None:
            new = self._create_new(deploy, olds, rollouts.replicas_of(deploy))
            return new, new is not None
        self._bump_revision(new, olds)
        self._scale(deploy, new, rollouts.replicas_of(deploy))
        return new, False

    def _create_new(self, deploy: Obj, olds: list[Obj], replicas: int) -> Obj | None:
        revision = max((rollouts.revision_of(rs) for rs in olds), default=0) + 1
        status = deploy.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        template = (deploy.get("spec") or {}).get("template") or {}
        rs = rollouts.new_replicaset(
            deploy, rollouts.template_hash(template, collisions), revision, replicas
        )
        namespace = str(meta_of(deploy)["namespace"])
        try:
            created = self.store.create("replicasets", namespace, rs)
        except ApiError as err:
            if err.code == 409:  # a ReplicaSet of another template has this name
                with contextlib.suppress(ApiError):
                    current = self.store.get("deployments", *ns_name(deploy))
                    current.setdefault("status", {})["collisionCount"] = collisions + 1
                    self.store.replace(
                        "deployments", *ns_name(deploy), current, subresource="status"
                    )
                return None
            self.warn_once(deploy, "FailedCreate", err.message, DEPLOYMENT_CONTROLLER)
            return None
        if replicas:
            self._event_scaled(deploy, created, 0, replicas)
        return created

    def _bump_revision(self, new: Obj, olds: list[Obj]) -> None:
        """Make the new ReplicaSet the newest revision (a rollback to an old one)."""
        highest = max((rollouts.revision_of(rs) for rs in olds), default=0)
        if rollouts.revision_of(new) > highest:
            return
        with contextlib.suppress(ApiError):
            self.store.patch(
                "replicasets",
                *ns_name(new),
                {"metadata": {"annotations": {rollouts.REVISION: str(highest + 1)}}},
            )

    def _scale(self, deploy: Obj, rs: Mapping[str, Any], replicas: int) -> None:
        before = rollouts.replicas_of(rs)
        annotations = {
            rollouts.DESIRED_REPLICAS: str(rollouts.replicas_of(deploy)),
            rollouts.MAX_REPLICAS: str(
                rollouts.replicas_of(deploy) + rollouts.surge_and_unavailable(deploy)[0]
            ),
        }
        current = meta_of(rs).get("annotations") or {}
        if before == replicas and all(
            current.get(k) == v for k, v in annotations.items()
        ):
            return
        try:
            self.store.patch(
                "replicasets",
                *ns_name(rs),
                {
                    "metadata": {"annotations": annotations},
                    "spec": {"replicas": replicas},
                },
            )
        except ApiError as err:
            log.info("scaling %s: %s", ns_name(rs), err.message)
            return
        if before != replicas:
            self._event_scaled(deploy, rs, before, replicas)

    def _event_scaled(
        self, deploy: Obj, rs: Mapping[str, Any], before: int, after: int
    ) -> None:
        direction = "up" if after > before else "down"
        name = meta_of(rs)["name"]
        emit(
            self.store,
            deploy,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {name} to {after} from {before}",
            DEPLOYMENT_CONTROLLER,
        )
