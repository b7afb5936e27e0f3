"""The EBS side of the cluster: rules moto lacks, and the EBS CSI driver's work.

``EbsRules`` wraps a boto3 EC2 client (anything it does not override passes
through) and enforces what AWS enforces and moto does not:

* ``create_volume`` in an AZ that does not exist → ``InvalidZone.NotFound``;
  a ``Size`` smaller than the snapshot → ``InvalidParameterValue``;
* ``attach_volume`` only to an instance in the volume's AZ
  (``InvalidVolume.ZoneMismatch``) and only while the volume is not attached
  (``VolumeInUse``); ``detach_volume`` finds the instance itself (moto fails
  without ``InstanceId``);
* snapshots stay ``pending`` for ``snapshot_s`` real seconds
  (``describe_snapshots`` and ``describe_snapshot_state`` show it; moto completes
  at once).

The driver part: :func:`provision` creates the volume for a claim (gp3,
StorageClass parameters, the driver's tags) and :func:`make_pv` the PV that pins
it to its AZ; :func:`attach_for_pod` / :func:`detach_for_pod` attach a PV's
volume to a node's instance. :func:`attachment_name` is the entry a node lists in
``status.volumesAttached`` once attached (what a kubelet waits for).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from devcluster.controllers.nodes import instance_id_of
from devcluster.quantity import gib_ceil

Obj = dict[str, Any]

DRIVER = "ebs.csi.aws.com"
ZONE_LABEL = "topology.kubernetes.io/zone"
IDENTITY = f"devcluster-{DRIVER}"


def _error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class EbsRules:
    """An EC2 client with the EBS rules of real AWS added on top of moto.

    Args:
        ec2: a boto3 EC2 client.
        zones: the region's AZ names; ``None`` asks ``describe_availability_zones``.
        snapshot_s: real seconds a new snapshot stays ``pending``.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        ec2: Any,
        zones: Iterable[str] | None = None,
        snapshot_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ec2 = ec2
        self._zones = set(zones) if zones is not None else None
        self.snapshot_s = snapshot_s
        self._clock = clock
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ec2, name)

    @property
    def client(self) -> Any:
        """The wrapped EC2 client."""
        return self._ec2

    def zones(self) -> set[str]:
        """Return the AZ names volumes may be created in."""
        if self._zones is None:
            found = self._ec2.describe_availability_zones()["AvailabilityZones"]
            self._zones = {z["ZoneName"] for z in found}
        return self._zones

    # ------------------------------------------------------------- volumes
    def create_volume(self, **kwargs: Any) -> Obj:
        """``CreateVolume`` with AZ and snapshot-size checks."""
        zone = kwargs.get("AvailabilityZone")
        if zone is not None and zone not in self.zones():
            raise _error(
                "CreateVolume",
                "InvalidZone.NotFound",
                f"The zone '{zone}' does not exist.",
            )
        snapshot_id = kwargs.get("SnapshotId")
        if snapshot_id and kwargs.get("Size") is not None:
            snapshot = self._ec2.describe_snapshots(SnapshotIds=[snapshot_id])[
                "Snapshots"
            ][0]
            if int(kwargs["Size"]) < int(snapshot["VolumeSize"]):
                raise _error(
                    "CreateVolume",
                    "InvalidParameterValue",
                    f"Volume of size {kwargs['Size']}GB is smaller than snapshot "
                    f"'{snapshot_id}', expect size >= {snapshot['VolumeSize']}GB",
                )
        return dict(self._ec2.create_volume(**kwargs))

    def _volume(self, volume_id: str, operation: str) -> Obj:
        try:
            return dict(self._ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])
        except ClientError as err:
            raise _error(
                operation,
                "InvalidVolume.NotFound",
                f"The volume '{volume_id}' does not exist.",
            ) from err

    def _instance_zone(self, instance_id: str) -> str:
        found = self._ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(found[0]["Instances"][0]["Placement"]["AvailabilityZone"])

    def attach_volume(self, **kwargs: Any) -> Obj:
        """``AttachVolume``, only in the volume's AZ and only when not attached."""
        volume_id, instance_id = kwargs["VolumeId"], kwargs["InstanceId"]
        volume = self._volume(volume_id, "AttachVolume")
        attached = [
            a for a in volume.get("Attachments") or [] if a.get("State") != "detached"
        ]
        if attached:
            raise _error(
                "AttachVolume",
                "VolumeInUse",
                f"{volume_id} is already attached to an instance",
            )
        if self._instance_zone(instance_id) != volume["AvailabilityZone"]:
            raise _error(
                "AttachVolume",
                "InvalidVolume.ZoneMismatch",
                f"The volume '{volume_id}' is not in the same availability zone "
                f"as instance '{instance_id}'",
            )
        return dict(self._ec2.attach_volume(**kwargs))

    def detach_volume(self, **kwargs: Any) -> Obj:
        """``DetachVolume``; takes ``InstanceId`` from the attachment when missing."""
        if "InstanceId" not in kwargs:
            volume = self._volume(kwargs["VolumeId"], "DetachVolume")
            attached = [
                a
                for a in volume.get("Attachments") or []
                if a.get("State") != "detached"
            ]
            if not attached:
                raise _error(
                    "DetachVolume",
                    "IncorrectState",
                    f"Volume '{kwargs['VolumeId']}' is in the 'available' state.",
                )
            kwargs = {**kwargs, "InstanceId": attached[0]["InstanceId"]}
        return dict(self._ec2.detach_volume(**kwargs))

    # ----------------------------------------------------------- snapshots
    def create_snapshot(self, **kwargs: Any) -> Obj:
        """``CreateSnapshot``; the snapshot reads ``pending`` for ``snapshot_s``."""
        result = dict(self._ec2.create_snapshot(**kwargs))
        if self.snapshot_s > 0:
            with self._lock:
                self._pending[result["SnapshotId"]] = self._clock() + self.snapshot_s
            result["State"], result["Progress"] = "pending", "0%"
        return result

    def describe_snapshot_state(self, snapshot_id: str) -> str:
        """Return ``pending`` or moto's state (``completed``) of a snapshot."""
        with self._lock:
            done_at = self._pending.get(snapshot_id)
        if done_at is not None and self._clock() < done_at:
            return "pending"
        return str(
            self._ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
                "State"
            ]
        )

    def describe_snapshots(self, **kwargs: Any) -> Obj:
        """``DescribeSnapshots`` with still-pending snapshots shown as pending."""
        result = dict(self._ec2.describe_snapshots(**kwargs))
        now = self._clock()
        with self._lock:
            pending = {k: v for k, v in self._pending.items() if v > now}
        snapshots = []
        for snap in result.get("Snapshots") or []:
            if snap["SnapshotId"] in pending:
                total = self.snapshot_s or 1.0
                done = max(0.0, 1.0 - (pending[snap["SnapshotId"]] - now) / total)
                snap = {**snap, "State": "pending", "Progress": f"{int(done * 99)}%"}
            snapshots.append(snap)
        result["Snapshots"] = snapshots
        return result


