"""Table tests of the warmer's pure policy: schedules, homes, demand, capacity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wbspawner.catalog.pricing import hourly_cost
from wbspawner.model import (
    CostSettings,
    Pool,
    Resources,
    Shortage,
    Spawn,
    TimeWindow,
    WarmSchedule,
    WarmSettings,
)
from wbspawner.warmer.policy import PolicyOptions, WarmPlan, plan
from wbspawner.warmer.snapshot import ClusterSnapshot, PodInfo

NY = ZoneInfo("America/New_York")
A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"
WEEKDAYS = frozenset({1, 2, 3, 4, 5})


@pytest.fixture(scope="module")
def pools(make_pool: Callable[..., Pool]) -> dict[str, Pool]:
    def pool(name: str, price: float, capacity: tuple[str, ...]) -> Pool:
        return make_pool(
            name=name,
            display_name=name,
            instance_types=(f"{name}.type",),
            capacity_types=capacity,
            zones=(A, B, C),
            request=Resources(cpu_m=1000, memory_mib=1024),
            vcpu=2,
            memory_mib=2048,
            price_per_hour=price,
            max_nodes=5,
        )

    spot_first = ("spot", "on-demand")
    return {
        "mem64": pool("mem64", 0.504, spot_first),
        "cpu16": pool("cpu16", 0.126, spot_first),
        "mem512": pool("mem512", 4.032, ("on-demand", "spot")),
        "gpu": pool("gpu", 1.006, ("spot",)),
    }


def local(y: int, mo: int, d: int, h: int, mi: int = 0, tz: ZoneInfo = NY) -> datetime:
    """Return a wall-clock time in ``tz`` as UTC (as the clock gives it)."""
    return datetime(y, mo, d, h, mi, tzinfo=tz).astimezone(UTC)


WED_9 = local(2026, 11, 25, 9)  # Wednesday 09:00 New York (EST)


def window(days: set[int], start: str, end: str) -> TimeWindow:
    def minutes(t: str) -> int:
        h, m = t.split(":")
        return int(h) * 60 + int(m)

    return TimeWindow(
        days=frozenset(days), start_minute=minutes(start), end_minute=minutes(end)
    )


def sched(
    pool: str = "mem64",
    windows: tuple[TimeWindow, ...] = (window(set(WEEKDAYS), "08:00", "18:00"),),
    n: int = 1,
    zones: Any = "all",
    fallback: bool = True,
    name: str = "office",
) -> WarmSchedule:
    return WarmSchedule(
        name=name,
        pool=pool,
        windows=windows,
        nodes_per_zone=n,
        zones=zones,
        capacity_fallback=fallback,
    )


def user_pod(user: str, pool: str, zone: str) -> PodInfo:
    return PodInfo(
        name=f"jupyter-{user}",
        role="user",
        pool=pool,
        zone=zone,
        capacity_type="spot",
        node=f"node-{user}",
        running=True,
        created=WED_9 - timedelta(hours=1),
        user=user,
    )


@dataclass
class Case:
    schedules: tuple[WarmSchedule, ...] = ()
    now: datetime = WED_9
    expected: dict[tuple[str, str, str], int] = field(default_factory=dict)
    phrase: str = ""
    """Text that must appear in the plan's decisions."""
    timezone: str = "America/New_York"
    budget: float | None = None
    homes: dict[str, str] = field(default_factory=dict)
    user_pools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pods: tuple[PodInfo, ...] = ()
    spawns: tuple[Spawn, ...] = ()
    shortages: tuple[Shortage, ...] = ()
    mode: str = "placeholders"
    habits: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """User → minutes of the day of recorded starts."""
    habit_days: int = 28


def spot_all(pool: str, n: int = 1) -> dict[tuple[str, str, str], int]:
    return {(pool, z, "spot"): n for z in (A, B, C)}


def spawn(
    pool: str, zone: str, minutes_ago: float, user: str = "u", base: datetime = WED_9
) -> Spawn:
    return Spawn(
        uid=f"{user}-{minutes_ago}",
        user=user,
        pool=pool,
        zone=zone,
        at=base - timedelta(minutes=minutes_ago),
    )


def short(pool: str, zone: str, minutes_ago: float) -> Shortage:
    return Shortage(
        pool=pool,
        zone=zone,
        capacity_type="spot",
        at=WED_9 - timedelta(minutes=minutes_ago),
        message="InsufficientInstanceCapacity",
    )


