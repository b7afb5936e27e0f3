"""Homes follow capacity in the hub: the I/O around :mod:`wbspawner.homes.follow`.

This module owns what ``WorkbenchSpawner`` does when the autoscaler refuses a
node in the zone its user's home pins the server to: it reads the pool's Auto
Scaling groups (their room per zone), asks :func:`~wbspawner.homes.follow.
advice_after_refusal` what to do and, with ``homes.auto_move`` on, moves the
home with :class:`wbspawner.homes.move.HomeMover` (the code of ``wbspawner home
move``, not a second one). It also reads whether a move of a home runs now
(:func:`move_blocks_spawn`). It decides nothing itself.

The hub's AWS identity needs, besides what the spawner already uses,
``autoscaling:DescribeAutoScalingGroups`` and the EC2 calls of a move (describe,
create and tag snapshots and volumes) when ``auto_move`` is on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wbspawner.adapters.aws import make_clients, paginate
from wbspawner.adapters.kube import Kube
from wbspawner.errors import AwsError, KubeError, UserFacingError
from wbspawner.homes import HomeError, follow
from wbspawner.homes import objects as build
from wbspawner.homes.context import MoveRequest, StepReport
from wbspawner.homes.move import HomeMover
from wbspawner.homes.records import HOME_USER_LABEL
from wbspawner.homes.volumes import Volumes
from wbspawner.model import POOL_LABEL, HomeSettings, Pool, WarmStatus
from wbspawner.pools.nodes import NODE_TEMPLATE_PREFIX

POOL_TAG = f"{NODE_TEMPLATE_PREFIX}/label/{POOL_LABEL}"
"""The tag ``wbspawner pools apply`` puts on each group of a pool (its nodes' label)."""


async def move_blocks_spawn(
    kube: Kube, namespace: str, claim: str, user: str
) -> str | None:
    """Return why a spawn must wait for a move of the user's home, or ``None``.

    Args:
        kube: the Kubernetes adapter.
        namespace: the home claim's namespace.
        claim: the home claim's name.
        user: the hub user.

    Returns:
        The user's message (:func:`wbspawner.homes.follow.underway_message`).

    Raises:
        KubeError: the API refused or did not answer.
    """
    selector = f"{HOME_USER_LABEL}={build.label_value(user)}"
    pvs = await kube.list_pvs(selector)
    found = follow.move_underway(pvs, f"{namespace}/{claim}", datetime.now(UTC))
    if found is None:
        return None
    exists = found.running or await kube.get_pvc(namespace, claim) is not None
    return follow.underway_message(user, found, exists)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stuck:
    """A spawn the autoscaler refused a node for in its home's zone."""

    user: str
    namespace: str
    claim: str
    home_zone: str
    pool: Pool
    settings: HomeSettings
    warm: WarmStatus | None = None


def _rooms(autoscaling: Any, pool: Pool) -> list[follow.GroupRoom]:
    """Read the pool's groups (one zone each, as ``wbspawner pools`` makes them)."""
    groups = paginate(
        autoscaling,
        "describe_auto_scaling_groups",
        "AutoScalingGroups",
        Filters=[{"Name": f"tag:{POOL_TAG}", "Values": [pool.name]}],
    )
    return [
        follow.GroupRoom(
            zone=zones[0],
            max_size=int(g.get("MaxSize") or 0),
            desired=int(g.get("DesiredCapacity") or 0),
        )
        for g in groups
        if len(zones := list(g.get("AvailabilityZones") or [])) == 1
    ]


class HomeMoves:
    """Follows capacity for one spawn: advice, and the move when allowed.

    Args:
        kube: the Kubernetes adapter.
        region: the AWS region.
        endpoint_url: another AWS endpoint (a local moto server), or ``None``.
        note: shows a line on the spawn's progress page.
        log: the spawner's log.
    """

    def __init__(
        self,
        kube: Kube,
        *,
        region: str,
        endpoint_url: str | None,
        note: Callable[[str], None],
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.kube = kube
        self.region = region
        self.endpoint_url = endpoint_url
        self.note = note
        self.log = log

    async def after_refusal(
        self,
        stuck: Stuck,
        refusal: UserFacingError,
        stop_server: Callable[[], Awaitable[Any]],
    ) -> tuple[str | None, UserFacingError | None]:
        """Move the home where a node can start, or say where an admin could.

        Args:
            stuck: the refused spawn.
            refusal: the refusal as the user would read it.
            stop_server: deletes the pending pod (a move needs the claim free).

        Returns:
            The zone the home is in now (the spawn may go on there) and
            ``None``; or ``None`` and the refusal to show (offering the admin's
            command when another zone has capacity).
        """
        clients = make_clients(("ec2", "autoscaling"), self.region, self.endpoint_url)
        pool = stuck.pool
        try:
            rooms = await asyncio.to_thread(_rooms, clients["autoscaling"], pool)
        except AwsError as err:
            self.log.warning("Node groups of %s unknown: %s", pool.name, err.message)
            return None, refusal
        facts = follow.zone_facts(pool, rooms, stuck.warm)
        advice = follow.advice_after_refusal(
            stuck.home_zone, pool, facts, stuck.settings
        )
        self.log.info("Home of %s: %s (%s)", stuck.user, advice.action, advice.reason)
        target = advice.target_zone
        if advice.action != "move" or target is None:
            text = follow.offer_message(refusal.message, stuck.user, advice, pool)
            return None, UserFacingError(
                text, reason=refusal.reason, status_code=refusal.status_code
            )
        self.note(follow.moving_message(stuck.home_zone, target, pool))
        await stop_server()
        request = MoveRequest(
            namespace=stuck.namespace,
            user=stuck.user,
            target_zone=target,
            claim=stuck.claim,
            retention_days=stuck.settings.retention_days,
        )

        def step_done(report: StepReport) -> None:
            self.note(f"Moving your home to {target}: {report.step} done")

        mover = HomeMover(self.kube, Volumes(clients["ec2"]), on_step=step_done)
        try:
            await mover.run(request)
        except (HomeError, KubeError, AwsError) as err:
            why = err.message
            self.log.warning("Moving the home of %s failed: %s", stuck.user, why)
            text = follow.move_failed_message(stuck.home_zone, target, pool)
            return None, UserFacingError(
                text, reason="home-move", status_code=503, log_message=why
            )
        self.note(f"Your home is in {target} now; starting your server there")
        return target, None
