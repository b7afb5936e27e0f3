"""Steps 1–4 of a home move: keep the old PV, copy the volume, make the new PV.

This module owns the half of a move that only *adds* things: the old PV is set
to ``Retain`` and marked, a snapshot is taken, a volume is made from it in the
target zone and a static PV is made for that volume. Each step first looks for
its own earlier work (by move id), so a re-run after a crash or a failure
finds it and goes on. Nothing here changes which volume the user's claim uses,
and nothing here deletes anything.
"""

from __future__ import annotations

from wbspawner.homes import HomeError
from wbspawner.homes import objects as build
from wbspawner.homes.context import MoveContext, StepReport, Tools, done, reclaim_of
from wbspawner.homes.records import (
    HOME_USER_LABEL,
    MOVE_CLAIM,
    MOVE_CLAIM_SPEC,
    MOVE_HEARTBEAT,
    MOVE_ID,
    MOVE_STARTED,
    MOVE_STATE,
    MOVE_TO,
    MOVED_FROM_PV,
    MOVED_FROM_VOLUME,
    MOVED_FROM_ZONE,
    TAG_MOVE_ID,
    SnapshotInfo,
    VolumeInfo,
    annotations_of,
    claim_volume_name,
    volume_handle,
)


# ------------------------------------------------------------------ 1. retain
async def step_retain(t: Tools, ctx: MoveContext) -> StepReport:
    """Set Retain on the old PV and record the move on it."""
    name = ctx.old_pv_name
    pv = await t.kube.get_pv(name)
    if pv is None:
        raise HomeError(f"the old PV {name} disappeared")
    ann = annotations_of(pv)
    if (
        reclaim_of(pv) == "Retain"
        and ann.get(MOVE_ID) == ctx.move_id
        and ann.get(MOVE_STATE)
    ):
        ctx.old_pv = pv
        return done(
            "retain", f"PV {name} is Retain and carries move {ctx.move_id}", True
        )
    request = ctx.request
    claim = await t.kube.get_pvc(request.namespace, request.claim_name)
    annotations = {
        MOVE_ID: ctx.move_id,
        MOVE_STATE: "in-progress",
        MOVE_TO: request.target_zone,
        MOVE_CLAIM: f"{request.namespace}/{request.claim_name}",
        MOVE_STARTED: build.iso(t.now()),
        MOVE_HEARTBEAT: build.iso(t.now()),
    }
    if claim is not None and claim_volume_name(claim) == name:
        annotations[MOVE_CLAIM_SPEC] = build.claim_record(claim)
    patch = {
        "metadata": {
            "labels": {HOME_USER_LABEL: build.label_value(request.user)},
            "annotations": annotations,
        },
        "spec": {"persistentVolumeReclaimPolicy": "Retain"},
    }
    pv = await t.kube.patch_pv(name, patch)
    if reclaim_of(pv) != "Retain":
        raise HomeError(f"PV {name} did not keep reclaim policy Retain")
    ctx.old_pv = pv
    return done(
        "retain", f"PV {name} set to Retain; move {ctx.move_id} recorded", False
    )


# ---------------------------------------------------------------- 2. snapshot
async def step_snapshot(t: Tools, ctx: MoveContext) -> StepReport:
    """Snapshot the old volume (once per move) and wait until it completes."""
    old = await t.volumes.describe_volume(ctx.old_volume_id)
    if old is None:
        raise HomeError(f"the old volume {ctx.old_volume_id} does not exist")
    ctx.old_volume = old
    taken = await t.volumes.find_snapshots({TAG_MOVE_ID: ctx.move_id})
    found = sorted(
        (s for s in taken if s.state != "error" and s.volume_id == old.volume_id),
        key=lambda s: s.snapshot_id,
    )
    snap = found[0] if found else None
    already = snap is not None and snap.state == "completed"
    if snap is None:
        snap = await t.volumes.create_snapshot(
            old.volume_id,
            f"home of {ctx.request.user} before moving to "
            f"{ctx.request.target_zone} ({ctx.move_id})",
            build.snapshot_tags(ctx.request.user, ctx.move_id, old),
        )
    snapshot_id = snap.snapshot_id

    async def check() -> tuple[bool, SnapshotInfo]:
        seen = await t.volumes.describe_snapshot(snapshot_id)
        if seen is None:
            raise HomeError(f"snapshot {snapshot_id} disappeared")
        if seen.state == "error":
            raise HomeError(
                f"snapshot {snapshot_id} failed; run the move again to take a new one"
            )
        return seen.state == "completed", seen

    ctx.snapshot = await t.poll(
        check, f"snapshot {snapshot_id} to complete", t.waits.snapshot_s
    )
    return done(
        "snapshot", f"snapshot {snapshot_id} of {old.volume_id} completed", already
    )