# ------------------------------------------------------------ CSI driver part


def _tag_template(text: str, pvc: Mapping[str, Any], pv_name: str) -> str:
    meta = pvc.get("metadata") or {}
    for key, value in (
        ("{{ .PVCName }}", meta.get("name", "")),
        ("{{ .PVCNamespace }}", meta.get("namespace", "")),
        ("{{ .PVName }}", pv_name),
    ):
        text = text.replace(key, str(value))
    return text


def volume_request(
    pvc: Mapping[str, Any], sc: Mapping[str, Any], zone: str, pv_name: str
) -> Obj:
    """Return the ``CreateVolume`` arguments the EBS CSI driver sends for a claim."""
    meta = pvc.get("metadata") or {}
    params = sc.get("parameters") or {}
    size = gib_ceil(
        ((pvc.get("spec") or {}).get("resources") or {})
        .get("requests", {})
        .get("storage", "1Gi")
    )
    tags = {
        "CSIVolumeName": pv_name,
        "ebs.csi.aws.com/cluster": "true",
        "kubernetes.io/created-for/pvc/name": str(meta.get("name", "")),
        "kubernetes.io/created-for/pvc/namespace": str(meta.get("namespace", "")),
        "kubernetes.io/created-for/pv/name": pv_name,
    }
    for key in sorted(k for k in params if k.lower().startswith("tagspecification_")):
        tag_key, _, tag_value = str(params[key]).partition("=")
        tags[tag_key] = _tag_template(tag_value, pvc, pv_name)
    request: Obj = {
        "AvailabilityZone": zone,
        "Size": size,
        "VolumeType": params.get("type", "gp3"),
        "Encrypted": str(params.get("encrypted", "false")).lower() == "true",
        "TagSpecifications": [
            {
                "ResourceType": "volume",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ],
    }
    for param, arg in (("iops", "Iops"), ("throughput", "Throughput")):
        if params.get(param):
            request[arg] = int(params[param])
    if params.get("kmsKeyId"):
        request["KmsKeyId"] = params["kmsKeyId"]
    return request


def make_pv(
    pvc: Mapping[str, Any],
    sc: Mapping[str, Any],
    volume_id: str,
    zone: str,
    size_gib: int,
) -> Obj:
    """Return the PV the driver's provisioner creates for a claim (bound to it)."""
    meta = pvc.get("metadata") or {}
    spec = pvc.get("spec") or {}
    pv_name = f"pvc-{meta.get('uid', '')}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name,
            "annotations": {"pv.kubernetes.io/provisioned-by": DRIVER},
        },
        "spec": {
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": f"{size_gib}Gi"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "csi": {
                "driver": DRIVER,
                "volumeHandle": volume_id,
                "fsType": (sc.get("parameters") or {}).get(
                    "csi.storage.k8s.io/fstype", "ext4"
                ),
                "volumeAttributes": {
                    "storage.kubernetes.io/csiProvisionerIdentity": IDENTITY
                },
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": ZONE_LABEL, "operator": "In", "values": [zone]}
                            ]
                        }
                    ]
                }
            },
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": (sc.get("metadata") or {}).get("name", ""),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
        },
        "status": {"phase": "Bound"},
    }


