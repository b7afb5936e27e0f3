"""Thin EC2 adapter for home volumes: volumes, snapshots, tags; retries; clear errors.

This module owns every EBS call a home move or the home command line makes.
:class:`Volumes` receives a boto3 EC2 client (made by the caller, e.g. with
:func:`make_ec2_client`), returns :mod:`~wbspawner.homes.records` dataclasses and
holds no policy. Each call goes through :func:`call_ec2`: throttling and AWS
server errors are retried with full-jitter exponential backoff (on top of
botocore's ``standard`` retries), and error codes become
:class:`~wbspawner.errors.AwsError` messages an admin can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from wbspawner.adapters.aws import ACCESS_CODES, DEFAULT_RETRY, THROTTLING_CODES, Retry
from wbspawner.errors import AwsError, PermanentAwsError, TemporaryAwsError
from wbspawner.homes.records import SnapshotInfo, VolumeInfo

log = logging.getLogger(__name__)

SERVER_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"}
)
RETRIED_CODES = (
    THROTTLING_CODES | SERVER_CODES | {"SnapshotCreationPerVolumeRateExceeded"}
)
"""Error codes retried with backoff (also any HTTP 5xx)."""
NOT_FOUND_CODES = frozenset({"InvalidVolume.NotFound", "InvalidSnapshot.NotFound"})
_KMS_HINT = (
    "the role also needs kms:CreateGrant, kms:Decrypt, kms:DescribeKey and "
    "kms:GenerateDataKeyWithoutPlaintext on the volumes' KMS key"
)


def make_ec2_client(region: str, endpoint_url: str | None = None) -> Any:
    """Return a boto3 EC2 client configured like wbspawner's other AWS clients.

    Same settings as :func:`wbspawner.pools.aws.make_clients` (botocore
    ``standard`` retries; no proxy for a loopback endpoint), but only the one
    client: creating a boto3 client loads its service model, which is slow.

    Args:
        region: AWS region.
        endpoint_url: another endpoint, e.g. a local moto server.

    Returns:
        The client.
    """
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
    host = urlsplit(endpoint_url or "").hostname or ""
    if host == "localhost" or host.startswith("127.") or host == "::1":
        options["proxies"] = {}
    session: Any = boto3.session.Session(region_name=region)
    return session.client("ec2", endpoint_url=endpoint_url, config=Config(**options))


def map_ec2_error(err: ClientError, operation: str, about: str = "") -> AwsError:
    """Turn an EC2 ``ClientError`` into an :class:`AwsError` an admin can act on.

    Args:
        err: the error.
        operation: the IAM action, e.g. ``ec2:CreateSnapshot``.
        about: what the call was about (a volume id, a zone).

    Returns:
        :class:`TemporaryAwsError` for throttling and server errors, else
        :class:`PermanentAwsError`; ``code`` and ``operation`` are set.
    """
    info = err.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    text = str(info.get("Message") or "").strip()
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    on = f" ({about})" if about else ""
    kw = {"code": code, "operation": operation}
    if code in RETRIED_CODES or status >= 500:
        return TemporaryAwsError(
            f"AWS is throttling or failing {operation}{on} ({code}); it was retried "
            "with backoff. Wait a minute and run the command again (it resumes).",
            **kw,
        )
    if code in ACCESS_CODES:
        return PermanentAwsError(
            f"the hub's IAM role may not call {operation} ({code}): grant it "
            f"{operation} (and the other ec2 volume and snapshot actions of the "
            f"homes policy){'; ' + _KMS_HINT if 'kms' in text.lower() else ''}.",
            **kw,
        )
    return PermanentAwsError(_permanent_message(code, operation, about, text), **kw)


def _permanent_message(code: str, operation: str, about: str, text: str) -> str:
    """Return the admin's message for an EC2 error retrying will not fix."""
    what = about or "?"
    if "KMS" in code:
        return (
            f"{operation} cannot use the volume's KMS key ({code}): {_KMS_HINT}. {text}"
        )
    if code == "InvalidVolume.NotFound":
        return (
            f"EBS volume {what} does not exist (InvalidVolume.NotFound): it was "
            "deleted, or it is in another region or account"
        )
    if code == "InvalidSnapshot.NotFound":
        return f"EBS snapshot {what} does not exist (InvalidSnapshot.NotFound)"
    if code in ("InvalidZone.NotFound", "InvalidAvailabilityZone"):
        return (
            f"availability zone {what} does not exist in this region ({code}); "
            "use one of the pools' zones"
        )
    if code in ("VolumeLimitExceeded", "SnapshotLimitExceeded"):
        return (
            f"the account's EBS quota is reached ({code}): {text}. Raise it in "
            "Service Quotas, or delete unused volumes and snapshots"
        )
    on = f" ({about})" if about else ""
    return f"EC2 refused {operation}{on} ({code}): {text}"


def call_ec2(
    client: Any,
    method: str,
    *,
    about: str = "",
    retry: Retry = DEFAULT_RETRY,
    **params: Any,
) -> dict[str, Any]:
    """Call an EC2 client method; retry throttling and 5xx; map errors.

    Args:
        client: a boto3 EC2 client (or a wrapper with the same methods).
        method: the client method, e.g. ``create_snapshot``.
        about: what the call is about, for messages.
        retry: attempts, backoff and the (injectable) sleep.
        **params: the call's parameters.

    Returns:
        The response.

    Raises:
        AwsError: mapped from the error (retried ones after the last attempt).
    """
    operation = "ec2:" + "".join(p.capitalize() for p in method.split("_"))
    for attempt in range(1, retry.attempts + 1):
        try:
            result: dict[str, Any] = getattr(client, method)(**params)
            return result
        except ClientError as err:
            mapped = map_ec2_error(err, operation, about)
            if not isinstance(mapped, TemporaryAwsError) or attempt == retry.attempts:
                raise mapped from err
            error = mapped
        except NoCredentialsError as err:
            raise PermanentAwsError(
                "no AWS credentials found: run the hub with its IAM role (IRSA or "
                "Pod Identity), or set AWS_PROFILE for the command line",
                operation=operation,
            ) from err
        except BotoConnectionError as err:
            error = TemporaryAwsError(
                f"cannot reach EC2 for {operation}: {err}", operation=operation
            )
            if attempt == retry.attempts:
                raise error from err
        except BotoCoreError as err:
            raise PermanentAwsError(
                f"{operation} failed: {err}", operation=operation
            ) from err
        delay = retry.delay(attempt)
        log.info(
            "%s: %s; retry %d in %.1f s",
            operation,
            error.code or error.message,
            attempt,
            delay,
        )
        retry.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _tags(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or ()}


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
        tags=_tags(raw.get("Tags")),
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
        tags=_tags(raw.get("Tags")),
    )


class Volumes:
    """EBS volumes and snapshots of homes (implements ``records.VolumeApi``).

    Args:
        client: a boto3 EC2 client, or a wrapper with the same methods.
        retry: how throttled calls are retried (tests inject ``sleep``).
    """

    def __init__(self, client: Any, *, retry: Retry = DEFAULT_RETRY) -> None:
        self.client = client
        self.retry = retry

    def _call(self, method: str, about: str = "", **params: Any) -> dict[str, Any]:
        return call_ec2(self.client, method, about=about, retry=self.retry, **params)

    def _pages(self, method: str, key: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            more = {"NextToken": token} if token else {}
            page = self._call(method, **params, **more)
            items.extend(page.get(key) or [])
            token = page.get("NextToken")
            if not token:
                return items

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
        raw = self._pages("describe_volumes", "Volumes", Filters=filters)
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
        raw = self._pages(
            "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=_filters(tags)
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