# ------------------------------------------------------------------ 3. volume
def check_like(new: VolumeInfo, old: VolumeInfo, zone: str) -> None:
    """Raise when the new volume is not a faithful copy's container of the old one.

    Args:
        new: the new volume.
        old: the old volume.
        zone: the zone the new one must be in.

    Raises:
        HomeError: zone, size, type, encryption, IOPS or throughput differ.
    """
    wrong = []
    if new.zone != zone:
        wrong.append(f"zone {new.zone} instead of {zone}")
    for what, got, want in (
        ("size", new.size_gib, old.size_gib),
        ("type", new.volume_type, old.volume_type),
        ("encryption", new.encrypted, old.encrypted),
        ("IOPS", new.iops, old.iops if old.iops else new.iops),
        ("throughput", new.throughput, old.throughput or new.throughput),
    ):
        if got != want:
            wrong.append(f"{what} {got} instead of {want}")
    if wrong:
        raise HomeError(
            f"the new volume {new.volume_id} differs from {old.volume_id}: "
            + "; ".join(wrong)
            + " (it is kept, tagged with the move id; check it by hand)"
        )


async def step_volume(t: Tools, ctx: MoveContext) -> StepReport:
    """Create the volume from the snapshot in the target zone, wait until available."""
    old, snap, zone = ctx.old_volume, ctx.snapshot, ctx.request.target_zone
    if old is None or snap is None:
        raise HomeError("the snapshot step has not run")
    made = await t.volumes.find_volumes({build.CREATED_BY_MOVE: ctx.move_id}, zone)
    found = sorted(
        (v for v in made if v.state not in ("deleting", "deleted", "error")),
        key=lambda v: v.volume_id,
    )
    volume = found[0] if found else None
    already = volume is not None and volume.state in ("available", "in-use")
    if volume is None:
        volume = await t.volumes.create_volume_from_snapshot(
            snap.snapshot_id,
            old,
            zone,
            build.volume_tags(ctx.request.user, ctx.move_id, old, ctx.new_pv_name),
            client_token=f"wbspawner-{ctx.move_id}",
        )
    volume_id = volume.volume_id

    async def check() -> tuple[bool, VolumeInfo | None]:
        seen = await t.volumes.describe_volume(volume_id)
        if seen is not None and seen.state in ("error", "deleting", "deleted"):
            raise HomeError(f"the new volume {volume_id} is in state {seen.state}")
        return seen is not None and seen.state in ("available", "in-use"), seen

    ready = await t.poll(
        check, f"volume {volume_id} to become available", t.waits.volume_s
    )
    if ready is None:  # pragma: no cover - poll returns only when seen
        raise HomeError(f"volume {volume_id} vanished")
    check_like(ready, old, zone)
    ctx.new_volume = ready
    return done("volume", f"volume {volume_id} available in {zone}", already)


# ---------------------------------------------------------------------- 4. pv
async def step_pv(t: Tools, ctx: MoveContext) -> StepReport:
    """Create the static PV of the new volume, pinned to the target zone."""
    volume, name = ctx.new_volume, ctx.new_pv_name
    if volume is None:
        raise HomeError("the volume step has not run")
    pv = await t.kube.get_pv(name)
    if pv is None:
        request = ctx.request
        body = build.static_pv(
            name,
            ctx.old_pv,
            volume,
            (request.namespace, request.claim_name),
            labels={HOME_USER_LABEL: build.label_value(request.user)},
            annotations={
                build.CREATED_BY_MOVE: ctx.move_id,
                MOVED_FROM_PV: ctx.old_pv_name,
                MOVED_FROM_VOLUME: ctx.old_volume_id,
                MOVED_FROM_ZONE: ctx.old_zone,
            },
        )
        await t.kube.create_pv(body)
        pv = await t.kube.get_pv(name)
    elif volume_handle(pv) == volume.volume_id:
        return done("pv", f"PV {name} exists for {volume.volume_id}", True)
    if volume_handle(pv) != volume.volume_id:
        raise HomeError(f"PV {name} exists but is not for volume {volume.volume_id}")
    return done("pv", f"PV {name} created for {volume.volume_id}", False)
