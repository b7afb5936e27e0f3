"""Steps 5–7 of a home move: switch the claim, verify it, record the move.

This module owns the half of a move that changes what the user's claim points
at, and the way back. A claim's ``spec.volumeName`` is immutable, so the old
claim is deleted (only while no pod uses it, and only after re-checking that its
PV is ``Retain``) and one of the same name is created naming the new PV. When
that claim cannot be created or verified, the claim is put back on the old PV
(:func:`restore_old_claim`), so the user keeps the intact old home. Nothing here
deletes a volume, a snapshot or a PV.
"""

from __future__ import annotations

import logging

from wbspawner.homes import HomeError
from wbspawner.homes import objects as build
from wbspawner.homes.context import (
    MoveContext,
    StepReport,
    Tools,
    done,
    reclaim_of,
    refuse_if_running,
)
from wbspawner.homes.records import (
    MOVE_CLAIM_SPEC,
    MOVE_HEARTBEAT,
    MOVE_SNAPSHOT,
    MOVE_STATE,
    MOVED_AT,
    MOVED_FROM_PV,
    MOVED_FROM_VOLUME,
    MOVED_FROM_ZONE,
    MOVED_TO_PV,
    RETAIN_UNTIL,
    TAG_RETAIN_UNTIL,
    annotations_of,
    claim_volume_name,
    phase_of,
)
from wbspawner.homes.steps import check_like
from wbspawner.timestamps import parse_time

log = logging.getLogger(__name__)

MOVED_TO_VOLUME = "wbspawner.io/moved-to-volume"
"""Tag of the old volume: the volume its data was copied to."""


# ------------------------------------------------------------------- 5. claim
def _claim_record(ctx: MoveContext) -> str:
    recorded = annotations_of(ctx.old_pv).get(MOVE_CLAIM_SPEC)
    if recorded:
        return recorded
    spec = ctx.old_pv.get("spec") or {}  # no record: rebuild from the PV itself
    return build.claim_record(
        {
            "spec": {
                "accessModes": spec.get("accessModes"),
                "resources": {"requests": dict(spec.get("capacity") or {})},
                "storageClassName": spec.get("storageClassName"),
            }
        }
    )


async def _wait_claim_gone(t: Tools, ctx: MoveContext) -> None:
    ns, name = ctx.request.namespace, ctx.request.claim_name

    async def gone() -> tuple[bool, None]:
        return await t.kube.get_pvc(ns, name) is None, None

    await t.poll(
        gone,
        f"the old claim {name} to be deleted (is a pod still using it?)",
        t.waits.bind_s,
    )


async def _create_claim(t: Tools, ctx: MoveContext, pv_name: str) -> None:
    ns, name = ctx.request.namespace, ctx.request.claim_name
    await t.kube.patch_pv(pv_name, build.prebind_patch(ns, name))
    await t.kube.create_pvc(ns, build.new_claim(_claim_record(ctx), name, pv_name, {}))


async def restore_old_claim(t: Tools, ctx: MoveContext) -> None:
    """Put a missing claim back on the old PV (best effort; never raises).

    Args:
        t: adapters.
        ctx: the move.
    """
    ns, name = ctx.request.namespace, ctx.request.claim_name
    try:
        if await t.kube.get_pvc(ns, name) is not None:
            return  # never deleted, or created after all: leave it
        await _create_claim(t, ctx, ctx.old_pv_name)
        log.warning(
            "move %s: claim %s restored on old PV %s",
            ctx.move_id,
            name,
            ctx.old_pv_name,
        )
    except Exception as err:  # keep the original failure; a re-run finishes
        log.error("move %s: could not restore claim %s: %s", ctx.move_id, name, err)


async def step_claim(t: Tools, ctx: MoveContext) -> StepReport:
    """Rebind the user's claim to the new PV (delete, then create by the same name)."""
    ns, name, new = ctx.request.namespace, ctx.request.claim_name, ctx.new_pv_name
    claim = await t.kube.get_pvc(ns, name)
    bound = claim_volume_name(claim)
    if claim is not None and bound == new:
        return done("claim", f"claim {name} names PV {new}", True)
    await refuse_if_running(t.kube, ctx.request)
    if claim is not None:
        if bound not in (ctx.old_pv_name, None):
            raise HomeError(
                f"claim {name} is bound to PV {bound}, neither the old PV "
                f"{ctx.old_pv_name} nor the new {new}; check it by hand"
            )
        if reclaim_of(await t.kube.get_pv(ctx.old_pv_name)) != "Retain":
            raise HomeError(
                f"PV {ctx.old_pv_name} is not Retain; not deleting its claim"
            )
    try:
        if claim is not None:
            await t.kube.delete_pvc(ns, name)
            await _wait_claim_gone(t, ctx)
        await _create_claim(t, ctx, new)
    except Exception:
        await restore_old_claim(t, ctx)
        raise
    return done("claim", f"claim {name} recreated naming PV {new}", False)


