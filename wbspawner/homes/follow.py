"""Homes follow capacity: pure decisions when a spawn cannot start in its home's zone.

This module owns what the hub decides and says when the autoscaler has refused a
node for a spawn whose home pins it to one zone (``homes.auto_move``, issue 18
part 4), and how it knows that a move of a user's home is under way:

- :func:`zone_facts`: what the pool's Auto Scaling groups (and the warmer) show
  per zone, as :class:`~wbspawner.homes.policy.ZoneFacts`;
- :func:`advice_after_refusal`: move, offer or nothing, the home's zone being
  known to be short (the autoscaler has just refused it);
- :func:`moving_message`, :func:`offer_message`, :func:`move_failed_message`:
  what the user reads on the progress page; :func:`move_command` is the admin's
  command line;
- :func:`move_underway`: whether a move of a claim runs now, from the marker a
  move keeps fresh on the old PV (:data:`~wbspawner.homes.records.MOVE_HEARTBEAT`),
  and :func:`underway_message`, why a spawn is refused meanwhile.

Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wbspawner.homes.policy import MoveAdvice, ZoneFacts, should_offer_move
from wbspawner.homes.records import (
    MOVE_CLAIM,
    MOVE_HEARTBEAT,
    MOVE_ID,
    MOVE_STATE,
    MOVE_TO,
    annotations_of,
)
from wbspawner.model import HomeSettings, Pool, WarmStatus
from wbspawner.timestamps import parse_time

MARKER_TTL = timedelta(minutes=10)
"""How long a move's heartbeat counts as a move that runs. A running move renews
it every :data:`HEARTBEAT_EVERY`; one that crashed stops renewing it, and once it
is this old spawns are no longer refused for it."""
HEARTBEAT_EVERY = timedelta(minutes=1)
"""How often a running move renews its heartbeat."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRoom:
    """One Auto Scaling group of a pool, as AWS describes it."""

    zone: str
    max_size: int
    desired: int


def zone_facts(
    pool: Pool, groups: Iterable[GroupRoom], warm: WarmStatus | None
) -> list[ZoneFacts]:
    """Return what is known per zone of the pool: warm nodes and room to grow.

    Args:
        pool: the pool of the size a user starts.
        groups: the pool's node groups (spot and on-demand, every zone).
        warm: the warmer's last report, if any.

    Returns:
        One record per zone of the pool; a zone without any group has no room.
    """
    room: dict[str, int] = dict.fromkeys(pool.zones, 0)
    for group in groups:
        if group.zone in room:
            room[group.zone] += max(0, group.max_size - group.desired)
    return [
        ZoneFacts(
            zone=zone,
            warm_nodes=warm.in_pool(pool.name, zone) if warm else 0,
            free_nodes=free,
        )
        for zone, free in room.items()
    ]


def advice_after_refusal(
    home_zone: str,
    pool: Pool,
    facts: Sequence[ZoneFacts],
    settings: HomeSettings,
) -> MoveAdvice:
    """Decide about a home whose zone the autoscaler has just refused a node in.

    The refusal outweighs what the groups show for the home's zone (their room
    says nothing of spot or on-demand capacity AWS cannot give), so that zone
    counts as short; the other zones are judged by their facts.

    Args:
        home_zone: the zone of the user's home.
        pool: the pool of the size the user starts.
        facts: what is known per zone (:func:`zone_facts`).
        settings: the admin's home settings (``auto_move``, ``default_zone``).

    Returns:
        ``move`` (auto_move on) or ``offer`` with the best other zone, or
        ``none`` when no other zone has capacity.
    """
    short = ZoneFacts(zone=home_zone, free_nodes=0)
    others = [f for f in facts if f.zone != home_zone]
    return should_offer_move(home_zone, pool, [short, *others], settings)


def move_command(user: str, zone: str) -> str:
    """Return the admin's command that moves ``user``'s home to ``zone``."""
    return f"wbspawner home move {user} --zone {zone}"


