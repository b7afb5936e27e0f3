"""How many nodes to keep warm, per pool × zone × capacity type, and why.

This module owns the warmer's decision, :func:`plan`: a pure function of the
pools, the admin's warm settings, a :class:`~wbspawner.warmer.snapshot.
ClusterSnapshot` and the time. Every decision carries a sentence an admin can
read on the status page:

1. **Schedules**: an open window (in the settings' time zone, wrapping past
   midnight when it ends before it starts) asks for ``nodes_per_zone`` warm
   nodes in its zones: a list, ``all`` of the pool's, or ``homes`` (zones where
   the pool's users have homes; the first zone while nobody has one, because a
   new home is made where a node is warm). With ``homes``, no more nodes are kept
   in a zone than users of the pool there who are not running now and, with
   ``habit_days``, who usually start around now (within ``habit_margin_min`` of
   a recorded start; users without recorded starts always count).
2. **Demand**: spawns of a pool in a zone within ``demand_window_s`` keep one
   more warm node there (also outside the windows).
3. **Capacity**: the pool's preferred capacity type, unless it is short in the
   zone; then the next one when the schedule allows a fallback, or nothing.
4. **Budget**: above ``budget_per_hour`` the least valuable nodes go first
   (fewest users who could use them and recent spawns per dollar).

Nothing is warm outside the windows without demand. No I/O, no clock: ``now``
is passed in. Prices come from :mod:`wbspawner.catalog.pricing` only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from wbspawner.catalog.pricing import format_price, hourly_cost
from wbspawner.model import (
    CapacityType,
    CostSettings,
    Pool,
    TimeWindow,
    WarmSchedule,
    WarmSettings,
)
from wbspawner.warmer.schedule import (
    HabitWindow,
    candidates,
    describe_window,
    habit_window,
    open_window,
    schedule_zones,
)
from wbspawner.warmer.snapshot import ClusterSnapshot

Mode = Literal["placeholders", "asg-min"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceholderTarget:
    """Keep ``count`` warm nodes of a pool in a zone, bought one way."""

    pool: str
    zone: str
    capacity_type: CapacityType
    count: int
    reason: str
    """Why, in words, for the status page and the log."""
    price_per_hour: float
    """What one warm node costs, USD per hour."""

    @property
    def cost_per_hour(self) -> float:
        """Return what the target's nodes cost per hour."""
        return self.count * self.price_per_hour


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One decision of the policy, for a pool (and zone), in words."""

    pool: str
    zone: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AsgMinTarget:
    """``asg-min`` mode: the MinSize one Auto Scaling group should have."""

    pool: str
    zone: str
    capacity_type: CapacityType
    min_size: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmPlan:
    """What the warmer wants now, with the reasons and what it costs."""

    at: datetime
    mode: Mode
    targets: tuple[PlaceholderTarget, ...]
    """Warm nodes wanted (only counts above zero)."""
    decisions: tuple[Decision, ...]
    """Every decision, including the ones that keep nothing warm."""
    cost_per_hour: float
    """USD per hour of the targets."""
    budget_per_hour: float | None
    asg_min: tuple[AsgMinTarget, ...] = ()
    """``asg-min`` mode: MinSize of every group of the warmed pools."""

    def count(self, pool: str, zone: str, capacity: CapacityType | None = None) -> int:
        """Return the warm nodes wanted for a pool in a zone (``capacity``: of a type).

        Returns:
            The count.
        """
        return sum(
            t.count
            for t in self.targets
            if t.pool == pool
            and t.zone == zone
            and (capacity is None or t.capacity_type == capacity)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyOptions:
    """Knobs of the policy that are not in the profiles."""

    cost: CostSettings = field(default_factory=CostSettings)
    """How to price nodes (spot discount when no spot price was observed)."""
    shortage_ttl_s: float = 900.0
    """How long a capacity shortage signal counts."""


@dataclass(slots=True)
class _Want:
    """What one pool × zone accumulates while planning (private, mutable)."""

    count: int = 0
    reasons: list[str] = field(default_factory=list)
    fallback: bool = True
    value: float = 1.0
    """Users who could use a warm node here plus twice the recent spawns."""


# --------------------------------------------------------------- the plan


def _say(decisions: list[Decision], pool: str, zone: str | None, text: str) -> None:
    decisions.append(Decision(pool=pool, zone=zone, message=text))


def _scheduled(
    pools: Mapping[str, Pool],
    settings: WarmSettings,
    snapshot: ClusterSnapshot,
    now: datetime,
    habit: HabitWindow | None,
    decisions: list[Decision],
) -> dict[tuple[str, str], _Want]:
    local = now.astimezone(ZoneInfo(settings.timezone))
    wants: dict[tuple[str, str], _Want] = {}
    for schedule in settings.schedules:
        pool = pools.get(schedule.pool)
        if pool is None:
            _say(decisions, schedule.pool, None, f"schedule {schedule.name}: no pool")
            continue
        window = open_window(schedule, local)
        if window is None:
            spans = "; ".join(describe_window(w) for w in schedule.windows)
            closed = f"schedule {schedule.name} is closed ({spans} {settings.timezone})"
            _say(decisions, pool.name, None, closed)
            continue
        zones, how = schedule_zones(schedule, pool, snapshot)
        for zone in zones:
            _schedule_zone(schedule, window, pool, zone, how, snapshot, habit, wants)
    return wants


def _schedule_zone(
    schedule: WarmSchedule,
    window: TimeWindow,
    pool: Pool,
    zone: str,
    how: str,
    snapshot: ClusterSnapshot,
    habit: HabitWindow | None,
    wants: dict[tuple[str, str], _Want],
) -> None:
    want = wants.setdefault((pool.name, zone), _Want())
    count = schedule.nodes_per_zone
    text = (
        f"schedule {schedule.name} ({describe_window(window)}) keeps {count} in {how}"
    )
    users = candidates(pool.name, zone, snapshot)
    due = candidates(pool.name, zone, snapshot, habit)
    if schedule.zones == "homes" and due is not None and users is not None:
        if due < count:
            count = due
            text += (
                f", but only {due} of its users with homes here "
                "could still start a server"
            )
            if due < users:
                text += f" around now ({users - due} more usually start at other times)"
        users = due
    want.reasons.append(text)
    want.count = max(want.count, count)
    want.fallback = want.fallback and schedule.capacity_fallback
    if users is not None:
        want.value = float(max(users, 1))


def _add_demand(
    pools: Mapping[str, Pool],
    settings: WarmSettings,
    snapshot: ClusterSnapshot,
    now: datetime,
    habit: HabitWindow | None,
    wants: dict[tuple[str, str], _Want],
) -> None:
    since = now - timedelta(seconds=settings.demand_window_s)
    recent = Counter(
        (s.pool, s.zone)
        for s in snapshot.spawns
        if s.at >= since and s.zone and s.pool in pools
    )
    minutes = settings.demand_window_s / 60
    for (pool_name, zone), n in sorted(recent.items()):
        if zone is None or zone not in pools[pool_name].zones:
            continue
        want = wants.setdefault((pool_name, zone), _Want())
        extra = 1
        text = f"{n} spawn(s) in the last {minutes:.0f} min: one more warm"
        users = candidates(pool_name, zone, snapshot, habit)
        if users is not None and want.count + extra > users:
            extra = max(users - want.count, 0)
            text += f", but only {users} of its users here could still start"
        want.count += extra
        want.value += 2.0 * n
        want.reasons.append(text)


def _capacity(
    pool: Pool,
    zone: str,
    want: _Want,
    snapshot: ClusterSnapshot,
    now: datetime,
    ttl_s: float,
) -> tuple[CapacityType | None, str]:
    since = now - timedelta(seconds=ttl_s)
    short = {
        s.capacity_type: s
        for s in snapshot.shortages
        if s.pool == pool.name and s.zone == zone and s.at >= since
    }
    order = pool.capacity_types or ("on-demand",)
    first = order[0]
    if first not in short:
        return first, first
    signal = short[first]
    why = f"{first} is short here ({signal.message})"
    if not want.fallback:
        return None, f"{why}; capacity fallback is off, so nothing is kept warm"
    for other in order[1:]:
        if other not in short:
            return other, f"{why}: {other} instead"
    return None, f"{why} and no other capacity type of the pool is available"


def plan(
    pools: Mapping[str, Pool],
    settings: WarmSettings,
    snapshot: ClusterSnapshot,
    now: datetime,
    *,
    options: PolicyOptions | None = None,
) -> WarmPlan:
    """Decide the warm nodes per pool × zone × capacity type, with reasons.

    Args:
        pools: the pools by name.
        settings: the admin's warm settings (schedules, budget, mode).
        snapshot: what the cluster looks like.
        now: the current time (aware).
        options: pricing and signal knobs.

    Returns:
        The plan.
    """
    opts = options or PolicyOptions()
    decisions: list[Decision] = []
    habit = habit_window(settings, now)
    wants = _scheduled(pools, settings, snapshot, now, habit, decisions)
    _add_demand(pools, settings, snapshot, now, habit, wants)
    targets: list[PlaceholderTarget] = []
    values: dict[tuple[str, str], float] = {}
    for (pool_name, zone), want in sorted(wants.items()):
        pool = pools[pool_name]
        capacity, why = _capacity(pool, zone, want, snapshot, now, opts.shortage_ttl_s)
        reason = "; ".join(want.reasons)
        if want.count <= 0 or capacity is None:
            extra = "" if capacity is not None else f"; {why}"
            _say(decisions, pool_name, zone, f"0 warm: {reason}{extra}")
            continue
        price = hourly_cost(pool, capacity, snapshot.spot_prices, opts.cost, (zone,))
        text = f"{reason}; {why} at {format_price(price.per_hour)}"
        target = PlaceholderTarget(
            pool=pool_name,
            zone=zone,
            capacity_type=capacity,
            count=want.count,
            reason=text,
            price_per_hour=price.per_hour,
        )
        targets.append(target)
        values[(pool_name, zone)] = want.value
    targets = _cap_budget(targets, values, settings.budget_per_hour, decisions)
    for t in targets:
        _say(decisions, t.pool, t.zone, f"{t.count} warm: {t.reason}")
    return WarmPlan(
        at=now,
        mode=settings.mode,
        targets=tuple(targets),
        decisions=tuple(decisions),
        cost_per_hour=sum(t.cost_per_hour for t in targets),
        budget_per_hour=settings.budget_per_hour,
        asg_min=_asg_min(pools, targets, snapshot)
        if settings.mode == "asg-min"
        else (),
    )


def _cap_budget(
    targets: Sequence[PlaceholderTarget],
    values: Mapping[tuple[str, str], float],
    budget: float | None,
    decisions: list[Decision],
) -> list[PlaceholderTarget]:
    """Drop the least valuable warm nodes per dollar until the budget holds."""
    total = sum(t.cost_per_hour for t in targets)
    if budget is None or total <= budget + 1e-9:
        return list(targets)
    counts = {(t.pool, t.zone): t.count for t in targets}
    by_key = {(t.pool, t.zone): t for t in targets}

    def worth(key: tuple[str, str]) -> tuple[float, float, str, str]:
        # the k-th node of a pool × zone is worth 1/k of the first
        t = by_key[key]
        per_dollar = values[key] / counts[key] / max(t.price_per_hour, 1e-6)
        return (per_dollar, -t.price_per_hour, t.pool, t.zone)

    while total > budget + 1e-9:
        key = min((k for k, n in counts.items() if n > 0), key=worth)
        t = by_key[key]
        counts[key] -= 1
        total -= t.price_per_hour
        message = (
            f"budget {format_price(budget)}: dropped one warm {t.capacity_type} node "
            f"({format_price(t.price_per_hour)}), the least valuable per dollar "
            f"(value {values[key]:g})"
        )
        _say(decisions, t.pool, t.zone, message)
    return [
        replace(t, count=n, reason=f"{t.reason}; {t.count - n} dropped for budget")
        if n != t.count
        else t
        for t in targets
        if (n := counts[(t.pool, t.zone)]) > 0
    ]


def _asg_min(
    pools: Mapping[str, Pool],
    targets: Sequence[PlaceholderTarget],
    snapshot: ClusterSnapshot,
) -> tuple[AsgMinTarget, ...]:
    """Return MinSize per group: the pool's minimum, or its users plus the warm nodes.

    A raised minimum only keeps spare nodes when it counts the nodes users
    already hold, so it follows them; Cluster Autoscaler never goes below it.
    """
    busy = Counter(
        (p.pool, p.zone, p.capacity_type)
        for p in snapshot.user_pods()
        if p.node is not None
    )
    warm = {(t.pool, t.zone, t.capacity_type): t.count for t in targets}
    out: list[AsgMinTarget] = []
    groups = [
        (p, z, c) for p in pools.values() for z in p.zones for c in p.capacity_types
    ]
    for pool, zone, cap in groups:  # every group, so a raised minimum comes down
        n_warm = warm.get((pool.name, zone, cap), 0)
        users = busy.get((pool.name, zone, cap), 0)
        size = max(pool.min_nodes, users + n_warm if n_warm else 0)
        reason = f"{users} user node(s) + {n_warm} warm" if n_warm else "no warm nodes"
        out.append(
            AsgMinTarget(
                pool=pool.name,
                zone=zone,
                capacity_type=cap,
                min_size=min(size, pool.max_nodes),
                reason=f"{reason}; the pool's minimum is {pool.min_nodes}",
            )
        )
    return tuple(out)
