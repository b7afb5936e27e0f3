"""What a home move reads and writes: volume records, keys, adapter protocols, waits.

This module owns the vocabulary shared by the move, the garbage collector, the
adapters and the command line: the frozen records of EBS volumes and snapshots
(as the EC2 adapter returns them), the annotation, label and tag keys a move
leaves behind, the protocols the move expects from its EC2 and Kubernetes
adapters (so tests pass fakes), :class:`ThreadedVolumes`, which runs the
synchronous EC2 calls in worker threads so that a move never blocks the event
loop it runs in (one day the hub's), and one bounded polling loop. No I/O
happens here; :func:`poll_until` only awaits what it is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from wbspawner.model import LABEL_PREFIX, USER_LABEL, ZONE_LABEL

Obj = dict[str, Any]
"""A Kubernetes object as JSON (camelCase keys)."""

T = TypeVar("T")

EBS_DRIVER = "ebs.csi.aws.com"
"""CSI driver name of the EBS CSI driver."""
ZONE_KEYS = (
    ZONE_LABEL,
    "topology.ebs.csi.aws.com/zone",
    "failure-domain.beta.kubernetes.io/zone",
)
"""Zone keys a PV may use: the well-known one (EBS CSI driver ≥ 1.33), the
driver's older own key (PVs created before 1.33 keep it), and the in-tree
label of the oldest volumes."""

# Annotations on PVs (old and new) and on the user's claim.
MOVE_ID = f"{LABEL_PREFIX}/move-id"
"""The move a PV takes part in (old PV: being moved; new PV: created by it)."""
MOVE_STATE = f"{LABEL_PREFIX}/move-state"
"""On the old PV: ``in-progress`` until the move is recorded, then ``done``."""
MOVE_TO = f"{LABEL_PREFIX}/move-to"
"""On the old PV: the target zone."""
MOVE_CLAIM = f"{LABEL_PREFIX}/move-claim"
"""On the old PV: ``namespace/name`` of the claim being moved."""
MOVE_CLAIM_SPEC = f"{LABEL_PREFIX}/move-claim-spec"
"""On the old PV: JSON of the claim's labels and spec, to rebuild it after a crash."""
MOVE_STARTED = f"{LABEL_PREFIX}/move-started-at"
MOVE_HEARTBEAT = f"{LABEL_PREFIX}/move-heartbeat"
"""On the old PV, while a move runs: when it last said so (RFC 3339, UTC). It is
renewed every minute and dropped when the move fails; an old one is a move that
stopped (:func:`wbspawner.homes.follow.move_underway`)."""
MOVED_FROM_VOLUME = f"{LABEL_PREFIX}/moved-from-volume"
MOVED_FROM_PV = f"{LABEL_PREFIX}/moved-from-pv"
MOVED_FROM_ZONE = f"{LABEL_PREFIX}/moved-from-zone"
MOVED_TO_PV = f"{LABEL_PREFIX}/moved-to-pv"
MOVE_SNAPSHOT = f"{LABEL_PREFIX}/move-snapshot"
MOVED_AT = f"{LABEL_PREFIX}/moved-at"
RETAIN_UNTIL = f"{LABEL_PREFIX}/retain-until"
"""When the old volume and the snapshot may be deleted (RFC 3339, UTC)."""

HOME_USER_LABEL = USER_LABEL
"""Label on every PV a move touched or made, so a user's PVs can be listed."""

TAG_USER = USER_LABEL
TAG_MOVE_ID = MOVE_ID
TAG_MOVED_FROM = MOVED_FROM_VOLUME
TAG_RETAIN_UNTIL = RETAIN_UNTIL


