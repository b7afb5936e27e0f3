"""Moving a user's home to another zone: an idempotent, resumable state machine.

This module owns the order of the steps, where a move starts from, and what an
admin is told; the steps themselves are in :mod:`wbspawner.homes.steps` (1–4,
which only add things) and :mod:`wbspawner.homes.rebind` (5–7, which switch the
claim), the objects in :mod:`wbspawner.homes.objects`, the I/O in the adapters.

Steps, each first checking whether it is already done, so that running the same
move again after a crash or a failure resumes it:

1. ``retain``: the old PV gets ``persistentVolumeReclaimPolicy: Retain`` and the
   move's record (id, target zone, the claim to rebuild) in annotations;
2. ``snapshot``: a snapshot of the old volume (tagged with user and move id),
   awaited until completed;
3. ``volume``: a volume from it in the target zone, with the old volume's size,
   type, IOPS, throughput, encryption and tags (idempotent client token);
4. ``pv``: a static PV for it, pinned to the target zone, ``Retain``;
5. ``claim``: the claim is rebound: ``spec.volumeName`` is immutable, so the old
   claim is deleted (safe: its PV is ``Retain``) and one of the same name is
   created naming the new PV;
6. ``verify``: the claim is Bound to the new PV, whose volume is in the target
   zone with the old size;
7. ``record``: annotations on the claim and both PVs (old volume, snapshot,
   moved-at, retain-until); the old volume and snapshot are tagged likewise.

Safety: no code path of a move deletes a volume, a snapshot or a PV (only
:func:`wbspawner.homes.gc.gc_expired` does, after the retention, once the new
claim is bound). A move is refused while a pod uses the claim. If the new claim
cannot be created or verified, the claim is put back on the old PV.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from wbspawner.errors import AwsError, KubeError
from wbspawner.homes import (
    HomeError,
    MoveFailedError,
    MoveRefusedError,
    rebind,
    steps,
)
from wbspawner.homes import objects as build
from wbspawner.homes.context import (
    STEPS,
    MoveContext,
    MoveRequest,
    Step,
    StepReport,
    Tools,
    refuse_if_running,
)
from wbspawner.homes.follow import HEARTBEAT_EVERY
from wbspawner.homes.policy import zone_of_pv
from wbspawner.homes.records import (
    HOME_USER_LABEL,
    MOVE_CLAIM,
    MOVE_HEARTBEAT,
    MOVE_ID,
    MOVE_STATE,
    MOVE_TO,
    ClaimApi,
    Obj,
    ThreadedVolumes,
    VolumeApi,
    Waits,
    WaitTimeoutError,
    annotations_of,
    claim_volume_name,
    name_of,
    volume_handle,
)

log = logging.getLogger(__name__)

_RUN: dict[Step, Callable[[Tools, MoveContext], Awaitable[StepReport]]] = {
    "retain": steps.step_retain,
    "snapshot": steps.step_snapshot,
    "volume": steps.step_volume,
    "pv": steps.step_pv,
    "claim": rebind.step_claim,
    "verify": rebind.step_verify,
    "record": rebind.step_record,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveResult:
    """The outcome of :meth:`HomeMover.run`."""

    status: Literal["moved", "already-there"]
    user: str
    claim: str
    zone: str
    """The zone the home is in now."""
    move_id: str | None = None
    old_pv: str | None = None
    old_volume: str | None = None
    old_zone: str | None = None
    snapshot_id: str | None = None
    new_pv: str | None = None
    new_volume: str | None = None
    retain_until: str | None = None
    steps: tuple[StepReport, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Located:
    """Where a home is before a move, and any unfinished move of it."""

    claim: Obj | None
    pv: Obj
    """The PV the move starts from (the claim's, or the unfinished move's old PV)."""
    zone: str
    move_id: str | None = None
    """The unfinished move to resume, found on the old PV (``None``: none)."""
    superseded: str | None = None
    """An unfinished move elsewhere that never switched the claim; it is replaced."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def locate(kube: ClaimApi, request: MoveRequest) -> Located:
    """Find the user's home and any unfinished move of it (read-only).

    Args:
        kube: the Kubernetes adapter.
        request: the move asked for.

    Returns:
        The claim, the PV the move starts from and its zone.

    Raises:
        MoveRefusedError: there is no bound EBS home, or an unfinished move to
            another zone has already switched the claim.
    """
    ns, claim_name = request.namespace, request.claim_name
    claim = await kube.get_pvc(ns, claim_name)
    unfinished = [
        pv
        for pv in await kube.list_pvs(HOME_USER_LABEL)
        if annotations_of(pv).get(MOVE_CLAIM) == f"{ns}/{claim_name}"
        and annotations_of(pv).get(MOVE_STATE) == "in-progress"
    ]
    if len(unfinished) > 1:
        names = ", ".join(sorted(name_of(p) for p in unfinished))
        raise MoveRefusedError(
            f"{claim_name} has several unfinished moves (PVs {names}); "
            "resolve them by hand"
        )
    if not unfinished:
        return await _locate_bound(kube, request, claim)
    pv = unfinished[0]
    ann = annotations_of(pv)
    zone = zone_of_pv(pv) or ""
    if ann.get(MOVE_TO, "") == request.target_zone:
        return Located(claim=claim, pv=pv, zone=zone, move_id=ann.get(MOVE_ID))
    if claim_volume_name(claim) != name_of(pv):
        raise MoveRefusedError(
            f"an unfinished move of {request.user}'s home to {ann.get(MOVE_TO)} "
            f"(move {ann.get(MOVE_ID)}) has already switched the claim; finish it "
            f"first with `wbspawner home move {request.user} --zone "
            f"{ann.get(MOVE_TO)}`"
        )
    # The claim never left the old PV: a move elsewhere may replace that one.
    return Located(claim=claim, pv=pv, zone=zone, superseded=ann.get(MOVE_ID))


