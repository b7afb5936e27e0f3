"""Explaining the wait: Kubernetes events as messages a person reads.

This module owns the words on the spawn-pending page. A pod waiting for a whole
node goes through the scheduler ("FailedScheduling"), the Cluster Autoscaler
("TriggeredScaleUp", "NotTriggerScaleUp"), the node's kubelet (image pull,
container start) and the volume attach. Each event becomes one sentence that
says what happens and, when something is wrong, what to do.

It also decides when waiting is pointless: :func:`capacity_failure` returns a
failure message when the autoscaler has said it cannot start a node for the pod.

Pure: events are plain ``dict``s as the Kubernetes API returns them (camelCase).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wbspawner.model import Pool, WaitTimes
from wbspawner.naming import parse_group_name, zone_region
from wbspawner.spawn.waits import estimate, wait_words

_ZONE = re.compile(r"\b([a-z]{2}(?:-gov)?-[a-z]+-\d[a-z])\b")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A name in a message (an autoscaler message lists groups as ``{name 0->1 …}``)."""
_NODE = re.compile(r"\bto (\S+?)\.?$")
_IMAGE = re.compile(r'image "([^"]+)"')
_NO_REASONS = re.compile(r"pod didn't trigger scale-up:?")
"""A refusal that names no group's reason: the autoscaler has no node group."""

Event = Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressContext:
    """What the messages say about the spawn: the node it waits for."""

    node_name: str
    """The pool's display name, e.g. ``64 GiB``."""
    pool: str
    """The pool's name, for admins, e.g. ``mem64``."""
    boot_s: float
    """Usual seconds until a new node of the pool has the pod (observed, or stated)."""
    start_s: float = 0.0
    """Usual seconds from a new node to the pod being Ready (images, home volume)."""
    zone: str | None = None
    """Zone the pod is pinned to (its home's), if any."""
    zones: tuple[str, ...] = ()
    """The pool's zones, to recognise a zone in a node group's name."""

    @classmethod
    def for_pool(
        cls,
        pool: Pool,
        zone: str | None = None,
        times: WaitTimes | None = None,
    ) -> ProgressContext:
        """Return the context of a spawn on ``pool``.

        Args:
            pool: the pool of the chosen size.
            zone: the home's zone, if the pod is pinned to one.
            times: observed cold starts (:mod:`wbspawner.spawn.waits`), or
                ``None``: the stated figures.

        Returns:
            The context.
        """
        wait = estimate(pool, zone, times)
        return cls(
            node_name=pool.display_name,
            pool=pool.name,
            boot_s=wait.boot_s,
            start_s=wait.start_s,
            zone=zone,
            zones=pool.zones,
        )


def _where(ctx: ProgressContext, zone: str | None = None) -> str:
    chosen = zone or ctx.zone
    return f" in {chosen}" if chosen else ""


def _scheduling(message: str, ctx: ProgressContext) -> str:
    if "volume node affinity conflict" in message and ctx.zone:
        return (
            f"Your home is in {ctx.zone}; waiting for a {ctx.node_name} node "
            "in that zone"
        )
    return f"Waiting for a free {ctx.node_name} node{_where(ctx)}"


def zone_in_group_name(message: str, pool: str, zones: tuple[str, ...]) -> str | None:
    """Return the zone a scale-up message's node group is in, when it says.

    The pool's groups are named as ``wbspawner pools`` names them
    (:func:`wbspawner.naming.parse_group_name` reads them, ``…-mem64-b-spot``);
    a group made otherwise may carry the whole zone (``…-us-east-1b-spot``).

    Args:
        message: a ``TriggeredScaleUp`` event message.
        pool: the pool the pod waits for.
        zones: the pool's zones.

    Returns:
        The zone, or ``None`` when the message does not show one.
    """
    region = zone_region(zones[0]) if zones else None
    if region is not None:
        for word in _WORD.findall(message):
            group = parse_group_name(word, (pool,), zones, region)
            if group is not None:
                return group.zone
    match = _ZONE.search(message)
    return match.group(1) if match else None


def _scale_up(message: str, ctx: ProgressContext) -> str:
    zone = zone_in_group_name(message, ctx.pool, ctx.zones)
    return (
        f"Starting a {ctx.node_name} node{_where(ctx, zone)}, "
        f"usually {wait_words(ctx.boot_s)}"
    )


def _no_scale_up(message: str, ctx: ProgressContext) -> str:
    failure = _no_scale_up_failure(message, ctx)
    return failure or f"No new {ctx.node_name} node can be started yet; still trying"