def _frozen(d: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeInfo:
    """An EBS volume as ``DescribeVolumes`` shows it."""

    volume_id: str
    zone: str
    size_gib: int
    volume_type: str = "gp3"
    state: str = "available"
    """``creating``, ``available``, ``in-use``, ``deleting``, ``deleted``, ``error``."""
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    snapshot_id: str | None = None
    """The snapshot it was created from, if any."""
    attached_to: tuple[str, ...] = ()
    """Instances it is attached to."""
    tags: Mapping[str, str] = field(default_factory=_frozen)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotInfo:
    """An EBS snapshot as ``DescribeSnapshots`` shows it."""

    snapshot_id: str
    volume_id: str
    state: str
    """``pending``, ``completed``, ``error`` (or ``recoverable``…)."""
    progress: str = ""
    size_gib: int = 0
    tags: Mapping[str, str] = field(default_factory=_frozen)


class VolumeApi(Protocol):
    """What a move needs from EC2 (see :class:`wbspawner.homes.volumes.Volumes`).

    Synchronous (boto3); async code calls it through :class:`ThreadedVolumes`.
    Every method raises :class:`wbspawner.errors.AwsError` subclasses on failure.
    """

    def describe_volume(self, volume_id: str) -> VolumeInfo | None:
        """Return the volume, or ``None`` when it does not exist."""

    def find_volumes(
        self, tags: Mapping[str, str], zone: str | None = None
    ) -> list[VolumeInfo]:
        """Return the volumes carrying all ``tags`` (in ``zone`` if given)."""

    def create_volume_from_snapshot(
        self,
        snapshot_id: str,
        like: VolumeInfo,
        zone: str,
        tags: Mapping[str, str],
        client_token: str,
    ) -> VolumeInfo:
        """Create a volume from a snapshot, with the size and settings of ``like``."""

    def describe_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        """Return the snapshot, or ``None`` when it does not exist."""

    def find_snapshots(self, tags: Mapping[str, str]) -> list[SnapshotInfo]:
        """Return this account's snapshots carrying all ``tags``."""

    def create_snapshot(
        self, volume_id: str, description: str, tags: Mapping[str, str]
    ) -> SnapshotInfo:
        """Start a snapshot of a volume."""

    def tag(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of a volume or snapshot."""

    def delete_volume(self, volume_id: str) -> bool:
        """Delete a volume; ``False`` when it was already gone."""

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Delete a snapshot; ``False`` when it was already gone."""


class ThreadedVolumes:
    """A :class:`VolumeApi` whose calls run in worker threads (awaitable).

    boto3 blocks; this keeps the event loop a move runs in free meanwhile.

    Args:
        volumes: the synchronous EC2 adapter.
    """

    def __init__(self, volumes: VolumeApi) -> None:
        self.volumes = volumes

    async def describe_volume(self, volume_id: str) -> VolumeInfo | None:
        """See :meth:`VolumeApi.describe_volume`."""
        return await asyncio.to_thread(self.volumes.describe_volume, volume_id)

    async def find_volumes(
        self, tags: Mapping[str, str], zone: str | None = None
    ) -> list[VolumeInfo]:
        """See :meth:`VolumeApi.find_volumes`."""
        return await asyncio.to_thread(self.volumes.find_volumes, tags, zone)

    async def create_volume_from_snapshot(
        self,
        snapshot_id: str,
        like: VolumeInfo,
        zone: str,
        tags: Mapping[str, str],
        client_token: str,
    ) -> VolumeInfo:
        """See :meth:`VolumeApi.create_volume_from_snapshot`."""
        return await asyncio.to_thread(
            self.volumes.create_volume_from_snapshot,
            snapshot_id,
            like,
            zone,
            tags,
            client_token,
        )

    async def describe_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        """See :meth:`VolumeApi.describe_snapshot`."""
        return await asyncio.to_thread(self.volumes.describe_snapshot, snapshot_id)

    async def find_snapshots(self, tags: Mapping[str, str]) -> list[SnapshotInfo]:
        """See :meth:`VolumeApi.find_snapshots`."""
        return await asyncio.to_thread(self.volumes.find_snapshots, tags)

    async def create_snapshot(
        self, volume_id: str, description: str, tags: Mapping[str, str]
    ) -> SnapshotInfo:
        """See :meth:`VolumeApi.create_snapshot`."""
        return await asyncio.to_thread(
            self.volumes.create_snapshot, volume_id, description, tags
        )

    async def tag(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """See :meth:`VolumeApi.tag`."""
        await asyncio.to_thread(self.volumes.tag, resource_id, tags)

    async def delete_volume(self, volume_id: str) -> bool:
        """See :meth:`VolumeApi.delete_volume`."""
        return await asyncio.to_thread(self.volumes.delete_volume, volume_id)

    async def delete_snapshot(self, snapshot_id: str) -> bool:
        """See :meth:`VolumeApi.delete_snapshot`."""
        return await asyncio.to_thread(self.volumes.delete_snapshot, snapshot_id)


class ClaimApi(Protocol):
    """What a move needs from Kubernetes (see :class:`wbspawner.adapters.kube.Kube`).

    Reads return ``None`` for missing objects; failures raise
    :class:`wbspawner.errors.KubeError`.
    """

    async def get_pvc(self, namespace: str, name: str) -> Obj | None:
        """Return a claim, or ``None``."""

    async def create_pvc(self, namespace: str, body: Obj) -> Obj:
        """Create a claim."""

    async def patch_pvc(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch a claim."""

    async def delete_pvc(self, namespace: str, name: str) -> None:
        """Delete a claim (no error when it is already gone)."""

    async def get_pv(self, name: str) -> Obj | None:
        """Return a PV, or ``None``."""

    async def list_pvs(self, label_selector: str | None = None) -> list[Obj]:
        """Return PVs, optionally filtered by a label selector."""

    async def create_pv(self, body: Obj) -> Obj:
        """Create a PV."""

    async def patch_pv(self, name: str, patch: Obj) -> Obj:
        """Merge-patch a PV."""

    async def delete_pv(self, name: str) -> None:
        """Delete a PV (no error when it is already gone)."""

    async def pods_using_claim(self, namespace: str, claim: str) -> list[str]:
        """Return the names of pods that use a claim and have not finished."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Waits:
    """Bounds of the waits of a move, in seconds."""

    snapshot_s: float = 3600.0
    """A snapshot of a large, busy volume can take long; re-running resumes."""
    volume_s: float = 600.0
    bind_s: float = 120.0
    """Until the claim is gone, or bound to the new PV."""
    interval_s: float = 1.0
    max_interval_s: float = 30.0


class WaitTimeoutError(Exception):
    """:func:`poll_until` gave up; ``last`` is the last value the check saw."""

    def __init__(self, what: str, waited_s: float, last: object) -> None:
        super().__init__(f"timed out after {waited_s:.0f} s waiting for {what}")
        self.what = what
        self.waited_s = waited_s
        self.last = last


async def poll_until(
    check: Callable[[], Awaitable[tuple[bool, T]]],
    *,
    what: str,
    timeout_s: float,
    waits: Waits,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Await ``check`` until it reports done, backing off up to a bound.

    Args:
        check: returns ``(done, value)``; exceptions propagate.
        what: what is awaited, for the timeout message.
        timeout_s: give up after this long.
        waits: the first and the largest interval between checks.
        sleep: sleeps (injected in tests).
        clock: a monotonic clock (injected in tests).

    Returns:
        The value of the check that reported done.

    Raises:
        WaitTimeoutError: the check did not report done in time.
    """
    start = clock()
    interval = waits.interval_s
    while True:
        done, value = await check()
        if done:
            return value
        waited = clock() - start
        if waited >= timeout_s:
            raise WaitTimeoutError(what, waited, value)
        await sleep(min(interval, max(timeout_s - waited, 0.0)))
        interval = min(interval * 1.5, waits.max_interval_s)


def annotations_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    """Return an object's annotations (empty when none).

    Args:
        obj: a Kubernetes object, or ``None``.

    Returns:
        Its ``metadata.annotations``.
    """
    if not obj:
        return {}
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def name_of(obj: Mapping[str, Any] | None) -> str:
    """Return an object's name (empty when ``None``).

    Args:
        obj: a Kubernetes object, or ``None``.

    Returns:
        Its ``metadata.name``.
    """
    return str(((obj or {}).get("metadata") or {}).get("name") or "")


def volume_handle(pv: Mapping[str, Any] | None) -> str | None:
    """Return the EBS volume id of a PV of the EBS CSI driver.

    Args:
        pv: a PersistentVolume, or ``None``.

    Returns:
        ``spec.csi.volumeHandle``, or ``None`` for other PVs (and for ``None``).
    """
    csi = ((pv or {}).get("spec") or {}).get("csi") or {}
    handle = csi.get("volumeHandle")
    return str(handle) if csi.get("driver") == EBS_DRIVER and handle else None


def claim_volume_name(pvc: Mapping[str, Any] | None) -> str | None:
    """Return the PV a claim is bound (or pre-bound) to.

    Args:
        pvc: a PersistentVolumeClaim, or ``None``.

    Returns:
        ``spec.volumeName``, or ``None``.
    """
    name = ((pvc or {}).get("spec") or {}).get("volumeName")
    return str(name) if name else None


def phase_of(obj: Mapping[str, Any] | None) -> str:
    """Return ``status.phase`` of a claim or PV (empty when unknown).

    Args:
        obj: a Kubernetes object, or ``None``.

    Returns:
        The phase, e.g. ``Bound``.
    """
    return str(((obj or {}).get("status") or {}).get("phase") or "")
