"""EBS snapshot contents for devcluster: a snapshot copies its volume's files.

moto keeps only the bookkeeping of volumes and snapshots; the kubelet backs each
PersistentVolume with a directory ``<state_dir>/volumes/<pv name>``. This module
makes the data follow the EBS semantics a home move relies on:

* **capture**: a new snapshot (seen in ``DescribeSnapshots``, whoever created it)
  copies the directory of the PV whose volume it was taken from to
  ``<state_dir>/snapshots/<snapshot id>``, as soon as it is seen (the move waits
  for completion, so the copy is taken while the snapshot is still pending);
* **restore**: when a PV appears whose EBS volume was created from a snapshot
  (``Volume.SnapshotId``) and whose directory does not exist yet, the snapshot's
  copy is put in place (also into an empty directory a kubelet mount made
  first), so the kubelet mounts the restored files. A snapshot not
  captured yet is captured then from its source volume's directory. This runs
  before the PV controller's pass, so a PV made before its claim (a static PV,
  as a home move makes it) is filled before the claim can bind; a pod already
  waiting for a claim that binds in the same pass could see an empty directory
  first (not a case the home move produces).

Copies are made into a temporary name and renamed, so a half-written directory is
never mounted. ``SnapshotData.before_pass(store)`` does both for one pass of the
PV controller; :func:`install` runs it before every pass of a ``VolumeLoop``
(the one hook devcluster needs; ``VolumeLoop`` could call it itself).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from devcluster.controllers.volumes.ebs import volume_id_of

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _has_files(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def copy_dir(source: Path, target: Path) -> None:
    """Copy ``source`` to a new directory ``target`` atomically (no-op if it exists)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    if source.is_dir():
        shutil.copytree(source, tmp, symlinks=True)
    else:
        tmp.mkdir()
    try:
        tmp.rename(target)
    except OSError:  # another copy won the race
        shutil.rmtree(tmp, ignore_errors=True)