def _no_scale_up_failure(message: str, ctx: ProgressContext) -> str | None:
    """Return the failure a NotTriggerScaleUp event means, or ``None``."""
    if "wouldn't fit if a new node is added" in message:
        return (
            f"This size asks for more than a new {ctx.node_name} node can hold, so "
            f"no node can be started for it. Please tell an admin (pool {ctx.pool})."
        )
    if "max node group size reached" in message:
        return (
            f"All {ctx.node_name} nodes{_where(ctx)} are in use and the pool has "
            "reached its maximum size. Try again later or pick another size; an "
            f"admin can raise the limit of pool {ctx.pool}."
        )
    if "not ready for scale-up" in message or "backoff" in message.lower():
        return (
            f"AWS has no {ctx.node_name} capacity{_where(ctx)} right now. Try again "
            "in a few minutes or pick another size"
            + ("; an admin can move your home to another zone." if ctx.zone else ".")
        )
    if _NO_REASONS.fullmatch(message.strip()):
        # No group to list a reason for: the autoscaler knows no node group at
        # all (none made yet, or AWS has lost them).
        return (
            f"No node group can start a {ctx.node_name} node{_where(ctx)}. Please "
            "tell an admin: the cluster autoscaler finds no node groups at all "
            f"(pool {ctx.pool})."
        )
    if any(w in message for w in ("didn't match", "node affinity", "untolerated")):
        # Every group is of another pool (their taints) or in another zone.
        return (
            f"No node group can start a {ctx.node_name} node{_where(ctx)}. Please "
            f"tell an admin: pool {ctx.pool} has no node group there."
        )
    return None


def _image(message: str, pulled: bool, ctx: ProgressContext) -> str:
    match = _IMAGE.search(message)
    image = match.group(1) if match else "the image"
    if pulled:
        return f"Image {image} is ready"
    if ctx.start_s <= 0:
        return f"Downloading {image} (the first start on a new node takes a minute)"
    return (
        f"Downloading {image} (on a new node, your server is usually ready "
        f"{wait_words(ctx.start_s)} after the node)"
    )


def describe_event(event: Event, ctx: ProgressContext) -> str:
    """Return one progress message for a pod event.

    Args:
        event: a core/v1 Event as a ``dict``.
        ctx: what the pod waits for.

    Returns:
        One sentence; unknown events keep their own message.
    """
    reason = str(event.get("reason") or "")
    message = str(event.get("message") or "")
    if reason == "FailedScheduling":
        return _scheduling(message, ctx)
    if reason == "TriggeredScaleUp":
        return _scale_up(message, ctx)
    if reason == "NotTriggerScaleUp":
        return _no_scale_up(message, ctx)
    if reason == "Scheduled":
        node = _NODE.search(message)
        on = f" ({node.group(1)})" if node else ""
        return f"Got a {ctx.node_name} node{on}"
    if reason in ("Pulling", "Pulled"):
        return _image(message, reason == "Pulled", ctx)
    if reason == "Started":
        return "Your server is starting; waiting for it to answer"
    if reason == "Created":
        return "Container created"
    if reason in ("FailedAttachVolume", "FailedMount"):
        if "Multi-Attach" in message:
            return (
                "Your home volume is still attached to a previous node; AWS "
                "releases it within about 6 minutes"
            )
        return "Attaching your home volume"
    if reason == "SuccessfulAttachVolume":
        return "Your home volume is attached"
    if reason == "Preempted":
        return "The server was replaced by a more important one; please start again"
    return message or reason


def capacity_failure(events: Sequence[Event], ctx: ProgressContext) -> str | None:
    """Return why no node can be started for the pod, if the autoscaler says so.

    Only the latest autoscaling or scheduling outcome counts: a later scale-up or
    a successful schedule clears an earlier refusal.

    Args:
        events: the pod's events, oldest first.
        ctx: what the pod waits for.

    Returns:
        A failure message with what to do, or ``None`` while there is hope.
    """
    for event in reversed(events):
        reason = event.get("reason")
        if reason in ("TriggeredScaleUp", "Scheduled", "Started", "Pulling"):
            return None
        if reason == "NotTriggerScaleUp":
            return _no_scale_up_failure(str(event.get("message") or ""), ctx)
    return None


_ZONE_SHORT = ("max node group size reached", "not ready for scale-up", "backoff")
"""Refusals that say the pinned zone's groups cannot start a node (at their size
limit, or backed off after AWS had no capacity), which another zone may not share."""


def zone_is_short(events: Sequence[Event]) -> bool:
    """Tell whether the latest autoscaler refusal is about the pod's zone.

    A pod pinned to its home's zone is refused when that zone's groups are at
    their maximum size or backed off (AWS had no spot nor on-demand capacity);
    moving the home to another zone may cure that. A size that fits no node, or
    a cluster without node groups, is not cured by a move.

    Args:
        events: the pod's events, oldest first.

    Returns:
        Whether the latest outcome is such a refusal.
    """
    for event in reversed(events):
        reason = event.get("reason")
        if reason in ("TriggeredScaleUp", "Scheduled", "Started", "Pulling"):
            return False
        if reason == "NotTriggerScaleUp":
            message = str(event.get("message") or "").lower()
            if "wouldn't fit" in message:
                return False
            return any(hint in message for hint in _ZONE_SHORT)
    return False


def timeout_message(events: Sequence[Event], ctx: ProgressContext, seconds: int) -> str:
    """Return what to tell a user whose server did not start in time.

    Args:
        events: the pod's events, oldest first.
        ctx: what the pod waited for.
        seconds: the start timeout.

    Returns:
        A message naming the last thing that happened and what to do.
    """
    failure = capacity_failure(events, ctx)
    if failure:
        return failure
    minutes = max(1, round(seconds / 60))
    last = describe_event(events[-1], ctx) if events else None
    tail = f" The last step was: {last}." if last else ""
    return (
        f"Your {ctx.node_name} server did not start within {minutes} minutes."
        f"{tail} Try again, or pick another size if this keeps happening."
    )