FRI_NIGHT = (window({5}, "22:00", "06:00"),)
CASES = [
    pytest.param(
        Case(schedules=(sched(),), expected=spot_all("mem64"), phrase="Mon–Fri"),
        id="weekday-window-open-all-zones",
    ),
    pytest.param(
        Case(schedules=(sched(),), now=local(2026, 11, 25, 7, 59), phrase="closed"),
        id="before-window-nothing",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            now=local(2026, 11, 25, 8, 0),
            expected=spot_all("mem64"),
        ),
        id="window-start-inclusive",
    ),
    pytest.param(
        Case(schedules=(sched(),), now=local(2026, 11, 25, 18, 0), phrase="closed"),
        id="window-end-exclusive",
    ),
    pytest.param(
        Case(schedules=(sched(),), now=local(2026, 11, 28, 10), phrase="closed"),
        id="saturday-weekday-schedule-closed",
    ),
    pytest.param(
        Case(
            schedules=(sched(windows=(window({6, 7}, "10:00", "14:00"),)),),
            now=local(2026, 11, 29, 11),
            expected=spot_all("mem64"),
            phrase="Sat–Sun",
        ),
        id="weekend-schedule-sunday-open",
    ),
    pytest.param(
        Case(
            schedules=(sched(windows=FRI_NIGHT),),
            now=local(2026, 11, 28, 3),
            expected=spot_all("mem64"),
        ),
        id="wrap-past-midnight-saturday-early",
    ),
    pytest.param(
        Case(
            schedules=(sched(windows=FRI_NIGHT),),
            now=local(2026, 11, 27, 23),
            expected=spot_all("mem64"),
        ),
        id="wrap-past-midnight-friday-late",
    ),
    pytest.param(
        Case(schedules=(sched(windows=FRI_NIGHT),), now=local(2026, 11, 27, 3)),
        id="wrap-belongs-to-start-day-friday-early-closed",
    ),
    pytest.param(
        Case(schedules=(sched(windows=FRI_NIGHT),), now=local(2026, 11, 28, 6, 0)),
        id="wrap-end-exclusive-saturday-0600",
    ),
    pytest.param(
        Case(schedules=(sched(),), now=datetime(2026, 11, 25, 9, tzinfo=UTC)),
        id="timezone-0900-utc-is-0400-new-york-closed",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            now=datetime(2026, 11, 25, 9, tzinfo=UTC),
            timezone="UTC",
            expected=spot_all("mem64"),
        ),
        id="timezone-utc-open",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            now=datetime(2026, 7, 15, 12, 30, tzinfo=UTC),
            expected=spot_all("mem64"),
        ),
        id="summer-time-0830-edt-open",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            homes={"ann": A, "ben": C, "cat": B},
            user_pools={"ann": ("mem64",), "ben": ("mem64",), "cat": ("cpu16",)},
            expected={("mem64", A, "spot"): 1, ("mem64", C, "spot"): 1},
            phrase="homes of mem64 users",
        ),
        id="homes-zones-of-the-pools-users",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes", n=2),),
            homes={"ann": A, "ben": A, "dan": A, "eve": C},
            user_pools={u: ("mem64",) for u in ("ann", "ben", "dan", "eve")},
            pods=(user_pod("ann", "mem64", A), user_pod("ben", "mem64", A)),
            expected={("mem64", A, "spot"): 1, ("mem64", C, "spot"): 1},
            phrase="only 1 of its users",
        ),
        id="homes-capped-by-users-not-running",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            homes={"ann": A},
            user_pools={"ann": ("mem64",)},
            pods=(user_pod("ann", "mem64", A),),
            phrase="0 warm",
        ),
        id="homes-everyone-running-nothing-warm",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            homes={"ann": A, "ben": C},
            user_pools={"ann": ("mem64",), "ben": ("mem64",)},
            habits={"ann": (8 * 60 + 50, 12 * 60 + 55), "ben": (13 * 60 + 30,)},
            expected={("mem64", A, "spot"): 1},
            phrase="1 more usually start at other times",
        ),
        id="habits-warm-only-where-someone-usually-starts-now",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            homes={"ann": A, "ben": C},
            user_pools={"ann": ("mem64",), "ben": ("mem64",)},
            habits={"ann": (8 * 60 + 50,), "ben": (13 * 60 + 30,)},
            habit_days=0,
            expected={("mem64", A, "spot"): 1, ("mem64", C, "spot"): 1},
        ),
        id="habits-off-every-user-with-a-home-counts",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            homes={"ann": A, "new": C},
            user_pools={"ann": ("mem64",), "new": ("mem64",)},
            habits={"ann": (14 * 60,)},
            expected={("mem64", C, "spot"): 1},
            phrase="0 warm",
        ),
        id="habits-unknown-user-always-counts",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            now=local(2026, 11, 25, 9, 20),
            homes={"ann": A},
            user_pools={"ann": ("mem64",)},
            habits={"ann": (9 * 60,)},
            expected={("mem64", A, "spot"): 1},
        ),
        id="habits-margin-inclusive",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            now=local(2026, 11, 25, 9, 21),
            homes={"ann": A},
            user_pools={"ann": ("mem64",)},
            habits={"ann": (9 * 60,)},
            phrase="usually start at other times",
        ),
        id="habits-past-the-margin",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes", n=2),),
            homes={"ann": A, "ben": A},
            user_pools={"ann": ("mem64",), "ben": ("mem64",)},
            habits={"ann": (8 * 60 + 45,), "ben": (16 * 60,)},
            spawns=(spawn("mem64", A, 5, user="cat"),),
            expected={("mem64", A, "spot"): 1},
            phrase="but only 1 of its users here could still start",
        ),
        id="habits-cap-demand-too",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            homes={"ann": B, "ben": C},
            expected={("mem64", B, "spot"): 1, ("mem64", C, "spot"): 1},
            phrase="not known",
        ),
        id="homes-users-sizes-unknown-all-homes",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones="homes"),),
            expected={("mem64", A, "spot"): 1},
            phrase="new home",
        ),
        id="no-homes-first-zone",
    ),
    pytest.param(
        Case(
            schedules=(sched(zones=(B, "eu-west-1a")),),
            expected={("mem64", B, "spot"): 1},
        ),
        id="zone-list-drops-unknown-zones",
    ),
    pytest.param(
        Case(schedules=(sched(n=2),), expected=spot_all("mem64", 2)),
        id="two-per-zone",
    ),
    pytest.param(
        Case(
            schedules=(sched(n=2, name="a"), sched(n=1, name="b")),
            expected=spot_all("mem64", 2),
        ),
        id="overlapping-schedules-take-max-not-sum",
    ),
    pytest.param(
        Case(
            now=local(2026, 11, 25, 20),
            spawns=(
                spawn("cpu16", B, 10, base=local(2026, 11, 25, 20)),
                spawn("cpu16", B, 20, "v", base=local(2026, 11, 25, 20)),
            ),
            expected={("cpu16", B, "spot"): 1},
            phrase="2 spawn(s)",
        ),
        id="demand-outside-window-keeps-one",
    ),
    pytest.param(
        Case(spawns=(spawn("cpu16", B, 61),)),
        id="old-spawn-no-demand",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            spawns=(spawn("mem64", C, 5),),
            expected={**spot_all("mem64"), ("mem64", C, "spot"): 2},
        ),
        id="demand-adds-one-to-schedule",
    ),
    pytest.param(
        Case(
            spawns=(spawn("mem64", C, 5, "ann"),),
            homes={"ann": C},
            user_pools={"ann": ("mem64",)},
            pods=(user_pod("ann", "mem64", C),),
            phrase="could still start",
        ),
        id="demand-capped-when-all-users-running",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            shortages=(short("mem64", A, 3),),
            expected={
                ("mem64", A, "on-demand"): 1,
                ("mem64", B, "spot"): 1,
                ("mem64", C, "spot"): 1,
            },
            phrase="on-demand instead",
        ),
        id="spot-short-falls-back-to-on-demand",
    ),
    pytest.param(
        Case(
            schedules=(sched(fallback=False),),
            shortages=(short("mem64", A, 3),),
            expected={("mem64", B, "spot"): 1, ("mem64", C, "spot"): 1},
            phrase="fallback is off",
        ),
        id="spot-short-no-fallback-when-disabled",
    ),
    pytest.param(
        Case(
            schedules=(sched(pool="gpu"),),
            shortages=(short("gpu", B, 3),),
            expected={("gpu", A, "spot"): 1, ("gpu", C, "spot"): 1},
            phrase="no other capacity type",
        ),
        id="spot-short-pool-without-on-demand",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            shortages=(short("mem64", A, 16),),
            expected=spot_all("mem64"),
        ),
        id="old-shortage-expired",
    ),
    pytest.param(
        Case(
            schedules=(sched(pool="mem512", zones=(A,)),),
            expected={("mem512", A, "on-demand"): 1},
        ),
        id="on-demand-first-pool",
    ),
    pytest.param(
        Case(
            schedules=(sched(),),
            pods=(user_pod("ann", "mem64", A), user_pod("ben", "mem64", B)),
            expected=spot_all("mem64"),
        ),
        id="user-pods-are-not-warm-capacity",
    ),
    pytest.param(
        Case(
            schedules=(sched(pool="ghost"),),
            phrase="no pool",
        ),
        id="schedule-of-unknown-pool",
    ),
]


