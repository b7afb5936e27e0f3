"""The two volume binding steps both the scheduler and the PV controller take.

:func:`bind_claim` binds a claim and a volume both ways, as the PV controller
does; :func:`provision_claim` is the EBS CSI provisioner: the volume in moto
(through :class:`~devcluster.controllers.volumes.ebs.EbsRules`), its PV, and the
binding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from devcluster.apiserver.store import Store
from devcluster.controllers.loops import PROVISIONER, PV_CONTROLLER, Obj, emit, ns_name
from devcluster.controllers.predicates import meta_of
from devcluster.controllers.volumes.ebs import DRIVER, EbsRules, provision
from devcluster.errors import ApiError

log = logging.getLogger(__name__)


def bind_claim(store: Store, pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> None:
    """Bind a claim and a volume both ways, as the PV controller does."""
    namespace, name = ns_name(pvc)
    pv_name = str(meta_of(pv)["name"])
    claim_ref = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": namespace,
        "name": name,
        "uid": meta_of(pvc).get("uid", ""),
    }
    store.patch("persistentvolumes", None, pv_name, {"spec": {"claimRef": claim_ref}})
    store.patch(
        "persistentvolumes",
        None,
        pv_name,
        {"status": {"phase": "Bound"}},
        subresource="status",
    )
    annotations = {
        "pv.kubernetes.io/bind-completed": "yes",
        "pv.kubernetes.io/bound-by-controller": "yes",
    }
    store.patch(
        "persistentvolumeclaims",
        namespace,
        name,
        {"metadata": {"annotations": annotations}, "spec": {"volumeName": pv_name}},
    )
    pv_spec = pv.get("spec") or {}
    status = {
        "phase": "Bound",
        "capacity": dict(pv_spec.get("capacity") or {}),
        "accessModes": list(pv_spec.get("accessModes") or []),
    }
    store.patch(
        "persistentvolumeclaims",
        namespace,
        name,
        {"status": status},
        subresource="status",
    )


async def provision_claim(
    store: Store, ebs: EbsRules, pvc: Obj, sc: Mapping[str, Any], zone: str
) -> bool:
    """Create the EBS volume and PV for a claim and bind them (the CSI provisioner)."""
    namespace, name = ns_name(pvc)
    sc_name = meta_of(sc).get("name")
    if sc.get("provisioner") != DRIVER:
        message = (
            f'storageclass "{sc_name}": provisioner "{sc.get("provisioner")}" '
            "is not available in devcluster"
        )
        emit(store, pvc, "ProvisioningFailed", message, PV_CONTROLLER, "Warning")
        return False
    message = (
        f'External provisioner is provisioning volume for claim "{namespace}/{name}"'
    )
    emit(store, pvc, "Provisioning", message, PROVISIONER)
    try:
        pv = await asyncio.to_thread(provision, ebs, pvc, sc, zone)
    except ClientError as err:
        message = (
            f'failed to provision volume with StorageClass "{sc_name}": rpc error: '
            f"code = Internal desc = Could not create volume: {err}"
        )
        emit(store, pvc, "ProvisioningFailed", message, PROVISIONER, "Warning")
        return False
    pv_name = meta_of(pv)["name"]
    try:
        store.create("persistentvolumes", None, pv)
        bind_claim(store, pvc, pv)
    except ApiError as err:
        log.warning(
            "binding %s/%s to %s failed: %s", namespace, name, pv_name, err.message
        )
        return False
    message = f"Successfully provisioned volume {pv_name}"
    emit(store, pvc, "ProvisioningSucceeded", message, PROVISIONER)
    return True
