"""Pure decisions about where a home lives: zone choice, PV zone, move advice.

This module owns the rules, never the facts: callers observe warm nodes, spot
capacity and prices and free node-group room (the warmer's status, the spot
price feed, Auto Scaling groups) and pass them in as :class:`ZoneFacts`. Nothing
here does I/O or reads the clock.

- :func:`choose_zone`: the zone of a new home (first spawn), with a reason.
- :func:`zone_of_pv`: the zone an existing home is pinned to.
- :func:`should_offer_move`: when the home's zone cannot get a node, whether to
  offer (or, when the admin allows it, do) a move, and where to.
- :func:`no_capacity_message`: the user's message for a pod that cannot be
  placed because its home pins it to a zone without capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from wbspawner.homes.records import ZONE_KEYS
from wbspawner.model import HomeSettings, Pool, WarmStatus

VOLUME_CONFLICT = "volume node affinity conflict"
"""What kube-scheduler says when a bound PV pins a pod away from every node."""
_NO_NODE_HINTS = (
    VOLUME_CONFLICT,
    "didn't match Pod's node affinity/selector",
    "max node group size reached",
    "not ready for scale-up",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneFacts:
    """What is known about one zone for one pool, right now."""

    zone: str
    warm_nodes: int = 0
    """Ready nodes of the pool in this zone that no user holds (warm capacity)."""
    spot_available: bool | None = None
    """Whether spot capacity of the pool's types can be had here (``None``: unknown)."""
    spot_price: float | None = None
    """Lowest observed spot price of the pool's types here, USD per hour."""
    free_nodes: int | None = None
    """How many more nodes the pool's node groups here may start (``None``: unknown)."""

    @property
    def can_start(self) -> bool:
        """Whether a new node could be started here, as far as is known."""
        return self.free_nodes is None or self.free_nodes > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneChoice:
    """The zone picked for a home, and why (shown to admins and in logs)."""

    zone: str
    reason: str


