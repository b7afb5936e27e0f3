"""Thin EC2 adapter for home volumes: volumes, snapshots and their tags.

This module owns every EBS call a home move or the home command line makes.
:class:`Volumes` receives an EC2 client (made by the caller with
:func:`~wbspawner.adapters.aws.make_client`), returns
:mod:`~wbspawner.homes.records` dataclasses and holds no policy. Each call goes
through :func:`~wbspawner.adapters.aws.call` or
:func:`~wbspawner.adapters.aws.paginate`: botocore retries throttling and AWS
server errors, and error codes become :class:`~wbspawner.errors.AwsError`
messages an admin can act on (a missing volume or snapshot, a zone, a quota, the
KMS key's permissions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wbspawner.adapters.aws import call, paginate, tag_dict
from wbspawner.errors import PermanentAwsError
from wbspawner.homes.records import SnapshotInfo, VolumeInfo


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _filters(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


def volume_info(raw: Mapping[str, Any]) -> VolumeInfo:
    """Return a :class:`VolumeInfo` from a ``DescribeVolumes`` item.

    Args:
        raw: one item of ``Volumes``.

    Returns:
        The record.
    """
    return VolumeInfo(
        volume_id=str(raw["VolumeId"]),
        zone=str(raw.get("AvailabilityZone", "")),
        size_gib=int(raw.get("Size", 0)),
        volume_type=str(raw.get("VolumeType", "")),
        state=str(raw.get("State", "")),
        iops=int(raw["Iops"]) if raw.get("Iops") else None,
        throughput=int(raw["Throughput"]) if raw.get("Throughput") else None,
        encrypted=bool(raw.get("Encrypted", False)),
        kms_key_id=str(raw["KmsKeyId"]) if raw.get("KmsKeyId") else None,
        snapshot_id=str(raw["SnapshotId"]) if raw.get("SnapshotId") else None,
        attached_to=tuple(
            str(a.get("InstanceId", ""))
            for a in raw.get("Attachments") or []
            if a.get("State") in ("attaching", "attached", "busy")
        ),
        tags=tag_dict(raw.get("Tags")),
    )


def snapshot_info(raw: Mapping[str, Any]) -> SnapshotInfo:
    """Return a :class:`SnapshotInfo` from a ``DescribeSnapshots`` item.

    Args:
        raw: one item of ``Snapshots``.

    Returns:
        The record.
    """
    return SnapshotInfo(
        snapshot_id=str(raw["SnapshotId"]),
        volume_id=str(raw.get("VolumeId", "")),
        state=str(raw.get("State", "")),
        progress=str(raw.get("Progress") or ""),
        size_gib=int(raw.get("VolumeSize", 0)),
        tags=tag_dict(raw.get("Tags")),
    )


class Volumes:
    """EBS volumes and snapshots of homes (implements ``records.VolumeApi``).

    Args:
        client: an EC2 client, or a wrapper with the same methods.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, method: str, about: str = "", **params: Any) -> dict[str, Any]:
        return call(self.client, method, about=about, **params)

    # -------------------------------------------------------------- volumes
    def describe_volume(self, volume_id: str) -> VolumeInfo | None:
        """Return a volume, or ``None`` when it does not exist."""
        try:
            found = self._call("describe_volumes", volume_id, VolumeIds=[volume_id])
        except PermanentAwsError as err:
            if err.code == "InvalidVolume.NotFound":
                return None
            raise
        volumes = found.get("Volumes") or []
        return volume_info(volumes[0]) if volumes else None

    def find_volumes(
        self, tags: Mapping[str, str], zone: str | None = None
    ) -> list[VolumeInfo]:
        """Return the volumes carrying all ``tags`` (in ``zone`` if given)."""
        filters = _filters(tags)
        if zone:
            filters.append({"Name": "availability-zone", "Values": [zone]})
        raw = paginate(self.client, "describe_volumes", "Volumes", Filters=filters)
        return [volume_info(v) for v in raw]

    def create_volume_from_snapshot(
        self,
        snapshot_id: str,
        like: VolumeInfo,
        zone: str,
        tags: Mapping[str, str],
        client_token: str,
    ) -> VolumeInfo:
        """Create a volume from a snapshot in ``zone`` with the settings of ``like``.

        Same size, type, IOPS (io1/io2/gp3), throughput (gp3), encryption and KMS
        key; ``client_token`` makes a repeated request return the same volume.
        """
        params: dict[str, Any] = {
            "AvailabilityZone": zone,
            "SnapshotId": snapshot_id,
            "Size": like.size_gib,
            "VolumeType": like.volume_type,
            "Encrypted": like.encrypted,
            "ClientToken": client_token[:64],
            "TagSpecifications": [{"ResourceType": "volume", "Tags": _tag_list(tags)}],
        }
        if like.encrypted and like.kms_key_id:
            params["KmsKeyId"] = like.kms_key_id
        if like.iops and like.volume_type in ("gp3", "io1", "io2"):
            params["Iops"] = like.iops
        if like.throughput and like.volume_type == "gp3":
            params["Throughput"] = like.throughput
        return volume_info(self._call("create_volume", zone, **params))

    def delete_volume(self, volume_id: str) -> bool:
        """Delete a volume; ``False`` when it was already gone."""
        try:
            self._call("delete_volume", volume_id, VolumeId=volume_id)
        except PermanentAwsError as err:
            if err.code == "InvalidVolume.NotFound":
                return False
            raise
        return True

    # ------------------------------------------------------------ snapshots
    def describe_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        """Return a snapshot, or ``None`` when it does not exist."""
        try:
            found = self._call(
                "describe_snapshots", snapshot_id, SnapshotIds=[snapshot_id]
            )
        except PermanentAwsError as err:
            if err.code == "InvalidSnapshot.NotFound":
                return None
            raise
        snapshots = found.get("Snapshots") or []
        return snapshot_info(snapshots[0]) if snapshots else None

    def find_snapshots(self, tags: Mapping[str, str]) -> list[SnapshotInfo]:
        """Return this account's snapshots carrying all ``tags``."""
        raw = paginate(
            self.client,
            "describe_snapshots",
            "Snapshots",
            OwnerIds=["self"],
            Filters=_filters(tags),
        )
        return [snapshot_info(s) for s in raw]

    def create_snapshot(
        self, volume_id: str, description: str, tags: Mapping[str, str]
    ) -> SnapshotInfo:
        """Start a snapshot of a volume, tagged at creation."""
        raw = self._call(
            "create_snapshot",
            volume_id,
            VolumeId=volume_id,
            Description=description[:255],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(tags)}],
        )
        return snapshot_info(raw)

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Delete a snapshot; ``False`` when it was already gone."""
        try:
            self._call("delete_snapshot", snapshot_id, SnapshotId=snapshot_id)
        except PermanentAwsError as err:
            if err.code == "InvalidSnapshot.NotFound":
                return False
            raise
        return True

    # ------------------------------------------------------------------ tags
    def tag(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of a volume or snapshot."""
        self._call(
            "create_tags", resource_id, Resources=[resource_id], Tags=_tag_list(tags)
        )