async def _locate_bound(
    kube: ClaimApi, request: MoveRequest, claim: Obj | None
) -> Located:
    who = f"{request.user}'s home (claim {request.namespace}/{request.claim_name})"
    if claim is None:
        raise MoveRefusedError(f"{who} does not exist; it is made at the first spawn")
    pv_name = claim_volume_name(claim)
    if not pv_name:
        raise MoveRefusedError(
            f"{who} has no volume yet; it is created in the zone of the first spawn"
        )
    pv = await kube.get_pv(pv_name)
    if pv is None:
        raise MoveRefusedError(f"{who} names PV {pv_name}, which does not exist")
    if volume_handle(pv) is None:
        raise MoveRefusedError(f"{who} is on PV {pv_name}, which is not an EBS volume")
    zone = zone_of_pv(pv)
    if zone is None:
        raise MoveRefusedError(f"PV {pv_name} of {who} names no single zone")
    return Located(claim=claim, pv=pv, zone=zone)


class HomeMover:
    """Runs home moves over a Kubernetes and an EC2 adapter.

    Args:
        kube: the Kubernetes adapter.
        volumes: the EC2 adapter (synchronous; called in worker threads).
        waits: bounds of the waits.
        now: the wall clock (UTC), for records and move ids.
        sleep: sleeps between polls (awaitable).
        monotonic: the clock the waits are measured with.
        token: random characters for new move ids.
        on_step: called after each step (progress output; tests inject faults).
    """

    def __init__(
        self,
        kube: ClaimApi,
        volumes: VolumeApi,
        *,
        waits: Waits | None = None,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        token: Callable[[], str] = lambda: secrets.token_hex(3),
        on_step: Callable[[StepReport], None] | None = None,
    ) -> None:
        self.tools = Tools(
            kube=kube,
            volumes=ThreadedVolumes(volumes),
            waits=waits or Waits(),
            now=now,
            sleep=sleep,
            monotonic=monotonic,
        )
        self.token = token
        self.on_step = on_step

    async def start(self, request: MoveRequest) -> MoveContext | MoveResult:
        """Locate the home and open (or resume) a move.

        Nothing is written, except that an unfinished move elsewhere which a
        request for the home's own zone replaces is marked ``abandoned``.

        Args:
            request: the move.

        Returns:
            The context to run, or an ``already-there`` result.

        Raises:
            MoveRefusedError: no home, an unfinished move elsewhere, or the
                server is running.
        """
        kube = self.tools.kube
        where = await locate(kube, request)
        if where.superseded:
            log.warning(
                "move %s of %s to %s never switched the claim; it is replaced "
                "(its snapshot and volume stay, tagged with its id)",
                where.superseded,
                request.claim_name,
                annotations_of(where.pv).get(MOVE_TO),
            )
        if where.move_id is None and where.zone == request.target_zone:
            if where.superseded:
                await kube.patch_pv(
                    name_of(where.pv),
                    {"metadata": {"annotations": {MOVE_STATE: "abandoned"}}},
                )
            return MoveResult(
                status="already-there",
                user=request.user,
                claim=request.claim_name,
                zone=request.target_zone,
                new_pv=name_of(where.pv),
                new_volume=volume_handle(where.pv),
            )
        await refuse_if_running(kube, request)
        move_id = where.move_id or build.make_move_id(self.tools.now(), self.token())
        return MoveContext(
            request=request,
            move_id=move_id,
            old_pv=where.pv,
            old_zone=where.zone,
            resumed=where.move_id is not None,
        )

    async def run(self, request: MoveRequest) -> MoveResult:
        """Move a home, or resume an unfinished move of it.

        Args:
            request: the move.

        Returns:
            What was done (``already-there`` when the home is in the zone).

        Raises:
            MoveRefusedError: nothing was changed (see :meth:`start`).
            MoveFailedError: a step failed; the message says where the home is.
        """
        ctx = await self.start(request)
        if isinstance(ctx, MoveResult):
            return ctx
        log.info(
            "%s move %s of %s from %s to %s",
            "Resuming" if ctx.resumed else "Starting",
            ctx.move_id,
            request.claim_name,
            ctx.old_zone,
            request.target_zone,
        )
        reports: list[StepReport] = []
        try:
            await self._beat(ctx, strict=True)
        except KubeError as err:
            raise MoveRefusedError(
                f"the move of {request.user}'s home could not be marked as running "
                f"on PV {ctx.old_pv_name} ({err.message}); nothing was changed"
            ) from err
        beating = asyncio.ensure_future(self._keep_beating(ctx))
        try:
            for step in STEPS:
                try:
                    report = await _RUN[step](self.tools, ctx)
                except (AwsError, KubeError, HomeError, WaitTimeoutError) as err:
                    beating.cancel()
                    raise await self.failed(ctx, step, err) from err
                reports.append(report)
                log.info("move %s: %s: %s", ctx.move_id, step, report.detail)
                if self.on_step is not None:
                    self.on_step(report)
        finally:
            beating.cancel()
        return _result(ctx, tuple(reports))

    async def _beat(
        self, ctx: MoveContext, *, stop: bool = False, strict: bool = False
    ) -> None:
        """Renew (or, with ``stop``, drop) the heartbeat on the old PV.

        Spawns of the user are refused while it is fresh (a claim made mid-move
        would bind an empty volume); see :func:`wbspawner.homes.follow.move_underway`.
        A move does not start without it (``strict``: the error is raised); a
        renewal or a drop that fails is logged (the heartbeat then ages out).
        """
        beat = None if stop else build.iso(self.tools.now())
        patch = {"metadata": {"annotations": {MOVE_HEARTBEAT: beat}}}
        try:
            await self.tools.kube.patch_pv(ctx.old_pv_name, patch)
        except KubeError as err:
            if strict:
                raise
            log.warning("move %s: heartbeat not written: %s", ctx.move_id, err)

    async def _keep_beating(self, ctx: MoveContext) -> None:
        """Renew the heartbeat every :data:`follow.HEARTBEAT_EVERY` until cancelled.

        Real time (``asyncio.sleep``), not the injected sleep of the waits: the
        heartbeat is read by other processes against their clocks.
        """
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())
            await self._beat(ctx)

    async def failed(
        self, ctx: MoveContext, step: Step, err: Exception
    ) -> MoveFailedError:
        """Return the error of a failed step, saying where the home is now.

        Args:
            ctx: the move.
            step: the step that failed.
            err: what failed.

        Returns:
            The error to raise.
        """
        cause = getattr(err, "message", None) or str(err)
        request = ctx.request
        try:
            claim = await self.tools.kube.get_pvc(request.namespace, request.claim_name)
            bound: str | None = claim_volume_name(claim)
        except KubeError:
            bound = "?"
        if bound == ctx.new_pv_name:
            where = (
                f"The claim already uses the new volume in {request.target_zone}; "
                f"the old volume {ctx.old_volume_id} is kept"
            )
        elif bound == ctx.old_pv_name:
            where = (
                f"{request.user} stays on the old, unchanged volume "
                f"{ctx.old_volume_id} in {ctx.old_zone}"
            )
        else:
            where = (
                f"No volume was deleted: the old volume {ctx.old_volume_id} "
                f"(PV {ctx.old_pv_name}) is kept"
            )
        log.warning("move %s failed at %s: %s", ctx.move_id, step, cause)
        await self._beat(ctx, stop=True)  # no longer runs: spawns may go on
        return MoveFailedError(
            f"moving {request.user}'s home to {request.target_zone} failed at step "
            f"'{step}': {cause}. {where}. Run the same move again to resume it "
            f"(move {ctx.move_id}).",
            step=step,
        )


def _result(ctx: MoveContext, reports: tuple[StepReport, ...]) -> MoveResult:
    return MoveResult(
        status="moved",
        user=ctx.request.user,
        claim=ctx.request.claim_name,
        zone=ctx.request.target_zone,
        move_id=ctx.move_id,
        old_pv=ctx.old_pv_name,
        old_volume=ctx.old_volume_id,
        old_zone=ctx.old_zone,
        snapshot_id=ctx.snapshot.snapshot_id if ctx.snapshot else None,
        new_pv=ctx.new_pv_name,
        new_volume=ctx.new_volume.volume_id if ctx.new_volume else None,
        retain_until=ctx.retain_until,
        steps=reports,
    )
