"""The state of a home move: request, context, step reports, adapters and clocks.

This module owns the data every step of :mod:`wbspawner.homes.move` shares: what
was asked (:class:`MoveRequest`), what a running move knows so far
(:class:`MoveContext`), what a step reports (:class:`StepReport`), and the
adapters and clocks the steps use (:class:`Tools`). It also holds the one check
every step that touches the claim repeats: no pod may use it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from wbspawner.homes import MoveRefusedError
from wbspawner.homes import objects as build
from wbspawner.homes.records import (
    ClaimApi,
    Obj,
    SnapshotInfo,
    ThreadedVolumes,
    VolumeInfo,
    Waits,
    name_of,
    poll_until,
    volume_handle,
)
from wbspawner.spawn.manifests import HOME_PVC_TEMPLATE

T = TypeVar("T")

Step = Literal["retain", "snapshot", "volume", "pv", "claim", "verify", "record"]
STEPS: tuple[Step, ...] = (
    "retain",
    "snapshot",
    "volume",
    "pv",
    "claim",
    "verify",
    "record",
)
"""The steps of a move, in order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveRequest:
    """Move ``user``'s home (claim ``claim`` in ``namespace``) to ``target_zone``."""

    namespace: str
    user: str
    target_zone: str
    claim: str = ""
    """The claim's name; empty: ``home-<user>`` (the spawner's template)."""
    retention_days: int = 14
    """Keep the old volume and snapshot this long (``homes.retention_days``)."""

    @property
    def claim_name(self) -> str:
        """The user's claim name."""
        return self.claim or HOME_PVC_TEMPLATE.format(username=self.user)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepReport:
    """What one step did."""

    step: Step
    already_done: bool
    """The step found its work done (a resumed move)."""
    detail: str


@dataclass(slots=True, kw_only=True)
class MoveContext:
    """What a running move knows; filled in step by step."""

    request: MoveRequest
    move_id: str
    old_pv: Obj
    old_zone: str
    resumed: bool
    old_volume: VolumeInfo | None = None
    snapshot: SnapshotInfo | None = None
    new_volume: VolumeInfo | None = None
    retain_until: str | None = None

    @property
    def old_pv_name(self) -> str:
        """The old PV's name."""
        return name_of(self.old_pv)

    @property
    def old_volume_id(self) -> str:
        """The old EBS volume's id."""
        return volume_handle(self.old_pv) or ""

    @property
    def new_pv_name(self) -> str:
        """The name of the PV the move creates."""
        return build.target_pv_name(self.request.claim_name, self.move_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tools:
    """The adapters and clocks the steps use."""

    kube: ClaimApi
    volumes: ThreadedVolumes
    """EC2, called in worker threads."""
    waits: Waits
    now: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]
    monotonic: Callable[[], float]

    async def poll(
        self,
        check: Callable[[], Awaitable[tuple[bool, T]]],
        what: str,
        timeout: float,
    ) -> T:
        """Poll ``check`` within ``timeout`` (see :func:`records.poll_until`)."""
        return await poll_until(
            check,
            what=what,
            timeout_s=timeout,
            waits=self.waits,
            sleep=self.sleep,
            clock=self.monotonic,
        )


async def refuse_if_running(kube: ClaimApi, request: MoveRequest) -> None:
    """Refuse when a pod (the user's server) uses the claim.

    Args:
        kube: the Kubernetes adapter.
        request: the move.

    Raises:
        MoveRefusedError: a pod uses the claim.
    """
    pods = await kube.pods_using_claim(request.namespace, request.claim_name)
    if pods:
        raise MoveRefusedError(
            f"{request.user}'s server is running (pod {', '.join(sorted(pods))} "
            f"uses claim {request.claim_name}). Stop the server first (hub admin "
            f"page, or DELETE /hub/api/users/{request.user}/server), then run the "
            "move again"
        )


def done(step: Step, detail: str, already: bool) -> StepReport:
    """Return a step report."""
    return StepReport(step=step, already_done=already, detail=detail)


def reclaim_of(pv: Obj | None) -> str:
    """Return a PV's reclaim policy (empty when unknown)."""
    return str(
        ((pv or {}).get("spec") or {}).get("persistentVolumeReclaimPolicy") or ""
    )
