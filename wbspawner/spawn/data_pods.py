"""The pod pieces of data access: identity and shared volumes.

This module owns what a user's access (:class:`~wbspawner.data.access.DataAccess`)
adds to their pods:

- the server (KubeSpawner overrides, :func:`with_data`): the ServiceAccount of
  their S3 grants, annotated with the IAM role that the EKS pod identity webhook
  turns into web identity credentials, and no Kubernetes API token (the webhook
  projects its own token, for STS only); each shared volume with its mount,
  read-only where the profiles say so;
- their Dask scheduler and workers (:func:`dask_pod_pieces`): the same
  ServiceAccount and mounts, as raw pod-spec fragments for the gateway;
- the static PersistentVolume and claim of an EFS share in one namespace
  (:func:`efs_objects`), which ``wbspawner data apply`` creates;
- what the user reads when their ServiceAccount was never made
  (:func:`missing_account`).

A user with no data grants gets nothing from here: their pods stay exactly as
they were. Pure: returns new dicts.
"""

from __future__ import annotations

import copy
from typing import Any

from wbspawner.errors import UserFacingError
from wbspawner.model import LABEL_PREFIX, SharedVolume
from wbspawner.naming import DATA_PREFIX
from wbspawner.profiles.data_access import DataAccess

JsonDict = dict[str, Any]

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
"""The IRSA annotation of a ServiceAccount: the IAM role its pods assume."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "wbspawner"}
DATA_LABEL = f"{LABEL_PREFIX}/data"
"""Label of the objects ``data apply`` owns: ``access`` (ServiceAccounts) or
``volume`` (EFS PersistentVolumes and claims)."""
EFS_DRIVER = "efs.csi.aws.com"
EFS_CAPACITY = "1Ti"
"""Nominal size of an EFS volume (EFS is elastic; Kubernetes needs a number)."""
VOLUME_PREFIX = "data-"


def claim_name(volume: SharedVolume) -> str:
    """Return the claim a pod mounts for a volume (made by apply for EFS)."""
    if volume.kind == "claim" and volume.claim:
        return volume.claim
    return f"{DATA_PREFIX}{volume.name}"


def pod_volume(volume: SharedVolume) -> JsonDict:
    """Return the pod-spec volume of a shared volume (``data-<name>``)."""
    name = f"{VOLUME_PREFIX}{volume.name}"
    if volume.kind == "nfs":
        return {
            "name": name,
            "nfs": {
                "server": volume.server,
                "path": volume.path,
                "readOnly": volume.read_only,
            },
        }
    return {
        "name": name,
        "persistentVolumeClaim": {
            "claimName": claim_name(volume),
            "readOnly": volume.read_only,
        },
    }


def volume_mount(volume: SharedVolume) -> JsonDict:
    """Return the container mount of a shared volume."""
    return {
        "name": f"{VOLUME_PREFIX}{volume.name}",
        "mountPath": volume.mount_path,
        "readOnly": volume.read_only,
    }


def with_data(overrides: dict[str, Any], access: DataAccess) -> dict[str, Any]:
    """Return KubeSpawner overrides with a user's data access added.

    Args:
        overrides: the server's overrides (volumes and mounts are appended to).
        access: the user's access.

    Returns:
        A new dict; equal to ``overrides`` when the access is empty.
    """
    out = copy.deepcopy(overrides)
    if access.service_account:
        out["service_account"] = access.service_account
        out["automount_service_account_token"] = False
    if access.volumes:
        out["volumes"] = [
            *out.get("volumes", []),
            *(pod_volume(v) for v in access.volumes),
        ]
        out["volume_mounts"] = [
            *out.get("volume_mounts", []),
            *(volume_mount(v) for v in access.volumes),
        ]
    return out


def dask_pod_pieces(access: DataAccess) -> tuple[JsonDict, JsonDict]:
    """Return what a user's Dask pods add for their data access.

    Args:
        access: the user's access.

    Returns:
        ``(pod spec fragment, container fragment)``, both empty when the
        access is.
    """
    pod: JsonDict = {}
    container: JsonDict = {}
    if access.service_account:
        pod["serviceAccountName"] = access.service_account
        pod["automountServiceAccountToken"] = False
    if access.volumes:
        pod["volumes"] = [pod_volume(v) for v in access.volumes]
        container["volumeMounts"] = [volume_mount(v) for v in access.volumes]
    return pod, container


def efs_volume_handle(volume: SharedVolume) -> str:
    """Return the EFS CSI volume handle: ``fs-…`` or ``fs-…::fsap-…``."""
    handle = str(volume.file_system_id)
    return f"{handle}::{volume.access_point}" if volume.access_point else handle


def efs_pv_name(volume: SharedVolume, namespace: str) -> str:
    """Return the PersistentVolume of an EFS share in one namespace.

    A PersistentVolume binds one claim, so each namespace gets its own.
    """
    return f"{DATA_PREFIX}{namespace}-{volume.name}"


def efs_objects(volume: SharedVolume, namespace: str) -> tuple[JsonDict, JsonDict]:
    """Return the static PersistentVolume and its claim of an EFS share.

    Args:
        volume: an ``efs`` volume.
        namespace: where the claim goes.

    Returns:
        ``(PersistentVolume, PersistentVolumeClaim)``: ReadWriteMany (each pod's
        mount says whether it writes), no StorageClass, the volume kept when
        the claim goes (``Retain``), the two bound to each other by name.
    """
    pv_name, claim = efs_pv_name(volume, namespace), claim_name(volume)
    labels = {**MANAGED_BY, DATA_LABEL: "volume"}
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "labels": dict(labels)},
        "spec": {
            "capacity": {"storage": EFS_CAPACITY},
            "volumeMode": "Filesystem",
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "csi": {"driver": EFS_DRIVER, "volumeHandle": efs_volume_handle(volume)},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv_name,
            "resources": {"requests": {"storage": EFS_CAPACITY}},
        },
    }
    return pv, pvc


def service_account(name: str, namespace: str, role_arn: str, key: str) -> JsonDict:
    """Return the ServiceAccount of an access set, annotated with its role.

    Args:
        name: the ServiceAccount name.
        namespace: its namespace.
        role_arn: the IAM role's ARN.
        key: the access set's key (a label, to find it again).

    Returns:
        The object; it mounts no API token by default.
    """
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**MANAGED_BY, DATA_LABEL: "access", f"{DATA_LABEL}-key": key},
            "annotations": {ROLE_ARN_ANNOTATION: role_arn},
        },
        "automountServiceAccountToken": False,
    }


def missing_account(error: str, access: DataAccess) -> UserFacingError | None:
    """Return the refusal to show when the pod's ServiceAccount does not exist.

    The API server refuses a pod whose ServiceAccount is missing (``error looking
    up service account <ns>/<name>: serviceaccount "<name>" not found``): the
    data section names grants ``wbspawner data apply`` has not made yet.

    Args:
        error: the text of the error the pod's creation failed with.
        access: the user's data access.

    Returns:
        The refusal, or ``None`` when the error is about something else.
    """
    account = access.service_account
    said = error.replace('\\"', '"')  # as the API's JSON body quotes it
    if not account or f'serviceaccount "{account}" not found' not in said:
        return None
    return UserFacingError(
        "Your groups' data access is not set up on the cluster yet, so your server "
        "cannot start with it. Ask an admin to run `wbspawner data apply`.",
        reason="data",
        log_message=f"ServiceAccount {account} is missing: run wbspawner data apply",
        status_code=503,
    )
