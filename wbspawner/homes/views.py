"""Read-only views of homes for admins: the list, one home in detail, a move's plan.

This module owns what ``wbspawner home list``, ``home show`` and
``home move --dry-run`` report. It only reads (through the adapters, EC2 in
worker threads) and returns dataclasses; the command line formats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wbspawner.homes import objects as build
from wbspawner.homes.context import STEPS, MoveRequest, Step, reclaim_of
from wbspawner.homes.move import MoveResult, locate
from wbspawner.homes.policy import zone_of_pv
from wbspawner.homes.records import (
    HOME_USER_LABEL,
    MOVE_CLAIM,
    MOVE_ID,
    MOVE_STATE,
    MOVE_TO,
    MOVED_AT,
    MOVED_FROM_ZONE,
    RETAIN_UNTIL,
    TAG_MOVE_ID,
    ClaimApi,
    Obj,
    ThreadedVolumes,
    VolumeApi,
    VolumeInfo,
    annotations_of,
    claim_volume_name,
    name_of,
    phase_of,
    volume_handle,
)
from wbspawner.spawn.manifests import HOME_PVC_TEMPLATE

CLAIM_PREFIX = HOME_PVC_TEMPLATE.split("{", 1)[0]
"""Names of home claims start with this (``home-``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeRow:
    """One home, as ``wbspawner home list`` shows it."""

    user: str
    claim: str
    pv: str
    volume_id: str
    zone: str
    size: str
    status: str
    last_move: str
    volume_missing: bool = False
    """The PV names an EBS volume EC2 does not know (AWS state lost?)."""


def _size(claim: Obj, pv: Obj | None) -> str:
    capacity = ((pv or {}).get("spec") or {}).get("capacity") or {}
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return str(capacity.get("storage") or requests.get("storage") or "")


def _moving(pvs: list[Obj], namespace: str, claim: str) -> Obj | None:
    return next(
        (
            pv
            for pv in pvs
            if annotations_of(pv).get(MOVE_CLAIM) == f"{namespace}/{claim}"
            and annotations_of(pv).get(MOVE_STATE) == "in-progress"
        ),
        None,
    )


async def home_rows(
    kube: ClaimApi,
    claims: list[Obj],
    namespace: str,
    volumes: VolumeApi | None = None,
) -> list[HomeRow]:
    """Return one row per home claim of a namespace, sorted by user.

    Args:
        kube: the Kubernetes adapter.
        claims: the namespace's claims (home claims are picked by name).
        namespace: the namespace.
        volumes: EC2, to check that each home's volume exists (``None``: not
            checked). Only read: a missing volume is flagged, nothing deleted.

    Returns:
        The rows.

    Raises:
        AwsError: EC2 could not be asked (the volumes are unknown).
    """
    ec2 = ThreadedVolumes(volumes) if volumes is not None else None
    marked = await kube.list_pvs(HOME_USER_LABEL)
    rows = []
    for claim in claims:
        name = name_of(claim)
        if not name.startswith(CLAIM_PREFIX):
            continue
        pv_name = claim_volume_name(claim)
        pv = await kube.get_pv(pv_name) if pv_name else None
        ann = annotations_of(claim)
        status = phase_of(claim) or "Pending"
        moving = _moving(marked, namespace, name)
        if moving is not None:
            status += f", moving to {annotations_of(moving).get(MOVE_TO)}"
        last = ""
        if ann.get(MOVED_AT):
            last = f"{ann[MOVED_AT]} from {ann.get(MOVED_FROM_ZONE, '?')}"
        volume_id = volume_handle(pv) or ""
        missing = False
        if ec2 is not None and volume_id:
            missing = await ec2.describe_volume(volume_id) is None
        if missing:
            status += ", EBS volume missing"
        rows.append(
            HomeRow(
                user=name[len(CLAIM_PREFIX) :],
                claim=name,
                pv=pv_name or "",
                volume_id=volume_id,
                zone=(zone_of_pv(pv) if pv else None) or "",
                size=_size(claim, pv),
                status=status,
                last_move=last,
                volume_missing=missing,
            )
        )
    return sorted(rows, key=lambda r: r.user)


async def kept_volumes(
    kube: ClaimApi, namespace: str, claim: str
) -> list[tuple[str, str, str]]:
    """Return old PVs kept after finished moves of a claim.

    Args:
        kube: the Kubernetes adapter.
        namespace: the claim's namespace.
        claim: the claim's name.

    Returns:
        ``(pv, volume id, retain until)`` per old PV, sorted by PV name.
    """
    marked = await kube.list_pvs(HOME_USER_LABEL)
    return sorted(
        (name_of(pv), volume_handle(pv) or "", annotations_of(pv).get(RETAIN_UNTIL, ""))
        for pv in marked
        if annotations_of(pv).get(MOVE_CLAIM) == f"{namespace}/{claim}"
        and annotations_of(pv).get(MOVE_STATE) == "done"
    )


PlanState = Literal["done", "to do"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedStep:
    """One step of a move as a dry run sees it."""

    step: Step
    state: PlanState
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MovePlan:
    """What ``home move --dry-run`` reports; nothing was changed."""

    request: MoveRequest
    from_zone: str
    move_id: str
    """The unfinished move that would resume, or ``(new)``."""
    already_there: bool
    running_pods: tuple[str, ...]
    steps: tuple[PlannedStep, ...]


async def plan_move(
    kube: ClaimApi, volumes: VolumeApi, request: MoveRequest
) -> MovePlan:
    """Describe what a move would do, reading only.

    Args:
        kube: the Kubernetes adapter.
        volumes: the EC2 adapter (synchronous; called in worker threads).
        request: the move.

    Returns:
        The plan.

    Raises:
        MoveRefusedError: the move could not start (no home, another move).
    """
    where = await locate(kube, request)
    pods = tuple(await kube.pods_using_claim(request.namespace, request.claim_name))
    move_id = where.move_id or "(new)"
    base = MovePlan(
        request=request,
        from_zone=where.zone,
        move_id=move_id,
        already_there=where.move_id is None and where.zone == request.target_zone,
        running_pods=pods,
        steps=(),
    )
    if base.already_there:
        return base
    volume_id = volume_handle(where.pv) or ""
    ec2 = ThreadedVolumes(volumes)
    old = await ec2.describe_volume(volume_id)
    size = f"{old.size_gib} GiB {old.volume_type}" if old else "?"
    found = await _found_by_step(kube, ec2, request, where.move_id, where.pv)
    wanted: dict[Step, str] = {
        "retain": f"set PV {name_of(where.pv)} to Retain and record the move",
        "snapshot": f"snapshot {volume_id} ({size}) and wait until completed",
        "volume": f"create a {size} volume from it in {request.target_zone}",
        "pv": f"create a static PV pinned to {request.target_zone}",
        "claim": f"delete claim {request.claim_name} (PV {name_of(where.pv)} is "
        "Retain) and create it naming the new PV",
        "verify": "check the claim is Bound to the new PV, size and zone right",
        "record": f"annotate claim and PVs; keep {volume_id} and the snapshot for "
        f"{request.retention_days} days",
    }
    steps = tuple(
        PlannedStep(step=s, state="done", detail=found[s])
        if s in found
        else PlannedStep(step=s, state="to do", detail=wanted[s])
        for s in STEPS
    )
    return MovePlan(
        request=request,
        from_zone=where.zone,
        move_id=move_id,
        already_there=False,
        running_pods=pods,
        steps=steps,
    )


async def _found_by_step(
    kube: ClaimApi,
    volumes: ThreadedVolumes,
    request: MoveRequest,
    move_id: str | None,
    old_pv: Obj,
) -> dict[Step, str]:
    """Return what an unfinished move already did, per step."""
    if move_id is None:
        return {}
    found: dict[Step, str] = {}
    if reclaim_of(old_pv) == "Retain" and annotations_of(old_pv).get(MOVE_ID):
        found["retain"] = f"PV {name_of(old_pv)} is Retain"
    snaps = await volumes.find_snapshots({TAG_MOVE_ID: move_id})
    if any(s.state == "completed" for s in snaps):
        found["snapshot"] = f"snapshot {snaps[0].snapshot_id} completed"
    made = await volumes.find_volumes(
        {build.CREATED_BY_MOVE: move_id}, request.target_zone
    )
    if made:
        found["volume"] = f"volume {made[0].volume_id} ({made[0].state})"
    new_pv = build.target_pv_name(request.claim_name, move_id)
    if await kube.get_pv(new_pv) is not None:
        found["pv"] = f"PV {new_pv} exists"
    claim = await kube.get_pvc(request.namespace, request.claim_name)
    if claim_volume_name(claim) == new_pv:
        found["claim"] = f"claim names PV {new_pv}"
    return found


def describe(result: MoveResult) -> str:
    """Return one paragraph about a move's outcome for an admin.

    Args:
        result: what :meth:`HomeMover.run` returned.

    Returns:
        The text.
    """
    if result.status == "already-there":
        return f"{result.user}'s home ({result.claim}) is already in {result.zone}."
    return (
        f"Moved {result.user}'s home ({result.claim}) from {result.old_zone} to "
        f"{result.zone}: volume {result.new_volume} (PV {result.new_pv}), made from "
        f"snapshot {result.snapshot_id} of {result.old_volume}. The old volume and "
        f"the snapshot are kept until {result.retain_until} (`wbspawner home gc` "
        "deletes them after that)."
    )


def describe_volume(volume: VolumeInfo) -> str:
    """Return one line about an EBS volume for an admin.

    Args:
        volume: the volume as EC2 describes it.

    Returns:
        E.g. ``vol-0abc: 10 GiB gp3 in us-east-1b, in-use, attached to i-0def,
        encrypted, made from snap-0123``.
    """
    kind = volume.volume_type
    if volume.iops or volume.throughput:
        extra = [f"{volume.iops} IOPS" if volume.iops else ""]
        extra.append(f"{volume.throughput} MiB/s" if volume.throughput else "")
        kind += f" ({', '.join(e for e in extra if e)})"
    parts = [f"{volume.size_gib} GiB {kind} in {volume.zone}", volume.state]
    if volume.attached_to:
        parts.append(f"attached to {', '.join(volume.attached_to)}")
    if volume.encrypted:
        key = f" with {volume.kms_key_id}" if volume.kms_key_id else ""
        parts.append(f"encrypted{key}")
    else:
        parts.append("not encrypted")
    if volume.snapshot_id:
        parts.append(f"made from {volume.snapshot_id}")
    return f"{volume.volume_id}: {', '.join(parts)}"
