"""The scheduler loop: kube-scheduler's actions on the store.

This module owns acting on the decisions of
:mod:`devcluster.controllers.scheduler.decisions`: binding pods (``Scheduled``
event), PodScheduled=False with the FailedScheduling message and event,
preemption (victims deleted gracefully, ``Preempted`` events,
``status.nominatedNodeName``), and for WaitForFirstConsumer claims the volume
binder's part (selected-node annotation, EBS volume in the node's AZ, PV, binding)
before the pod is bound.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.loops import (
    SCHEDULER,
    Loop,
    Obj,
    emit,
    ns_name,
)
from devcluster.controllers.predicates import is_terminating, meta_of
from devcluster.controllers.scheduler.decisions import Bound, Snapshot, Unschedulable
from devcluster.controllers.volumes.binding import provision_claim
from devcluster.controllers.volumes.ebs import EbsRules
from devcluster.errors import ApiError
from devcluster.timestamps import now_iso

log = logging.getLogger(__name__)


def snapshot_of(store: Store) -> Snapshot:
    """Return a scheduling snapshot of the store (read-only views, no copies)."""
    raw = store.items_raw
    return Snapshot(
        raw("nodes"),
        raw("pods"),
        raw("persistentvolumeclaims"),
        raw("persistentvolumes"),
        raw("storageclasses"),
        raw("priorityclasses"),
    )


class SchedulerLoop(Loop):
    """kube-scheduler plus the WaitForFirstConsumer half of the volume binder."""

    def __init__(self, store: Store, config: ClusterConfig, ebs: EbsRules) -> None:
        kinds = frozenset(
            {
                "pods",
                "nodes",
                "persistentvolumeclaims",
                "persistentvolumes",
                "storageclasses",
            }
        )
        super().__init__(store, config, kinds, period_s=10.0)
        self.ebs = ebs

    @staticmethod
    def wants(pod: Mapping[str, Any]) -> bool:
        """Tell whether this scheduler should place the pod now."""
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and not is_terminating(pod)
            and (spec.get("schedulerName") or SCHEDULER) == SCHEDULER
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
        )

    async def run_pass(self) -> None:
        """Schedule every pending pod, highest priority first."""
        pods = self.store.items_raw("pods")
        pending = [p for p in pods if self.wants(p)]
        self.forget_warnings({str(meta_of(p).get("uid")) for p in pending})
        if not pending:
            return
        snap = snapshot_of(self.store)
        pending.sort(
            key=lambda p: (
                -snap.priority(p),
                str(meta_of(p).get("creationTimestamp", "")),
            )
        )
        for pod in pending:
            decision = snap.schedule(pod)
            if isinstance(decision, Unschedulable):
                self._unschedulable(pod, decision.message)
            elif decision.victims:
                self._preempt(pod, decision, snap)
            elif await self._provision(pod, decision):
                self._bind(pod, decision.node_name, snap)

    def _set_condition(
        self, pod: Mapping[str, Any], message: str, nominated: str | None = None
    ) -> None:
        namespace, name = ns_name(pod)
        status = pod.get("status") or {}
        old = next(
            (
                c
                for c in status.get("conditions") or []
                if c.get("type") == "PodScheduled"
            ),
            None,
        )
        same = (
            old is not None
            and old.get("status") == "False"
            and old.get("message") == message
        )
        if same and (nominated is None or status.get("nominatedNodeName") == nominated):
            return
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": (old or {}).get("lastTransitionTime") or now_iso(),
        }
        conditions = [
            c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
        ] + [cond]
        patch: Obj = {"conditions": conditions}
        if nominated is not None:
            patch["nominatedNodeName"] = nominated
        with contextlib.suppress(ApiError):
            self.store.patch(
                "pods", namespace, name, {"status": patch}, subresource="status"
            )

    def _unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        self._set_condition(pod, message)
        self.warn_once(dict(pod), "FailedScheduling", message, SCHEDULER)

    def _preempt(self, pod: Obj, decision: Bound, snap: Snapshot) -> None:
        uid = meta_of(pod).get("uid", "")
        for victim in decision.victims:
            if is_terminating(victim):
                continue
            namespace, name = ns_name(victim)
            log.info(
                "preempting %s/%s on %s for %s/%s",
                namespace,
                name,
                decision.node_name,
                *ns_name(pod),
            )
            with contextlib.suppress(ApiError):
                self.store.delete("pods", namespace, name)
                emit(
                    self.store,
                    victim,
                    "Preempted",
                    f"Preempted by pod {uid} on node {decision.node_name}",
                    source=SCHEDULER,
                )
        self._set_condition(pod, decision.message, nominated=decision.node_name)
        self.warn_once(pod, "FailedScheduling", decision.message, SCHEDULER)
        snap.nominate(pod, decision.node_name)

    async def _provision(self, pod: Mapping[str, Any], decision: Bound) -> bool:
        """Provision the pod's WaitForFirstConsumer claims in the chosen node's zone."""
        for binding in decision.volume_bindings:
            try:
                pvc = self.store.get(
                    "persistentvolumeclaims", binding.namespace, binding.claim
                )
                sc = self.store.get("storageclasses", None, binding.storage_class)
            except ApiError:
                return False
            if (pvc.get("spec") or {}).get("volumeName"):
                continue
            zone = binding.zone or self.config.zones[0]
            annotations = {
                "volume.kubernetes.io/selected-node": binding.node_name,
                "volume.kubernetes.io/storage-provisioner": sc.get("provisioner", ""),
            }
            pvc = self.store.patch(
                "persistentvolumeclaims",
                binding.namespace,
                binding.claim,
                {"metadata": {"annotations": annotations}},
            )
            if not await provision_claim(self.store, self.ebs, pvc, sc, zone):
                return False
        return True

    def _bind(self, pod: Obj, node_name: str, snap: Snapshot) -> None:
        namespace, name = ns_name(pod)
        try:
            bound = self.store.bind(namespace, name, node_name)
        except ApiError as err:
            log.info(
                "binding %s/%s to %s failed: %s",
                namespace,
                name,
                node_name,
                err.message,
            )
            return
        if (bound.get("status") or {}).get("nominatedNodeName"):
            with contextlib.suppress(ApiError):
                self.store.patch(
                    "pods",
                    namespace,
                    name,
                    {"status": {"nominatedNodeName": None}},
                    subresource="status",
                )
        emit(
            self.store,
            bound,
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {node_name}",
            source=SCHEDULER,
        )
        snap.assume(pod, node_name)
