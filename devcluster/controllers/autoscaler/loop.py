"""The autoscaler loop: Cluster Autoscaler acting on moto ASGs and the store.

This module owns the CA loop around the decisions of
:mod:`devcluster.controllers.autoscaler.decisions`: booted instances join as Ready nodes
after ``node_boot_s`` (built by :mod:`devcluster.controllers.nodes`), nodes whose
instance is gone are removed, one scale-up per loop (``TriggeredScaleUp`` /
``NotTriggerScaleUp`` events on pods), removal of nodes unneeded for
``scale_down_unneeded_s``, and spot capacity that cannot be had: the group's unfulfilled
instances are dropped ("Instance group … cannot provision any more nodes!") and the
group is backed off, so the expander falls back to the next group. AWS that cannot be
read (or lost its state, as moto after a restart) is one warning, not a traceback per
pass: the pass changes nothing and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.autoscaler import decisions as ca
from devcluster.controllers.autoscaler.asg import AsgActuator, NodeGroup, with_desired
from devcluster.controllers.loops import AUTOSCALER, Loop, Obj, emit
from devcluster.controllers.nodes import (
    build_node,
    group_of,
    instance_id_of,
    node_name_for,
)
from devcluster.controllers.predicates import meta_of
from devcluster.controllers.scheduler.decisions import Snapshot
from devcluster.controllers.scheduler.loop import snapshot_of
from devcluster.errors import ApiError
from wbspawner.model import Catalog, InstanceType, SizingSettings

log = logging.getLogger(__name__)


class AutoscalerLoop(Loop):
    """Cluster Autoscaler over moto ASGs: joins instances as nodes, scales up and down.

    Args:
        store: the object store.
        config: cluster settings.
        actuator: the ASG adapter.
        catalog: instance types (others are looked up in moto).
        sizing: node overheads for capacity/allocatable.
        remove_node: removes a node object and its pods.
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        actuator: AsgActuator,
        catalog: Catalog,
        sizing: SizingSettings,
        remove_node: Callable[[str], Awaitable[None]],
    ) -> None:
        super().__init__(store, config, frozenset(), period_s=config.scan_interval_s)
        self.actuator = actuator
        self.sizing = sizing
        self.remove_node = remove_node
        self.groups: list[NodeGroup] = []
        self.unneeded: dict[str, float] = {}
        self.backoff: dict[str, float] = {}
        self.joining: dict[str, asyncio.Task[None]] = {}
        self.stuck: set[str] = set()
        self.spot_unavailable: set[tuple[str, str]] = set()
        self.interrupting: set[str] = set()
        self.last_scale_up: dict[str, Any] | None = None
        self.failures: list[str] = []
        self._types: dict[str, InstanceType] = dict(catalog.types)
        self._priorities: tuple[str, list[Any]] = ("", [])
        self._problem: str | None = None

    async def stop(self) -> None:
        """Stop the loop and the pending node joins."""
        await super().stop()
        for task in list(self.joining.values()):
            task.cancel()
        await asyncio.gather(*self.joining.values(), return_exceptions=True)

    async def run_pass(self) -> None:
        """One CA loop: instances → nodes, scale-up, scale-down.

        A pass that cannot list the groups (AWS unreachable or refusing) changes
        nothing, says why in one line, and the next pass tries again.
        """
        try:
            self.groups = await asyncio.to_thread(self.actuator.groups)
        except (ClientError, BotoCoreError) as err:
            self._aws_problem(f"cannot list the node groups: {err}")
            return
        self._aws_problem(None)
        now = time.monotonic()
        nodes = self.store.items_raw("nodes")
        by_instance = {instance_id_of(n): n for n in nodes}
        live = {i for g in self.groups for i in g.instances}
        for group in self.groups:
            await self._launches(
                group, [i for i in group.instances if i not in by_instance], now
            )
        for node in nodes:
            name = str(meta_of(node).get("name"))
            if (
                group_of(node)
                and instance_id_of(node) not in live
                and name not in self.interrupting
            ):
                log.info("instance of node %s is gone; removing the node", name)
                await self.remove_node(name)
        snap = snapshot_of(self.store)
        await self._scale_up(snap, now)
        await self._scale_down(snap, now)

    def _aws_problem(self, problem: str | None) -> None:
        """Log once that AWS cannot be read, and once that it can again."""
        if problem == self._problem:
            return
        if problem is not None:
            log.warning("%s; trying again every pass", problem)
        else:
            log.info("the node groups can be listed again")
        self._problem = problem

    def _unavailable(self, group: NodeGroup) -> bool:
        return (
            group.capacity_type == "spot"
            and (group.instance_type, group.zone) in self.spot_unavailable
        )

    async def _launches(
        self, group: NodeGroup, unjoined: list[str], now: float
    ) -> None:
        if self._unavailable(group):
            fresh = [
                i for i in unjoined if i not in self.stuck and i not in self.joining
            ]
            if fresh:
                await self._unfulfillable(group, fresh, now)
            return
        self.stuck -= set(unjoined)
        for instance_id in unjoined:
            if instance_id not in self.joining:
                self.joining[instance_id] = asyncio.create_task(
                    self._join(group, instance_id)
                )

    async def _unfulfillable(
        self, group: NodeGroup, instance_ids: list[str], now: float
    ) -> None:
        """Spot capacity is short: drop the unfulfilled instances, back off."""
        log.warning("Instance group %s cannot provision any more nodes!", group.name)
        self.failures = [
            *self.failures[-19:],
            f"{group.name}: cannot provision any more nodes",
        ]
        self.backoff[group.name] = now + self.config.real(
            self.config.scale_up_backoff_s
        )
        desired = group.desired
        for instance_id in instance_ids:
            self.stuck.add(instance_id)
            if desired <= group.min_size:
                continue
            try:
                await asyncio.to_thread(
                    self.actuator.terminate,
                    with_desired(group, desired),
                    instance_id,
                    True,
                )
                desired -= 1
            except ClientError as err:
                log.warning(
                    "dropping %s from %s failed: %s", instance_id, group.name, err
                )

    async def _itype(self, name: str) -> InstanceType:
        if name not in self._types:
            self._types[name] = await asyncio.to_thread(
                self.actuator.instance_type, name
            )
        return self._types[name]

    async def _join(self, group: NodeGroup, instance_id: str) -> None:
        """Boot delay, then register the instance as a Ready node."""
        try:
            await asyncio.sleep(self.config.real(self.config.node_boot_s))
            if self._unavailable(group):
                return
            instance = (
                await asyncio.to_thread(self.actuator.instances, [instance_id])
            ).get(instance_id)
            state = (instance or {}).get("State") or {}
            if state.get("Name") not in ("pending", "running"):
                log.info(
                    "instance %s of %s is gone before it joined (%s)",
                    instance_id,
                    group.name,
                    state.get("Name") or "unknown to EC2",
                )
                return
            type_name = str(instance.get("InstanceType") or "")
            itype = await self._itype(
                type_name if type_name in self._types else group.instance_type
            )
            node = build_node(
                name=node_name_for(instance),
                itype=itype,
                zone=group.zone,
                region=self.config.region,
                capacity_type=group.capacity_type,
                labels=group.labels,
                taints=group.taints,
                sizing=self.sizing,
                instance=instance,
                group=group.name,
            )
            try:
                self.store.create("nodes", None, node)
            except ApiError as err:
                if err.code != 409:
                    raise
                node["metadata"]["name"] = node["metadata"]["labels"][
                    "kubernetes.io/hostname"
                ] = instance_id
                self.store.create("nodes", None, node)
            log.info(
                "node %s joined from %s (%s)",
                node["metadata"]["name"],
                group.name,
                instance_id,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("joining instance %s of %s failed", instance_id, group.name)
        finally:
            self.joining.pop(instance_id, None)

    async def _template(self, group: NodeGroup) -> Obj | None:
        try:
            itype = await self._itype(group.instance_type)
        except (ClientError, KeyError, IndexError):
            log.warning(
                "group %s: unknown instance type %r", group.name, group.instance_type
            )
            return None
        return build_node(
            name=ca.template_name(group),
            itype=itype,
            zone=group.zone,
            region=self.config.region,
            capacity_type=group.capacity_type,
            labels=group.labels,
            taints=group.taints,
            sizing=self.sizing,
            resource_overrides=group.resources,
        )

    def _load_priorities(self) -> list[Any]:
        try:
            cm = self.store.get("configmaps", "kube-system", ca.PRIORITY_CONFIGMAP)
        except ApiError:
            return []
        text = str((cm.get("data") or {}).get("priorities") or "")
        if text != self._priorities[0]:
            try:
                self._priorities = (text, ca.parse_priorities(text))
            except ValueError as err:
                log.warning("priority expander: %s", err)
                self._priorities = (text, [])
        return self._priorities[1]

    async def _scale_up(self, snap: Snapshot, now: float) -> None:
        pending = ca.scale_up_candidates(
            self.store.items_raw("pods"), snap, self.config.expendable_priority_cutoff
        )
        if not pending:
            return
        templates: dict[str, Obj] = {}
        for group in self.groups:
            template = await self._template(group)
            if template is not None:
                templates[group.name] = template
        usable = [g for g in self.groups if g.name in templates]
        registered = Counter(group_of(n) for n in self.store.items_raw("nodes"))
        backed_off = {name for name, until in self.backoff.items() if until > now}
        plan = ca.plan_scale_up(
            pending,
            usable,
            templates,
            snap,
            registered,  # type: ignore[arg-type]
            expander=self.config.expander,
            priorities=self._load_priorities(),
            backed_off=backed_off,
        )
        by_key = {ca.pod_key(p): p for p in pending}
        for key, message in plan.not_triggered.items():
            self.warn_once(
                by_key[key], "NotTriggerScaleUp", message, AUTOSCALER, type_="Normal"
            )
        if plan.option is None:
            return
        group, new = plan.option.group, plan.option.group.desired + plan.option.count
        try:
            await asyncio.to_thread(self.actuator.set_desired, group, new)
        except ClientError as err:
            log.warning("scale-up of %s failed: %s", group.name, err)
            self.backoff[group.name] = now + self.config.real(
                self.config.scale_up_backoff_s
            )
            return
        log.info("Scale-up: setting group %s size to %d", group.name, new)
        message = ca.scale_up_message(plan.option)
        for pod in plan.option.pods:
            emit(self.store, pod, "TriggeredScaleUp", message, source=AUTOSCALER)
        self.last_scale_up = {
            "group": group.name,
            "from": group.desired,
            "to": new,
            "time": time.time(),
            "pods": [ca.pod_key(p) for p in plan.option.pods],
            "reason": message,
        }

    async def _scale_down(self, snap: Snapshot, now: float) -> None:
        groups = {g.name: g for g in self.groups}
        nodes = [
            n
            for n in self.store.items_raw("nodes")
            if meta_of(n).get("name") not in self.interrupting
        ]
        plan = ca.plan_scale_down(
            nodes,
            groups,
            group_of,
            snap,
            cutoff=self.config.expendable_priority_cutoff,
            unneeded_since=self.unneeded,
            now=now,
            unneeded_s=self.config.real(self.config.scale_down_unneeded_s),
        )
        self.unneeded = dict(plan.unneeded)
        for node_name, group_name in plan.remove:
            await self._remove(node_name, groups, group_name)

    async def _remove(
        self, node_name: str, groups: dict[str, NodeGroup], group_name: str
    ) -> None:
        try:
            node = self.store.get("nodes", None, node_name)
        except ApiError:
            return
        instance_id, group = instance_id_of(node), groups[group_name]
        taint = {
            "key": ca.TO_BE_DELETED_TAINT,
            "value": str(int(time.time())),
            "effect": "NoSchedule",
        }
        taints = [*((node.get("spec") or {}).get("taints") or []), taint]
        self.store.patch("nodes", None, node_name, {"spec": {"taints": taints}})
        try:
            if instance_id is not None:
                await asyncio.to_thread(
                    self.actuator.terminate, group, instance_id, True
                )
        except ClientError as err:
            log.warning("scale-down of %s failed: %s", node_name, err)
            with contextlib.suppress(ApiError):
                self.store.patch(
                    "nodes", None, node_name, {"spec": {"taints": taints[:-1]}}
                )
            return
        groups[group_name] = with_desired(group, group.desired - 1)
        self.unneeded.pop(node_name, None)
        log.info("Scale-down: removing empty node %s of %s", node_name, group_name)
        emit(
            self.store,
            node,
            "ScaleDown",
            "node removed by cluster autoscaler",
            source=AUTOSCALER,
        )
        await self.remove_node(node_name)

    def status(self) -> dict[str, Any]:
        """Groups, sizes, registered and unneeded nodes, backoffs, last scale-up."""
        registered = Counter(group_of(n) for n in self.store.items_raw("nodes"))
        now = time.monotonic()
        return {
            "groups": [
                {
                    **g.row(),
                    "registered": registered.get(g.name, 0),
                    "backoff_s": max(0.0, self.backoff.get(g.name, now) - now),
                }
                for g in self.groups
            ],
            "unneeded": sorted(self.unneeded),
            "joining": sorted(self.joining),
            "last_scale_up": self.last_scale_up,
            "failures": list(self.failures),
            "spot_unavailable": sorted(f"{t}@{z}" for t, z in self.spot_unavailable),
        }