MoveAction = Literal["none", "offer", "move"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveAdvice:
    """What to do about a home whose zone cannot get a node."""

    action: MoveAction
    """``none``: keep waiting; ``offer``: tell the user/admin; ``move``: move now."""
    target_zone: str | None
    reason: str


def _facts_by_zone(pool: Pool, candidates: Iterable[ZoneFacts]) -> list[ZoneFacts]:
    """Return one fact record per zone of the pool, in the pool's zone order."""
    given = {f.zone: f for f in candidates}
    return [given.get(z, ZoneFacts(zone=z)) for z in pool.zones]


def _tie_key(facts: ZoneFacts, default_zone: str | None) -> tuple[int, str]:
    return (0 if facts.zone == default_zone else 1, facts.zone)


def choose_zone(
    pool: Pool, candidates: Sequence[ZoneFacts], default_zone: str | None
) -> ZoneChoice:
    """Pick the zone of a new home for a user starting on ``pool``.

    Only the pool's zones count. The rules, first match wins:

    1. warm capacity: the zone with the most ready warm nodes;
    2. spot (for pools that buy spot): among zones where spot is available and a
       node may still start, the lowest known spot price;
    3. free capacity: the zone whose node groups may start the most nodes;
    4. the configured default zone, or the pool's first zone.

    Ties go to the default zone, then to the zone name.

    Args:
        pool: the pool of the size the user starts.
        candidates: observed facts per zone (zones without facts are unknown).
        default_zone: the admin's default zone (``homes.default_zone``).

    Returns:
        The zone and the rule that chose it.

    Raises:
        ValueError: the pool has no zones (the profiles checks prevent this).
    """
    if not pool.zones:
        raise ValueError(f"pool {pool.name} has no zones")
    facts = _facts_by_zone(pool, candidates)
    choice = _by_warm_nodes(pool, facts, default_zone)
    if choice is None and "spot" in pool.capacity_types:
        choice = _by_spot(facts, default_zone)
    if choice is None:
        choice = _by_free_nodes(facts, default_zone)
    if choice is not None:
        return choice
    if default_zone in pool.zones:
        return ZoneChoice(
            zone=str(default_zone), reason=f"configured default zone {default_zone}"
        )
    return ZoneChoice(
        zone=pool.zones[0], reason=f"first zone of pool {pool.name} (no facts known)"
    )


def _by_warm_nodes(
    pool: Pool, facts: list[ZoneFacts], default_zone: str | None
) -> ZoneChoice | None:
    warm = [f for f in facts if f.warm_nodes > 0]
    if not warm:
        return None
    best = min(warm, key=lambda f: (-f.warm_nodes, *_tie_key(f, default_zone)))
    return ZoneChoice(
        zone=best.zone,
        reason=f"warm capacity: {best.warm_nodes} ready {pool.display_name} "
        f"node(s) in {best.zone}",
    )


def _by_spot(facts: list[ZoneFacts], default_zone: str | None) -> ZoneChoice | None:
    spot = [f for f in facts if f.spot_available is not False and f.can_start]
    priced = [(f.spot_price, f) for f in spot if f.spot_price is not None]
    if priced:
        price, best = min(priced, key=lambda p: (p[0], *_tie_key(p[1], default_zone)))
        return ZoneChoice(
            zone=best.zone,
            reason=f"spot capacity at the lowest price (${price:.4f}/h) in {best.zone}",
        )
    known = [f for f in spot if f.spot_available]
    if not known:
        return None
    best = min(known, key=lambda f: _tie_key(f, default_zone))
    return ZoneChoice(zone=best.zone, reason=f"spot capacity available in {best.zone}")


def _by_free_nodes(
    facts: list[ZoneFacts], default_zone: str | None
) -> ZoneChoice | None:
    roomy = [(f.free_nodes, f) for f in facts if f.free_nodes and f.free_nodes > 0]
    if not roomy:
        return None
    free, best = min(roomy, key=lambda p: (-p[0], *_tie_key(p[1], default_zone)))
    return ZoneChoice(
        zone=best.zone,
        reason=f"free capacity: {free} more node(s) may start in {best.zone}",
    )


def zone_of_pv(pv: Mapping[str, Any]) -> str | None:
    """Return the zone a PersistentVolume pins its pods to.

    Reads ``spec.nodeAffinity.required.nodeSelectorTerms[].matchExpressions``
    with either zone key (``topology.kubernetes.io/zone`` or the EBS CSI
    driver's older ``topology.ebs.csi.aws.com/zone``) and operator ``In``; falls
    back to a zone label on the PV (in-tree volumes).

    Args:
        pv: a PersistentVolume as JSON.

    Returns:
        The zone, or ``None`` when the PV names none or several.
    """
    spec = pv.get("spec") or {}
    required = (spec.get("nodeAffinity") or {}).get("required") or {}
    zones: set[str] = set()
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") in ZONE_KEYS and expr.get("operator") == "In":
                zones.update(str(v) for v in expr.get("values") or [])
    if not zones:
        labels = (pv.get("metadata") or {}).get("labels") or {}
        zones.update(str(labels[k]) for k in ZONE_KEYS if labels.get(k))
    return zones.pop() if len(zones) == 1 else None


def has_capacity(pool: Pool, facts: ZoneFacts) -> bool:
    """Tell whether a user of ``pool`` could get a node in this zone now.

    Args:
        pool: the pool.
        facts: what is known about the zone.

    Returns:
        ``True`` with a warm node, or when a node may start and either spot is
        not known to be short or the pool may fall back to on-demand.
    """
    if facts.warm_nodes > 0:
        return True
    if facts.free_nodes is not None and facts.free_nodes <= 0:
        return False
    spot_only = tuple(pool.capacity_types) == ("spot",)
    return not (spot_only and facts.spot_available is False)


def should_offer_move(
    home_zone: str,
    pool: Pool,
    candidates: Sequence[ZoneFacts],
    settings: HomeSettings,
) -> MoveAdvice:
    """Decide what to do when a spawn cannot get a node in the home's zone.

    Args:
        home_zone: the zone of the user's home volume.
        pool: the pool of the size the user starts.
        candidates: observed facts per zone.
        settings: the admin's home settings (``auto_move``, ``default_zone``).

    Returns:
        ``none`` while the home's zone still has capacity, or when no other zone
        has any; otherwise the best other zone (by :func:`choose_zone`) with
        ``move`` when ``auto_move`` is on and ``offer`` when it is off.
    """
    facts = _facts_by_zone(pool, candidates)
    home = next((f for f in facts if f.zone == home_zone), ZoneFacts(zone=home_zone))
    if home_zone in pool.zones and has_capacity(pool, home):
        return MoveAdvice(
            action="none",
            target_zone=None,
            reason=f"{home_zone} may still get a {pool.display_name} node",
        )
    others = [f for f in facts if f.zone != home_zone and has_capacity(pool, f)]
    if not others:
        return MoveAdvice(
            action="none",
            target_zone=None,
            reason=f"no other zone of pool {pool.name} has capacity either",
        )
    rest = pool_with_zones(pool, tuple(f.zone for f in others))
    choice = choose_zone(rest, others, settings.default_zone)
    return MoveAdvice(
        action="move" if settings.auto_move else "offer",
        target_zone=choice.zone,
        reason=f"{home_zone} has no {pool.display_name} capacity; {choice.reason}",
    )


def pool_with_zones(pool: Pool, zones: tuple[str, ...]) -> Pool:
    """Return a copy of ``pool`` limited to ``zones`` (the pool is not changed).

    Args:
        pool: a pool.
        zones: the zones to keep.

    Returns:
        A new pool.
    """
    return replace(pool, zones=zones)


def no_capacity_message(
    scheduler_message: str,
    home_zone: str | None,
    pool: Pool,
    advice: MoveAdvice | None = None,
) -> str | None:
    """Explain to a user why their server waits for a node in their home's zone.

    Args:
        scheduler_message: a FailedScheduling / NotTriggerScaleUp event message
            or a pod's ``PodScheduled`` condition message.
        home_zone: the zone of the user's home, if it exists.
        pool: the pool of the size the user starts.
        advice: the move advice for this home, if one was made.

    Returns:
        The message, or ``None`` when the event is not about the home's zone.
    """
    if not home_zone or not any(h in scheduler_message for h in _NO_NODE_HINTS):
        return None
    text = (
        f"Your home directory is stored in zone {home_zone}, and no "
        f"{pool.display_name} node can be started there right now. "
    )
    if advice is not None and advice.action == "move" and advice.target_zone:
        return text + (
            f"Your home is being moved to {advice.target_zone}; start your server "
            "again in a few minutes. Your files are kept."
        )
    if advice is not None and advice.action == "offer" and advice.target_zone:
        return text + (
            f"Try again later, pick another size, or ask an admin to move your "
            f"home to {advice.target_zone} (your files are kept)."
        )
    return text + (
        "Try again later or pick another size; an admin can move your home to "
        "another zone (your files are kept)."
    )


def first_home_zone(
    pool: Pool,
    warm: WarmStatus | None,
    spot_prices: Mapping[tuple[str, str], float] | None,
    default_zone: str | None,
) -> ZoneChoice | None:
    """Pick the zone of a user's first home from what the hub knows, if anything.

    The hub sees the warmer's status (ready warm nodes per pool and zone) and the
    observed spot prices. With neither, and no configured default zone, there is
    no evidence to pin on: ``None`` lets the scheduler and autoscaler choose (the
    new volume is then made in the zone of the node the pod lands on).

    Args:
        pool: the pool of the size the user starts.
        warm: the warmer's status, or ``None`` when unknown.
        spot_prices: observed spot prices by ``(instance type, zone)``.
        default_zone: the admin's ``homes.default_zone``.

    Returns:
        The zone and why, or ``None`` to leave the zone open.
    """
    facts = []
    for zone in pool.zones:
        prices = [
            price
            for (name, where), price in (spot_prices or {}).items()
            if where == zone and name in pool.instance_types
        ]
        facts.append(
            ZoneFacts(
                zone=zone,
                warm_nodes=warm.in_pool(pool.name, zone) if warm else 0,
                spot_available=True if prices else None,
                spot_price=min(prices) if prices else None,
            )
        )
    evidence = any(f.warm_nodes or f.spot_price is not None for f in facts)
    if not evidence and default_zone not in pool.zones:
        return None
    return choose_zone(pool, facts, default_zone)