class SnapshotData:
    """Snapshot contents under ``state_dir`` for volumes described by ``ec2``.

    Args:
        ec2: an EC2 client (or ``EbsRules``) of the cluster's moto server.
        state_dir: the kubelet's state directory.
        scan_every_s: real seconds between two looks for new snapshots.
    """

    def __init__(
        self, ec2: Any, state_dir: Path | str, scan_every_s: float = 0.2
    ) -> None:
        self.ec2 = ec2
        self.state_dir = Path(state_dir)
        self.scan_every_s = scan_every_s
        self._last_scan = float("-inf")
        self.captured: set[str] = set()
        self.checked: set[str] = set()
        """PVs whose directory exists or was restored (or needs no restore)."""

    def volume_dir(self, pv_name: str) -> Path:
        return self.state_dir / "volumes" / pv_name

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return self.state_dir / "snapshots" / snapshot_id

    def _pv_of_volume(
        self, pvs: Iterable[Mapping[str, Any]], volume_id: str
    ) -> str | None:
        return next((_name(pv) for pv in pvs if volume_id_of(pv) == volume_id), None)

    def capture(
        self, snapshot_id: str, volume_id: str, pvs: Iterable[Mapping[str, Any]]
    ) -> bool:
        """Copy the files of the PV of ``volume_id`` as ``snapshot_id`` (if known)."""
        target = self.snapshot_dir(snapshot_id)
        if target.exists():
            self.captured.add(snapshot_id)
            return True
        pv_name = self._pv_of_volume(pvs, volume_id)
        if pv_name is None:
            return False
        copy_dir(self.volume_dir(pv_name), target)
        self.captured.add(snapshot_id)
        log.info(
            "snapshot %s captured from %s (PV %s)", snapshot_id, volume_id, pv_name
        )
        return True

    def capture_new(
        self, pvs: Iterable[Mapping[str, Any]], force: bool = False
    ) -> list[str]:
        """Capture new snapshots of the volumes behind PVs; return their ids."""
        now = time.monotonic()
        if not force and now - self._last_scan < self.scan_every_s:
            return []
        self._last_scan = now
        pvs = list(pvs)
        volume_ids = sorted({v for v in map(volume_id_of, pvs) if v})
        if not volume_ids:
            return []
        # Only snapshots of volumes behind PVs: moto also lists its AMIs' snapshots.
        found = (
            self.ec2.describe_snapshots(
                Filters=[{"Name": "volume-id", "Values": volume_ids}]
            ).get("Snapshots")
            or []
        )
        new = []
        for snap in found:
            sid = str(snap["SnapshotId"])
            if sid in self.captured or snap.get("State") == "error":
                continue
            if self.capture(sid, str(snap.get("VolumeId", "")), pvs):
                new.append(sid)
        return new

    def _source_snapshot(self, volume_id: str) -> str | None:
        try:
            volumes = (
                self.ec2.describe_volumes(VolumeIds=[volume_id]).get("Volumes") or []
            )
        except ClientError:
            return None
        return str(volumes[0].get("SnapshotId") or "") or None if volumes else None

    def prefill(
        self, pv: Mapping[str, Any], pvs: Iterable[Mapping[str, Any]] = ()
    ) -> bool:
        """Restore a PV's directory from the snapshot its volume was made from.

        Returns:
            ``True`` when files were put in place; ``False`` when the directory
            exists already, the volume was not made from a snapshot, or the
            snapshot's contents are unknown.
        """
        name, volume_id = _name(pv), volume_id_of(pv)
        target = self.volume_dir(name)
        if not name or volume_id is None or _has_files(target):
            return False
        snapshot_id = self._source_snapshot(volume_id)
        if snapshot_id is None:
            return False
        if not self.snapshot_dir(snapshot_id).exists():
            snaps = (
                self.ec2.describe_snapshots(SnapshotIds=[snapshot_id]).get("Snapshots")
                or []
            )
            if not snaps or not self.capture(
                snapshot_id, str(snaps[0].get("VolumeId", "")), pvs
            ):
                log.warning(
                    "PV %s: contents of snapshot %s are unknown", name, snapshot_id
                )
                return False
        if target.exists():  # made empty by a kubelet mount that came first
            shutil.copytree(
                self.snapshot_dir(snapshot_id),
                target,
                symlinks=True,
                dirs_exist_ok=True,
            )
        else:
            copy_dir(self.snapshot_dir(snapshot_id), target)
        log.info("PV %s (%s) restored from snapshot %s", name, volume_id, snapshot_id)
        return True

    async def before_pass(self, store: Any) -> None:
        """Restore new PVs of volumes made from a snapshot, then capture snapshots."""
        pvs = [dict(pv) for pv in store.items_raw("persistentvolumes")]
        for pv in pvs:
            name = _name(pv)
            if name in self.checked or volume_id_of(pv) is None:
                continue
            if _has_files(self.volume_dir(name)):
                self.checked.add(name)
                continue
            try:
                await asyncio.to_thread(self.prefill, pv, pvs)
            except ClientError as err:
                log.info("PV %s: looking at its volume failed: %s", name, err)
                continue
            self.checked.add(name)
        try:
            await asyncio.to_thread(self.capture_new, pvs)
        except ClientError as err:
            log.info("looking for snapshots failed: %s", err)


def install(volume_loop: Any, state_dir: Path | str) -> SnapshotData:
    """Run :meth:`SnapshotData.before_pass` before every pass of a ``VolumeLoop``.

    Installing twice on the same loop returns the first installation.

    Args:
        volume_loop: ``devcluster.controllers.volumes.loop.VolumeLoop`` (has
            ``ebs``, ``store`` and ``run_pass``).
        state_dir: the kubelet's state directory.

    Returns:
        The snapshot data, e.g. to look at ``captured``.
    """
    installed: SnapshotData | None = getattr(volume_loop, "snapshot_data", None)
    if installed is not None:
        return installed
    data = SnapshotData(volume_loop.ebs, state_dir)
    original = volume_loop.run_pass

    async def run_pass() -> None:
        await data.before_pass(volume_loop.store)
        await original()

    volume_loop.run_pass = run_pass
    volume_loop.snapshot_data = data
    return data