def moving_message(home_zone: str, target_zone: str, pool: Pool) -> str:
    """Return the progress message of an automatic move."""
    return (
        f"Moving your home to {target_zone}: no {pool.display_name} node can "
        f"start in {home_zone}. Your files are copied; this takes a few minutes."
    )


def offer_message(refusal: str, user: str, advice: MoveAdvice, pool: Pool) -> str:
    """Return a refusal's message with the move an admin can make, if any.

    Args:
        refusal: why no node can start (the autoscaler's refusal, explained).
        user: the user whose home it is.
        advice: the advice after the refusal (``offer`` names a zone).
        pool: the pool of the size the user starts.

    Returns:
        The message; unchanged when there is no zone to offer.
    """
    if advice.action != "offer" or not advice.target_zone:
        return refusal
    zone = advice.target_zone
    return (
        f"{refusal} A {pool.display_name} node can start in {zone}: an admin can "
        f"move your home there (your files are kept) with "
        f"`{move_command(user, zone)}`."
    )


def move_failed_message(home_zone: str, target_zone: str, pool: Pool) -> str:
    """Return the user's message when an automatic move failed (nothing is lost)."""
    return (
        f"No {pool.display_name} node can start in {home_zone}, and moving your "
        f"home to {target_zone} failed. Your files are safe (nothing was "
        "deleted). Try "
        "again in a few minutes or pick another size; an admin has the details "
        "in the hub's log."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Underway:
    """An unfinished move of a user's home, found on its old PV."""

    move_id: str
    target_zone: str
    running: bool
    """Its heartbeat is fresh: the move runs now (else it stopped unfinished)."""


def move_underway(
    pvs: Iterable[Mapping[str, Any]],
    claim: str,
    now: datetime,
    ttl: timedelta = MARKER_TTL,
) -> Underway | None:
    """Return the unfinished move of a claim, if any, and whether it runs.

    A move marks the old PV ``in-progress`` and renews a heartbeat on it while
    it runs; it marks the PV ``done`` when it ends and drops the heartbeat when
    it fails. A heartbeat older than ``ttl`` (a move whose process died) or
    missing means the move does not run, and it no longer blocks spawns; running
    the same move again resumes it and writes a fresh one.

    Args:
        pvs: the user's PVs.
        claim: ``namespace/name`` of the user's home claim.
        now: the current time (UTC).
        ttl: how long a heartbeat counts.

    Returns:
        The move (a running one first), or ``None``.
    """
    found = []
    for pv in pvs:
        ann = annotations_of(pv)
        if ann.get(MOVE_CLAIM) != claim or ann.get(MOVE_STATE) != "in-progress":
            continue
        beat = parse_time(ann.get(MOVE_HEARTBEAT))
        running = beat is not None and now - beat < ttl
        found.append(
            Underway(
                move_id=str(ann.get(MOVE_ID) or ""),
                target_zone=str(ann.get(MOVE_TO) or ""),
                running=running,
            )
        )
    found.sort(key=lambda u: (not u.running, u.move_id))
    return found[0] if found else None


def underway_message(
    user: str, underway: Underway | None, claim_exists: bool
) -> str | None:
    """Return why a spawn must wait for a move of the home, or ``None`` to go on.

    A claim made while a move runs would bind a new, empty volume; so would one
    made after a move stopped between deleting the old claim and creating the
    new one.

    Args:
        user: the user.
        underway: the unfinished move of their home (:func:`move_underway`).
        claim_exists: whether the home claim exists now.

    Returns:
        The user's message, or ``None`` when the spawn may go on.
    """
    if underway is None:
        return None
    zone = underway.target_zone
    if underway.running:
        return (
            f"Your home is being moved to {zone}; try again in a few minutes. "
            "Your files are kept."
        )
    if claim_exists:
        return None
    return (
        f"A move of your home to {zone} stopped before it finished; your files "
        f"are kept. Ask an admin to finish it with `{move_command(user, zone)}`."
    )