def provision(
    rules: EbsRules, pvc: Mapping[str, Any], sc: Mapping[str, Any], zone: str
) -> Obj:
    """Create the EBS volume for a claim in ``zone`` and return its PV (blocking I/O).

    Raises:
        botocore.exceptions.ClientError: AWS refused the volume.
    """
    pv_name = f"pvc-{(pvc.get('metadata') or {}).get('uid', '')}"
    request = volume_request(pvc, sc, zone, pv_name)
    volume = rules.create_volume(**request)
    return make_pv(pvc, sc, str(volume["VolumeId"]), zone, int(request["Size"]))


def volume_id_of(pv: Mapping[str, Any]) -> str | None:
    """Return the EBS volume id of a PV of this driver (``None`` for other PVs)."""
    csi = (pv.get("spec") or {}).get("csi") or {}
    return (
        str(csi["volumeHandle"])
        if csi.get("driver") == DRIVER and csi.get("volumeHandle")
        else None
    )


def attachment_name(volume_id: str) -> str:
    """Return the ``status.volumesAttached[].name`` of an attached EBS volume."""
    return f"kubernetes.io/csi/{DRIVER}^{volume_id}"


def _device(volume_id: str) -> str:
    return "/dev/xvd" + "bcdefghijklmnopqrstuvwxyz"[sum(volume_id.encode()) % 25] + "a"


def attach_for_pod(
    rules: EbsRules, pv: Mapping[str, Any], node: Mapping[str, Any]
) -> bool:
    """Attach a PV's volume to a node's instance (blocking I/O).

    Returns:
        ``True`` when attached, ``False`` when there is nothing to attach (not an
        EBS PV, or a node without an instance).

    Raises:
        botocore.exceptions.ClientError: AWS refused (wrong AZ, already attached).
    """
    volume_id, instance_id = volume_id_of(pv), instance_id_of(node)
    if volume_id is None or instance_id is None:
        return False
    rules.attach_volume(
        VolumeId=volume_id, InstanceId=instance_id, Device=_device(volume_id)
    )
    return True


def detach_for_pod(
    rules: EbsRules, pv: Mapping[str, Any], node: Mapping[str, Any]
) -> bool:
    """Detach a PV's volume from a node's instance (blocking I/O; no-op if detached)."""
    volume_id, instance_id = volume_id_of(pv), instance_id_of(node)
    if volume_id is None or instance_id is None:
        return False
    try:
        rules.detach_volume(VolumeId=volume_id, InstanceId=instance_id)
    except ClientError as err:
        if err.response["Error"]["Code"] in (
            "IncorrectState",
            "InvalidAttachment.NotFound",
            "InvalidVolume.NotFound",
        ):
            return False
        raise
    return True
