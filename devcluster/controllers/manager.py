"""devcluster's control plane: start and stop every loop, and inject faults.

``start_core_controllers(store, config)`` starts the controllers that need no
cloud (Deployments and ReplicaSets, :mod:`devcluster.controllers.workloads.loop`;
EndpointSlices and Endpoints, :mod:`devcluster.controllers.endpoints.loop`;
CustomResourceDefinitions, :mod:`devcluster.controllers.crds`) and
returns :class:`CoreControllers` (``stop()``). ``start_controllers(store, config, aws)``
starts the scheduler (:mod:`devcluster.controllers.scheduler.loop`), the PV and
attach/detach controllers (:mod:`devcluster.controllers.volumes.loop`), Cluster
Autoscaler (:mod:`devcluster.controllers.autoscaler.loop`) and
aws-node-termination-handler's stand-in (:mod:`devcluster.controllers.termination`,
which also takes drills from a node annotation) against one store and one moto
server, and returns
:class:`Controllers`: ``stop()``, ``status()``, ``interrupt_spot(node)``,
``recommend_rebalance(node)``, ``set_spot_capacity(type, zone, available)`` and
``remove_node(name)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.autoscaler.asg import AsgActuator
from devcluster.controllers.autoscaler.loop import AutoscalerLoop
from devcluster.controllers.crds import CrdLoop
from devcluster.controllers.endpoints.loop import EndpointsLoop
from devcluster.controllers.loops import Loop, ns_name
from devcluster.controllers.scheduler.loop import SchedulerLoop
from devcluster.controllers.termination import TerminationHandler
from devcluster.controllers.volumes.ebs import EbsRules
from devcluster.controllers.volumes.loop import VolumeLoop
from devcluster.controllers.workloads.loop import DeploymentLoop, ReplicaSetLoop
from devcluster.errors import ApiError
from wbspawner.model import Catalog, SizingSettings

log = logging.getLogger(__name__)


class CoreControllers:
    """The running controllers that need no cloud: workloads and endpoints.

    Args:
        store: the object store.
        config: cluster settings.
    """

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.deployments = DeploymentLoop(store, config)
        self.replicasets = ReplicaSetLoop(store, config)
        self.endpoints = EndpointsLoop(store, config)
        self.crds = CrdLoop(store, config)
        self.store = store
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def loops(self) -> tuple[Loop, ...]:
        """Every control loop."""
        return (self.deployments, self.replicasets, self.endpoints, self.crds)

    def start(self) -> None:
        """Subscribe the loops to the store and start them."""
        for loop in self.loops:
            self._unsubscribe.append(self.store.subscribe(loop.on_change))
            loop.start()

    async def stop(self) -> None:
        """Stop every loop."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for loop in self.loops:
            await loop.stop()
        self.crds.forget()


def start_core_controllers(store: Store, config: ClusterConfig) -> CoreControllers:
    """Start the workload and endpoints controllers; stop them with ``stop()``."""
    core = CoreControllers(store, config)
    core.start()
    return core


class Controllers:
    """The running control loops of one devcluster, and the fault injection API.

    Args:
        store: the object store.
        config: cluster settings.
        ebs: EC2 client with the EBS rules.
        actuator: the ASG adapter.
        catalog: instance catalogue.
        sizing: node overheads.
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        ebs: EbsRules,
        actuator: AsgActuator,
        catalog: Catalog,
        sizing: SizingSettings,
    ) -> None:
        self.store = store
        self.config = config
        self.ebs = ebs
        self.actuator = actuator
        self.scheduler = SchedulerLoop(store, config, ebs)
        self.volumes = VolumeLoop(store, config, ebs)
        self.autoscaler = AutoscalerLoop(
            store, config, actuator, catalog, sizing, self.remove_node
        )
        self.termination = TerminationHandler(
            store,
            config,
            self._terminate,
            self.remove_node,
            self.autoscaler.interrupting,
        )
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def loops(self) -> tuple[Loop, ...]:
        """Every control loop."""
        return (self.scheduler, self.volumes, self.autoscaler, self.termination)

    def start(self) -> None:
        """Subscribe the loops to the store and start them."""
        for loop in self.loops:
            self._unsubscribe.append(self.store.subscribe(loop.on_change))
            loop.start()

    async def stop(self) -> None:
        """Stop every loop and pending task."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for loop in self.loops:
            await loop.stop()

    def status(self) -> dict[str, Any]:
        """Return the autoscaler status (groups, nodes, last scale-up), attachments."""
        return {**self.autoscaler.status(), "attached": dict(self.volumes.attached)}

    async def remove_node(self, name: str) -> None:
        """Delete a node object and force-delete its pods (the instance is gone)."""
        for pod in list(self.store.items_raw("pods")):
            if (pod.get("spec") or {}).get("nodeName") == name:
                with contextlib.suppress(ApiError):
                    self.store.delete("pods", *ns_name(pod), grace_period_seconds=0)
        with contextlib.suppress(ApiError):
            self.store.delete("nodes", None, name)

    def set_spot_capacity(self, instance_type: str, zone: str, available: bool) -> None:
        """Make spot capacity of one instance type in one AZ (un)available."""
        key = (instance_type, zone)
        if available:
            self.autoscaler.spot_unavailable.discard(key)
        else:
            self.autoscaler.spot_unavailable.add(key)

    async def interrupt_spot(self, node_name: str) -> asyncio.Task[None]:
        """Deliver a spot interruption notice to a node, like AWS + NTH.

        See :class:`devcluster.controllers.termination.TerminationHandler`;
        returns the task that ends when the node is gone.
        """
        return await self.termination.interrupt_spot(node_name)

    def recommend_rebalance(self, node_name: str) -> None:
        """Deliver a rebalance recommendation to a node (cordon and taint, no drain)."""
        self.termination.recommend_rebalance(node_name)

    def _terminate(self, instance_id: str) -> None:
        self.actuator.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
        )


def _clients(aws: Any, region: str) -> tuple[Any, Any]:
    if hasattr(aws, "client"):
        return aws.client("ec2"), aws.client("autoscaling")
    from devcluster.services.moto_server import make_client

    url = str(getattr(aws, "endpoint_url", aws))
    return make_client("ec2", url, region), make_client("autoscaling", url, region)


async def start_controllers(
    store: Store,
    config: ClusterConfig,
    aws: Any,
    *,
    catalog: Catalog | None = None,
    sizing: SizingSettings | None = None,
) -> Controllers:
    """Start the scheduler, volume, attach/detach and autoscaler loops.

    Args:
        store: the object store.
        config: cluster settings (delays, cluster name, expander, cutoff).
        aws: the moto endpoint: a URL, an object with ``endpoint_url``, or one
            with ``client(service)`` (``devcluster.services.moto_server.MotoServer``).
        catalog: instance catalogue (default: wbspawner's packaged one).
        sizing: node overheads (default ``SizingSettings()``).

    Returns:
        The running controllers; call ``await controllers.stop()`` when done.
    """
    if catalog is None:
        from wbspawner.catalog.instances import load_catalog

        catalog = load_catalog()
    ec2, autoscaling = _clients(aws, config.region)
    ebs = EbsRules(ec2, snapshot_s=config.real(config.snapshot_s))
    actuator = AsgActuator(autoscaling, ec2, config.cluster_name)
    controllers = Controllers(
        store, config, ebs, actuator, catalog, sizing or SizingSettings()
    )
    controllers.start()
    return controllers
