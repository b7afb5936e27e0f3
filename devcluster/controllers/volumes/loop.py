"""The volume loop: the PV controller and the attach/detach controller.

This module owns claim/volume lifecycle outside scheduling: binding claims that name a
volume (``spec.volumeName``) or that a PV is pre-bound to, Released and reclaim
(``Delete`` deletes the EBS volume in moto), provisioning of Immediate claims, the
``WaitForFirstConsumer`` event; and attaching a pod's EBS volumes to its node's instance
through :class:`devcluster.controllers.volumes.ebs.EbsRules` (same AZ, one attachment at
a time), publishing them in the node's ``status.volumesAttached`` (a kubelet starts the
pod's containers once every EBS volume of the pod is listed there), detaching when no
pod on the node uses them any more, and ``FailedAttachVolume`` / ``Multi-Attach error``
events otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.loops import (
    ATTACHER,
    PROVISIONER,
    PV_CONTROLLER,
    Loop,
    Obj,
    emit,
    ns_name,
)
from devcluster.controllers.nodes import instance_id_of
from devcluster.controllers.predicates import (
    ZONE_LABEL,
    is_terminal,
    is_terminating,
    meta_of,
)
from devcluster.controllers.volumes.binding import bind_claim, provision_claim
from devcluster.controllers.volumes.ebs import (
    EbsRules,
    attach_for_pod,
    attachment_name,
    volume_id_of,
)
from devcluster.errors import ApiError

log = logging.getLogger(__name__)


class VolumeLoop(Loop):
    """The PV controller (binding, release, reclaim, Immediate) and attach/detach."""

    def __init__(self, store: Store, config: ClusterConfig, ebs: EbsRules) -> None:
        kinds = frozenset(
            {"pods", "nodes", "persistentvolumeclaims", "persistentvolumes"}
        )
        super().__init__(store, config, kinds, period_s=10.0)
        self.ebs = ebs
        self.attached: dict[str, tuple[str, str | None]] = {}
        """EBS volume id → (node name, instance id) it is attached to."""
        self._told_to_wait: set[str] = set()

    async def run_pass(self) -> None:
        """Bind claims, reclaim released volumes, then attach and detach."""
        await self._claims()
        await self._volumes()
        await self._attachments()

    async def _claims(self) -> None:
        pvs = {
            str(meta_of(v).get("name")): v
            for v in self.store.items_raw("persistentvolumes")
        }
        classes = {
            str(meta_of(s).get("name")): s
            for s in self.store.items_raw("storageclasses")
        }
        for pvc in self.store.items_raw("persistentvolumeclaims"):
            if (pvc.get("status") or {}).get("phase") == "Bound" or is_terminating(pvc):
                continue
            namespace, name = ns_name(pvc)
            volume_name = (pvc.get("spec") or {}).get("volumeName")
            if volume_name:
                pv = pvs.get(str(volume_name))
                if pv is not None and _claims_match(pv, pvc):
                    self._bind(pvc, pv)
                elif pv is not None:
                    self.warn_once(
                        pvc,
                        "FailedBinding",
                        f'volume "{volume_name}" already bound to a different claim.',
                        PV_CONTROLLER,
                    )
                continue
            prebound = next(
                (v for v in pvs.values() if _claims_match(v, pvc, required=True)), None
            )
            if prebound is not None:
                self._bind(pvc, prebound)
                continue
            sc = classes.get(str((pvc.get("spec") or {}).get("storageClassName") or ""))
            if sc is None:
                continue
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                uid = str(meta_of(pvc).get("uid"))
                if uid not in self._told_to_wait:
                    self._told_to_wait.add(uid)
                    emit(
                        self.store,
                        pvc,
                        "WaitForFirstConsumer",
                        "waiting for first consumer to be created before binding",
                        source=PV_CONTROLLER,
                    )
                continue
            await provision_claim(
                self.store,
                self.ebs,
                dict(pvc),
                sc,
                _allowed_zone(sc) or self.config.zones[0],
            )
            log.info("provisioned Immediate claim %s/%s", namespace, name)

    def _bind(self, pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> None:
        try:
            bind_claim(self.store, pvc, pv)
        except ApiError as err:
            log.info(
                "binding %s to %s failed: %s",
                ns_name(pvc),
                meta_of(pv).get("name"),
                err.message,
            )

    async def _volumes(self) -> None:
        claims = {ns_name(c): c for c in self.store.items_raw("persistentvolumeclaims")}
        for pv in self.store.items_raw("persistentvolumes"):
            spec, name = pv.get("spec") or {}, str(meta_of(pv).get("name"))
            phase = (pv.get("status") or {}).get("phase")
            ref = spec.get("claimRef") or {}
            claim = (
                claims.get((str(ref.get("namespace", "")), str(ref.get("name", ""))))
                if ref
                else None
            )
            if not ref.get("uid") or (
                claim is not None and meta_of(claim).get("uid") == ref.get("uid")
            ):
                if (
                    not ref.get("uid")
                    and phase not in ("Available", "Bound")
                    and not is_terminating(pv)
                ):
                    self.store.patch(
                        "persistentvolumes",
                        None,
                        name,
                        {"status": {"phase": "Available"}},
                        subresource="status",
                    )
                continue
            if spec.get("persistentVolumeReclaimPolicy") == "Delete":
                await self._reclaim(pv)
            elif phase != "Released":
                self.store.patch(
                    "persistentvolumes",
                    None,
                    name,
                    {"status": {"phase": "Released"}},
                    subresource="status",
                )

    async def _reclaim(self, pv: Mapping[str, Any]) -> None:
        volume_id = volume_id_of(pv)
        if volume_id in self.attached:
            return
        if volume_id is not None:
            try:
                await asyncio.to_thread(self.ebs.delete_volume, VolumeId=volume_id)
            except ClientError as err:
                if err.response["Error"]["Code"] != "InvalidVolume.NotFound":
                    self.warn_once(
                        dict(pv), "VolumeFailedDelete", str(err), PROVISIONER
                    )
                    return
        with contextlib.suppress(ApiError):
            self.store.delete("persistentvolumes", None, str(meta_of(pv)["name"]))

    def _wanted(self) -> dict[str, tuple[str, Obj, list[Obj], list[Obj]]]:
        """EBS volume id → (node, PV, pods on that node, pods elsewhere) from pods."""
        claims = {ns_name(c): c for c in self.store.items_raw("persistentvolumeclaims")}
        pvs = {
            str(meta_of(v).get("name")): v
            for v in self.store.items_raw("persistentvolumes")
        }
        users: dict[str, tuple[Obj, dict[str, list[Obj]]]] = {}
        for pod in self.store.items_raw("pods"):
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or is_terminal(pod):
                continue
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                claim = claims.get(
                    (
                        ns_name(pod)[0],
                        str(
                            (volume.get("persistentVolumeClaim") or {}).get("claimName")
                        ),
                    )
                )
                pv = pvs.get(str(((claim or {}).get("spec") or {}).get("volumeName")))
                volume_id = volume_id_of(pv) if pv else None
                if pv is not None and volume_id is not None:
                    users.setdefault(volume_id, (pv, {}))[1].setdefault(
                        str(node), []
                    ).append(pod)
        wanted = {}
        for volume_id, (pv, by_node) in users.items():
            current = self.attached.get(volume_id, ("",))[0]
            node = current if current in by_node else sorted(by_node)[0]
            elsewhere = [p for n, pods in by_node.items() if n != node for p in pods]
            wanted[volume_id] = (node, pv, by_node[node], elsewhere)
        return wanted

    async def _attachments(self) -> None:
        wanted = self._wanted()
        nodes = {str(meta_of(n).get("name")): n for n in self.store.items_raw("nodes")}
        for volume_id, (node_name, instance_id) in list(self.attached.items()):
            if wanted.get(volume_id, ("",))[0] != node_name:
                await self._detach(
                    volume_id, node_name, instance_id, node_name in nodes
                )
        for volume_id, (node_name, pv, pods, elsewhere) in wanted.items():
            pv_name = meta_of(pv).get("name")
            for pod in elsewhere:
                self.warn_once(
                    pod,
                    "FailedAttachVolume",
                    f'Multi-Attach error for volume "{pv_name}" Volume is already '
                    "exclusively attached to one node and can't be attached to another",
                    ATTACHER,
                )
            if volume_id not in self.attached and node_name in nodes:
                await self._attach(volume_id, nodes[node_name], pv, pods)

    async def _attach(
        self, volume_id: str, node: Obj, pv: Obj, pods: list[Obj]
    ) -> None:
        node_name, pv_name = str(meta_of(node)["name"]), meta_of(pv).get("name")
        try:
            await asyncio.to_thread(attach_for_pod, self.ebs, pv, node)
        except ClientError as err:
            message = (
                f'AttachVolume.Attach failed for volume "{pv_name}" : rpc error: '
                f'code = Internal desc = Could not attach volume "{volume_id}" to '
                f'node "{instance_id_of(node)}": {err}'
            )
            for pod in pods:
                self.warn_once(pod, "FailedAttachVolume", message, ATTACHER)
            return
        self.attached[volume_id] = (node_name, instance_id_of(node))
        self._publish(node_name)
        for pod in pods:
            emit(
                self.store,
                pod,
                "SuccessfulAttachVolume",
                f'AttachVolume.Attach succeeded for volume "{pv_name}"',
                source=ATTACHER,
            )

    async def _detach(
        self, volume_id: str, node_name: str, instance_id: str | None, node_exists: bool
    ) -> None:
        if instance_id is not None:
            try:
                await asyncio.to_thread(
                    self.ebs.detach_volume, VolumeId=volume_id, InstanceId=instance_id
                )
            except ClientError as err:
                log.info("detach of %s from %s: %s", volume_id, instance_id, err)
        self.attached.pop(volume_id, None)
        if node_exists:
            self._publish(node_name)

    def _publish(self, node_name: str) -> None:
        """Write ``status.volumesAttached``/``volumesInUse`` of a node."""
        names = sorted(
            attachment_name(v) for v, (n, _) in self.attached.items() if n == node_name
        )
        status = {
            "volumesAttached": [{"name": n, "devicePath": ""} for n in names],
            "volumesInUse": names,
        }
        with contextlib.suppress(ApiError):
            self.store.patch(
                "nodes", None, node_name, {"status": status}, subresource="status"
            )


def _claims_match(
    pv: Mapping[str, Any], pvc: Mapping[str, Any], required: bool = False
) -> bool:
    """Tell whether a PV may bind this claim (free, or pre-bound to it)."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if not ref:
        return not required
    if (str(ref.get("namespace", "")), str(ref.get("name", ""))) != ns_name(pvc):
        return False
    return not ref.get("uid") or ref.get("uid") == meta_of(pvc).get("uid")


def _allowed_zone(sc: Mapping[str, Any]) -> str | None:
    for term in sc.get("allowedTopologies") or []:
        for expr in term.get("matchLabelExpressions") or []:
            if expr.get("key") in (
                ZONE_LABEL,
                "topology.ebs.csi.aws.com/zone",
            ) and expr.get("values"):
                return str(expr["values"][0])
    return None
