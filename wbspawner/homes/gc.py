"""Deleting what a home move kept: the old volume, its snapshot and its PV.

This module owns the only code that deletes home volumes. It deletes the leftovers
of a *finished* move (old PV marked ``done``) only when all of these hold:

- the retention recorded on the old PV (``retain-until``) has passed;
- the user's claim exists, is ``Bound``, and is bound to another PV, which is
  itself ``Bound`` and backed by another volume;
- the old volume is not attached to any instance.

Otherwise the leftovers are kept and the reason is reported. Order: snapshot,
then volume, then PV, so that a failure leaves the PV (the record) in place and
the next run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from wbspawner.errors import AwsError, KubeError
from wbspawner.homes.records import (
    HOME_USER_LABEL,
    MOVE_CLAIM,
    MOVE_SNAPSHOT,
    MOVE_STATE,
    RETAIN_UNTIL,
    ClaimApi,
    Obj,
    ThreadedVolumes,
    VolumeApi,
    annotations_of,
    claim_volume_name,
    name_of,
    phase_of,
    volume_handle,
)
from wbspawner.timestamps import parse_time

log = logging.getLogger(__name__)

GcAction = Literal["deleted", "kept", "would-delete"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GcItem:
    """What happened to the leftovers of one finished move."""

    old_pv: str
    old_volume: str | None
    snapshot_id: str | None
    claim: str
    """``namespace/name`` of the claim that was moved."""
    retain_until: str
    action: GcAction
    reason: str


async def _blocker(kube: ClaimApi, pv: Obj, now: datetime) -> str | None:
    """Return why the leftovers of this old PV must be kept, or ``None``."""
    ann = annotations_of(pv)
    until = parse_time(ann.get(RETAIN_UNTIL, ""))
    if until is None:
        return "no valid retain-until annotation"
    if now < until:
        return f"retained until {ann.get(RETAIN_UNTIL)}"
    namespace, _, claim_name = ann.get(MOVE_CLAIM, "").partition("/")
    claim = await kube.get_pvc(namespace, claim_name) if claim_name else None
    if claim is None or phase_of(claim) != "Bound":
        return f"claim {ann.get(MOVE_CLAIM)} is not Bound"
    bound_to = claim_volume_name(claim)
    if bound_to in (None, name_of(pv)):
        return "the claim still uses this PV"
    current = await kube.get_pv(bound_to or "")
    if current is None or phase_of(current) != "Bound":
        return f"the claim's PV {bound_to} is not Bound"
    if volume_handle(current) == volume_handle(pv):
        return f"the claim's PV {bound_to} uses the same volume"
    return None


async def _delete(kube: ClaimApi, volumes: ThreadedVolumes, pv: Obj) -> str:
    """Delete snapshot, volume and PV of a finished move; return what was done."""
    snapshot_id = annotations_of(pv).get(MOVE_SNAPSHOT)
    volume_id = volume_handle(pv)
    done = []
    if snapshot_id:
        await volumes.delete_snapshot(snapshot_id)
        done.append(f"snapshot {snapshot_id}")
    if volume_id:
        await volumes.delete_volume(volume_id)
        done.append(f"volume {volume_id}")
    await kube.delete_pv(name_of(pv))
    done.append(f"PV {name_of(pv)}")
    return "deleted " + ", ".join(done)


async def gc_expired(
    kube: ClaimApi,
    volumes: VolumeApi,
    now: datetime,
    *,
    dry_run: bool = False,
    on_item: Callable[[GcItem], None] | None = None,
) -> list[GcItem]:
    """Delete the old volumes, snapshots and PVs of finished moves past retention.

    Args:
        kube: the Kubernetes adapter.
        volumes: the EC2 adapter (synchronous; called in worker threads).
        now: the current time (aware).
        dry_run: only report what would be deleted.
        on_item: called with each item as soon as it is decided (progress).

    Returns:
        One item per finished move found, sorted by old PV name.
    """
    ec2 = ThreadedVolumes(volumes)
    items = []
    finished = [
        pv
        for pv in await kube.list_pvs(HOME_USER_LABEL)
        if annotations_of(pv).get(MOVE_STATE) == "done"
    ]
    for pv in sorted(finished, key=name_of):
        ann = annotations_of(pv)
        reason = await _blocker(kube, pv, now)
        volume_id = volume_handle(pv)
        if reason is None and volume_id:
            info = await ec2.describe_volume(volume_id)
            if info is not None and info.attached_to:
                reason = f"volume {volume_id} is attached to {info.attached_to[0]}"
        action: GcAction = "kept"
        if reason is None and dry_run:
            action, reason = "would-delete", "retention passed; the claim is bound"
        elif reason is None:
            try:
                action, reason = "deleted", await _delete(kube, ec2, pv)
            except (AwsError, KubeError) as err:
                reason = f"deleting failed: {err.message}"
                log.warning("gc of %s: %s", name_of(pv), reason)
        item = GcItem(
            old_pv=name_of(pv),
            old_volume=volume_id,
            snapshot_id=ann.get(MOVE_SNAPSHOT),
            claim=ann.get(MOVE_CLAIM, ""),
            retain_until=ann.get(RETAIN_UNTIL, ""),
            action=action,
            reason=reason,
        )
        items.append(item)
        if on_item is not None:
            on_item(item)
    return items