@pytest.fixture
def run_case(pools: dict[str, Pool]) -> Callable[[Case], WarmPlan]:
    """``run_case(case)``: the plan for a case of the table on these pools."""
    return lambda case: _run(pools, case)


def _run(pools: dict[str, Pool], case: Case) -> WarmPlan:
    settings = WarmSettings(
        timezone=case.timezone,
        mode=case.mode,  # type: ignore[arg-type]
        budget_per_hour=case.budget,
        demand_window_s=3600,
        habit_days=case.habit_days,
        habit_margin_min=20,
        schedules=case.schedules,
    )
    snapshot = ClusterSnapshot(
        taken_at=case.now,
        pods=case.pods,
        homes=MappingProxyType(case.homes),
        user_pools=MappingProxyType(case.user_pools),
        spawns=case.spawns,
        shortages=case.shortages,
        habits=MappingProxyType(case.habits),
    )
    return plan(pools, settings, snapshot, case.now)


@pytest.mark.parametrize("case", CASES)
def test_plan(
    run_case: Callable[[Case], WarmPlan], pools: dict[str, Pool], case: Case
) -> None:
    result = run_case(case)
    got = {(t.pool, t.zone, t.capacity_type): t.count for t in result.targets}
    assert got == case.expected
    text = "\n".join(d.message for d in result.decisions)
    assert case.phrase in text
    assert all(t.reason for t in result.targets)
    assert len(result.decisions) >= len(result.targets)
    expected_cost = sum(
        n * hourly_cost(pools[p], c, None, CostSettings(), (z,)).per_hour  # type: ignore[arg-type]
        for (p, z, c), n in case.expected.items()
    )
    assert result.cost_per_hour == pytest.approx(expected_cost)


