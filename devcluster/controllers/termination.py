"""aws-node-termination-handler's stand-in, and the drills that reach it from outside.

On EKS an EC2 spot interruption notice (two minutes before the instance goes)
and a rebalance recommendation (an earlier, best-effort warning) reach the
cluster through aws-node-termination-handler (NTH). devcluster follows NTH in
IMDS mode with ``taintNode``, ``enableSpotInterruptionDraining`` and
``enableRebalanceMonitoring`` on:

- **spot interruption**: the node is cordoned and tainted
  ``aws-node-termination-handler/spot-itn=spot-itn-<instance>:NoSchedule``, a
  ``SpotInterruption`` Warning Event is recorded (with NTH's annotations that name
  the instance, its type and zone), its pods are deleted with their
  grace period (DaemonSet and mirror pods stay, as ``kubectl drain`` leaves
  them), ``CordonAndDrain`` is recorded, and ``spot_notice_s`` simulated seconds
  later (and not before the drained pods ended, within their grace periods,
  which run in real seconds) the instance is terminated (its ASG keeps the
  desired capacity and may replace it) and the node and anything left on it
  are gone;
- **rebalance recommendation**: the node is cordoned and tainted
  ``aws-node-termination-handler/rebalance-recommendation=rebalance-<instance>:NoSchedule``
  and a ``RebalanceRecommendation`` Event is recorded; nothing is drained (NTH
  drains on a recommendation only with ``enableRebalanceDraining``).

devcluster has no instance metadata to poll, so a notice is delivered either
in-process (:meth:`TerminationHandler.interrupt_spot`,
:meth:`TerminationHandler.recommend_rebalance`) or from outside its process, the
way tests, benchmarks and an operator's drill on the demo do it: the annotation
:data:`DRILL_ANNOTATION` on a node, ``spot-interruption`` or
``rebalance-recommendation`` (``kubectl annotate node NODE
devcluster.wbspawner.io/drill=spot-interruption``, or ``python -m
devcluster.drill``). The handler takes the annotation off and acts on it; an
unknown value is taken off with a ``DrillRefused`` Warning Event that names the
known ones. On EKS itself the same drill is AWS Fault Injection Service's
``aws:ec2:send-spot-instance-interruptions`` action.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from botocore.exceptions import ClientError

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.autoscaler.decisions import blocks_scale_down
from devcluster.controllers.loops import NTH, SPOT_ITN_TAINT, Loop, emit, ns_name
from devcluster.controllers.nodes import instance_id_of
from devcluster.controllers.predicates import (
    UNSCHEDULABLE_TAINT,
    is_terminating,
    meta_of,
)
from devcluster.errors import ApiError
from devcluster.timestamps import now_iso

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DRILL_ANNOTATION = "devcluster.wbspawner.io/drill"
"""A node annotation that delivers a notice to the node (its values: :data:`DRILLS`)."""
SPOT_INTERRUPTION = "spot-interruption"
REBALANCE_RECOMMENDATION = "rebalance-recommendation"
DRILLS = (SPOT_INTERRUPTION, REBALANCE_RECOMMENDATION)
"""The notices a drill can deliver."""
REBALANCE_TAINT = "aws-node-termination-handler/rebalance-recommendation"


def event_annotations(
    node: Obj, instance_id: str | None, region: str
) -> dict[str, str]:
    """Return the annotations NTH puts on its Events: the instance, from IMDS.

    NTH's defaults (``instance-id``, ``instance-type``, ``availability-zone``,
    ``region``, ``local-hostname``); devcluster reads them from the node's labels,
    where NTH reads the instance metadata. The Event outlives the node, and
    says what was reclaimed where.
    """
    labels = meta_of(node).get("labels") or {}
    found = {
        "instance-id": instance_id or "",
        "instance-type": str(labels.get("node.kubernetes.io/instance-type") or ""),
        "availability-zone": str(labels.get("topology.kubernetes.io/zone") or ""),
        "region": region,
        "local-hostname": str(meta_of(node).get("name") or ""),
    }
    return {k: v for k, v in found.items() if v}


class TerminationHandler(Loop):
    """NTH's stand-in: delivers notices, drains and lets interrupted nodes go.

    Args:
        store: the object store.
        config: cluster settings (``spot_notice_s``).
        terminate: terminates an instance in its ASG without lowering the
            desired capacity (a worker thread's boto3 call).
        remove_node: deletes a node object and force-deletes its pods.
        interrupting: the autoscaler's set of nodes under a notice, which it
            neither counts as capacity nor scales down.
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        terminate: Callable[[str], None],
        remove_node: Callable[[str], Coroutine[Any, Any, None]],
        interrupting: set[str],
    ) -> None:
        super().__init__(store, config, frozenset({"nodes"}), period_s=10.0)
        self.terminate = terminate
        self.remove_node = remove_node
        self.interrupting = interrupting
        self._tasks: set[asyncio.Task[None]] = set()

    async def run_pass(self) -> None:
        """Act on the drill annotations of every node."""
        for node in list(self.store.items_raw("nodes")):
            drill = (meta_of(node).get("annotations") or {}).get(DRILL_ANNOTATION)
            if drill is None:
                continue
            name = str(meta_of(node).get("name", ""))
            try:
                node = self.store.patch(
                    "nodes",
                    None,
                    name,
                    {"metadata": {"annotations": {DRILL_ANNOTATION: None}}},
                )
            except ApiError as err:  # the node went meanwhile
                log.info("drill %s on node %s dropped: %s", drill, name, err.message)
                continue
            if drill == SPOT_INTERRUPTION:
                await self.interrupt_spot(name)
            elif drill == REBALANCE_RECOMMENDATION:
                self.recommend_rebalance(name)
            else:
                emit(
                    self.store,
                    node,
                    "DrillRefused",
                    f"{DRILL_ANNOTATION}={drill!r} is not a drill devcluster knows; "
                    f"use one of: {', '.join(DRILLS)}",
                    type_="Warning",
                    source=NTH,
                )

    async def stop(self) -> None:
        """Stop the loop and every pending termination."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()

    def _taint(self, node_name: str, key: str, value: str) -> Obj:
        """Cordon a node and add NTH's taint ``key=value:NoSchedule`` (once)."""
        node = self.store.get("nodes", None, node_name)
        stamp = now_iso()
        taints = [
            t
            for t in (node.get("spec") or {}).get("taints") or []
            if t.get("key") not in (UNSCHEDULABLE_TAINT, key)
        ]
        taints += [
            {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": stamp},
            {"key": key, "value": value, "effect": "NoSchedule", "timeAdded": stamp},
        ]
        return self.store.patch(
            "nodes",
            None,
            node_name,
            {"spec": {"unschedulable": True, "taints": taints}},
        )

    def recommend_rebalance(self, node_name: str) -> None:
        """Deliver a rebalance recommendation: cordon and taint, no drain."""
        instance_id = instance_id_of(self.store.get("nodes", None, node_name))
        node = self._taint(
            node_name, REBALANCE_TAINT, f"rebalance-{instance_id or node_name}"
        )
        emit(
            self.store,
            node,
            "RebalanceRecommendation",
            f"Rebalance recommendation for instance {instance_id} was received at "
            f"{now_iso()}",
            type_="Warning",
            source=NTH,
        )

    async def interrupt_spot(self, node_name: str) -> asyncio.Task[None]:
        """Deliver a spot interruption notice; return the task that ends with the node.

        The node is cordoned and tainted at once and its pods are drained
        (deleted with their grace period); ``spot_notice_s`` later the instance
        is terminated and the node and any pods left on it are gone.
        """
        instance_id = instance_id_of(self.store.get("nodes", None, node_name))
        stamp = now_iso()
        node = self._taint(
            node_name, SPOT_ITN_TAINT, f"spot-itn-{instance_id or node_name}"
        )
        self.interrupting.add(node_name)
        emit(
            self.store,
            node,
            "SpotInterruption",
            f"Spot Interruption notice for instance {instance_id} was sent at {stamp}",
            type_="Warning",
            source=NTH,
            annotations=event_annotations(node, instance_id, self.config.region),
        )
        drained: dict[tuple[str, str], float] = {}
        for pod in list(self.store.items_raw("pods")):
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            if blocks_scale_down(pod, 0, -(2**31)) and not is_terminating(pod):
                grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
                drained[ns_name(pod)] = float(30 if grace is None else grace)
                with contextlib.suppress(ApiError):
                    self.store.delete("pods", *ns_name(pod))
        emit(
            self.store,
            node,
            "CordonAndDrain",
            "Node successfully cordoned and drained",
            source=NTH,
        )
        task = asyncio.create_task(self._gone(node_name, instance_id, drained))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _gone(
        self,
        node_name: str,
        instance_id: str | None,
        drained: dict[tuple[str, str], float],
    ) -> None:
        await asyncio.sleep(self.config.real(self.config.spot_notice_s))
        # On AWS the notice (120 s) outlasts a drained pod's grace period (30 s
        # by default), so pods end on their own before the instance goes. The
        # kubelet runs grace periods in real seconds, the notice is simulated
        # time: the instance waits for the drained pods (at most their grace
        # periods) to keep that order when time runs faster.
        deadline = time.monotonic() + max(drained.values(), default=0.0) + 5.0
        while time.monotonic() < deadline and any(
            self.store.exists("pods", *key) for key in drained
        ):
            await asyncio.sleep(0.1)
        if instance_id is not None:
            try:
                await asyncio.to_thread(self.terminate, instance_id)
            except ClientError as err:
                log.warning("terminating interrupted instance %s: %s", instance_id, err)
        await self.remove_node(node_name)
        self.interrupting.discard(node_name)
        log.info("spot node %s (%s) is gone", node_name, instance_id)