# ------------------------------------------------------------------ 6. verify
async def _roll_back_claim(t: Tools, ctx: MoveContext) -> None:
    ns, name = ctx.request.namespace, ctx.request.claim_name
    try:
        claim = await t.kube.get_pvc(ns, name)
        if claim is not None and claim_volume_name(claim) == ctx.new_pv_name:
            if await t.kube.pods_using_claim(ns, name):
                return  # a server already runs on the new home: keep it
            await t.kube.delete_pvc(ns, name)
            await _wait_claim_gone(t, ctx)
    except Exception as err:
        log.error("move %s: could not roll back claim %s: %s", ctx.move_id, name, err)
        return
    await restore_old_claim(t, ctx)


async def step_verify(t: Tools, ctx: MoveContext) -> StepReport:
    """Check the claim is Bound to the new PV and the volume right; else roll back."""
    ns, name, new = ctx.request.namespace, ctx.request.claim_name, ctx.new_pv_name

    async def check() -> tuple[bool, None]:
        claim, pv = await t.kube.get_pvc(ns, name), await t.kube.get_pv(new)
        ok = claim_volume_name(claim) == new and phase_of(claim) == "Bound"
        return ok and phase_of(pv) == "Bound", None

    try:
        if ctx.new_volume is None or ctx.old_volume is None:
            raise HomeError("the volume step has not run")
        await t.poll(check, f"claim {name} to be Bound to PV {new}", t.waits.bind_s)
        seen = await t.volumes.describe_volume(ctx.new_volume.volume_id)
        if seen is None:
            raise HomeError(f"the new volume {ctx.new_volume.volume_id} disappeared")
        check_like(seen, ctx.old_volume, ctx.request.target_zone)
    except Exception:
        await _roll_back_claim(t, ctx)
        raise
    return done("verify", f"claim {name} Bound to PV {new} in {seen.zone}", False)


# ------------------------------------------------------------------ 7. record
async def step_record(t: Tools, ctx: MoveContext) -> StepReport:
    """Record the move on the claim and both PVs; tag the old volume and snapshot."""
    ns, name, new = ctx.request.namespace, ctx.request.claim_name, ctx.new_pv_name
    if ctx.snapshot is None or ctx.new_volume is None:
        raise HomeError("the snapshot and volume steps have not run")
    new_pv = await t.kube.get_pv(new)
    moved_at = annotations_of(new_pv).get(MOVED_AT) or build.iso(t.now())
    until = build.retain_until(
        parse_time(moved_at) or t.now(), ctx.request.retention_days
    )
    record = {
        MOVED_FROM_VOLUME: ctx.old_volume_id,
        MOVED_FROM_PV: ctx.old_pv_name,
        MOVED_FROM_ZONE: ctx.old_zone,
        MOVE_SNAPSHOT: ctx.snapshot.snapshot_id,
        build.CREATED_BY_MOVE: ctx.move_id,
        MOVED_AT: moved_at,
        RETAIN_UNTIL: until,
    }
    await t.kube.patch_pv(new, {"metadata": {"annotations": record}})
    await t.kube.patch_pvc(ns, name, {"metadata": {"annotations": record}})
    await t.volumes.tag(
        ctx.old_volume_id,
        {TAG_RETAIN_UNTIL: until, MOVED_TO_VOLUME: ctx.new_volume.volume_id},
    )
    await t.volumes.tag(ctx.snapshot.snapshot_id, {TAG_RETAIN_UNTIL: until})
    finished = {
        MOVE_STATE: "done",
        MOVE_HEARTBEAT: None,
        MOVED_TO_PV: new,
        MOVE_SNAPSHOT: ctx.snapshot.snapshot_id,
        MOVED_AT: moved_at,
        RETAIN_UNTIL: until,
    }
    ctx.old_pv = await t.kube.patch_pv(
        ctx.old_pv_name, {"metadata": {"annotations": finished}}
    )
    ctx.retain_until = until
    return done("record", f"old volume {ctx.old_volume_id} kept until {until}", False)