def test_budget_drops_least_valuable_first(
    run_case: Callable[[Case], WarmPlan],
) -> None:
    """Over budget, the node with the fewest users per dollar goes first, said so."""
    users = {"ann": A, "ben": A, "cat": A, "dan": B}
    case = Case(
        schedules=(sched(pool="cpu16", zones="homes"), sched(zones="homes")),
        homes=users,
        user_pools={u: ("mem64", "cpu16") for u in users},
        budget=0.3,
    )
    result = run_case(case)
    got = {(t.pool, t.zone, t.capacity_type): t.count for t in result.targets}
    # four candidates: mem64 in A (3 users) and B (1 user), cpu16 in A and B
    assert got == {
        ("cpu16", A, "spot"): 1,
        ("cpu16", B, "spot"): 1,
        ("mem64", A, "spot"): 1,
    }
    assert result.cost_per_hour <= 0.3
    dropped = [d for d in result.decisions if "budget" in d.message]
    assert [(d.pool, d.zone) for d in dropped] == [("mem64", B)]
    assert "least valuable" in dropped[0].message


def test_budget_that_fits_drops_nothing(run_case: Callable[[Case], WarmPlan]) -> None:
    full = run_case(Case(schedules=(sched(),)))
    capped = run_case(Case(schedules=(sched(),), budget=full.cost_per_hour))
    assert capped.targets == full.targets
    assert not any("budget" in d.message for d in capped.decisions)


def test_asg_min_mode_counts_user_nodes(
    run_case: Callable[[Case], WarmPlan], pools: dict[str, Pool]
) -> None:
    """In asg-min mode the minimum is the nodes users hold plus the warm ones."""
    case = Case(
        schedules=(sched(zones=(A,)),),
        pods=(user_pod("ann", "mem64", A), user_pod("ben", "mem64", A)),
        mode="asg-min",
    )
    result = run_case(case)
    mins = {(t.pool, t.zone, t.capacity_type): t.min_size for t in result.asg_min}
    assert mins[("mem64", A, "spot")] == 3
    assert mins[("mem64", B, "spot")] == 0
    assert mins[("cpu16", A, "on-demand")] == 0
    assert len(mins) == sum(
        len(p.zones) * len(p.capacity_types) for p in pools.values()
    )


def test_placeholders_mode_has_no_asg_minimums(
    run_case: Callable[[Case], WarmPlan],
) -> None:
    assert run_case(Case(schedules=(sched(),))).asg_min == ()


def test_observed_spot_price_is_used(pools: dict[str, Pool]) -> None:
    settings = WarmSettings(timezone="UTC", schedules=(sched(zones=(A,)),))
    snapshot = ClusterSnapshot(
        taken_at=WED_9, spot_prices=MappingProxyType({("mem64.type", A): 0.2})
    )
    result = plan(pools, settings, snapshot, WED_9, options=PolicyOptions())
    assert result.cost_per_hour == pytest.approx(0.2)
    assert "$0.20/h" in result.targets[0].reason
