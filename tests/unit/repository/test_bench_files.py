"""The benchmark's shipped inputs: the workday trace and its warm settings.

``bench/bench_warmer.py`` replays ``bench/traces/workday.yaml`` with the
shipped profiles whose warm section is ``bench/traces/workday-warm.yaml``;
these tests keep both files valid and the trace reproducible from its seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.paths import REPO
from wbspawner.catalog.instances import load_catalog
from wbspawner.profiles.loader import load_profiles

sys.path.insert(0, str(REPO / "bench"))

import make_workday_trace  # noqa: E402
from bench_warmer import bench_profiles  # noqa: E402
from warm_replay import load_trace  # noqa: E402

TRACES = REPO / "bench" / "traces"


def test_the_trace_is_what_its_seed_makes() -> None:
    shipped = yaml.safe_load((TRACES / "workday.yaml").read_text())
    assert shipped == make_workday_trace.make_trace()


def test_the_trace_loads_and_its_sizes_exist() -> None:
    trace = load_trace(TRACES / "workday.yaml")
    profiles = load_profiles([REPO / "profiles"], load_catalog())
    people = {s.user for s in trace.sessions}
    assert 35 <= len(people) <= 45
    assert {profiles.size(s).slug for s in trace.sizes} == set(trace.sizes)
    assert len(set(trace.homes.values())) == 3, "homes spread over three zones"
    assert all(0 <= s.start_s < s.stop_s <= trace.end_s for s in trace.sessions)


def test_the_warm_settings_validate_with_the_shipped_profiles(tmp_path: Path) -> None:
    into = bench_profiles(REPO / "profiles", TRACES / "workday-warm.yaml", tmp_path)
    profiles = load_profiles([into], load_catalog())
    warmed = {s.pool for s in profiles.warm.schedules}
    trace = load_trace(TRACES / "workday.yaml")
    used = {profiles.pool_of(profiles.size(s)).name for s in trace.sizes}
    # every pool the team uses is warmed, around its users' habits
    assert used <= warmed
    assert profiles.warm.habit_days > 0
    assert profiles.warm.budget_per_hour is not None


def test_people_have_habits_and_new_people_have_none() -> None:
    shipped = yaml.safe_load((TRACES / "workday.yaml").read_text())
    users = shipped["users"]
    new = [u for u in users if u["home"] is None]
    assert new and all(not u["past_starts"] for u in new)
    known = [u for u in users if u["home"] is not None]
    assert all(len(u["past_starts"]) >= 10 for u in known)
    # most of today's arrivals are near a time the person started at before
    # (the day varies by about 12 minutes); a warmer that learns habits can
    # know them, one that does not sees only the team's spread
    came = [u for u in known if u["sessions"]]

    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    near = [
        u
        for u in came
        if min(
            abs(minutes(u["sessions"][0][:5]) - minutes(p)) for p in u["past_starts"]
        )
        <= 20
    ]
    assert len(near) >= 0.9 * len(came)


def test_seeded_days_vary_the_team_and_keep_their_shares(tmp_path: Path) -> None:
    days = make_workday_trace.seeded_days(5)
    assert len({d.seed for d in days}) == 5
    assert all(20 <= d.team <= 200 for d in days)
    assert len({d.team for d in days}) > 1, "team sizes vary"
    for var in days:
        users = make_workday_trace.make_trace(var=var)["users"]
        came = [u for u in users if u["sessions"]]
        assert abs(len(came) - var.team) <= 3  # the mix rounds per size
        new = [u for u in users if u["home"] is None]
        assert len(new) == round(var.new_share * len(came))
        changed = [u for u in users if u["last_size"] not in (None, u["size"])]
        assert len(changed) <= round(var.change_share * len(came))
        trace = load_trace(
            make_workday_trace.write_trace(tmp_path / f"{var.seed}.yaml", var)
        )
        assert all(0 <= s.start_s < s.stop_s <= trace.end_s for s in trace.sessions)
    assert make_workday_trace.seeded_days(5) == days, "reproducible from the seed"
    assert {d.team for d in make_workday_trace.seeded_days(3, max_team=20)} == {20}


def test_the_days_summary_keeps_the_mean_and_the_worst_day() -> None:
    import warm_days

    def day(n: int, ready: float, cost: float) -> dict[str, object]:
        result = {
            "spawns": 10,
            "never_ready": 0,
            "ready_within_15s": ready,
            "on_running_node": ready,
            "compute_cost_usd": cost,
            "nodes_started": 5,
            "node_hours": 9.0,
            "wait_s": {"p50": 1.0, "p90": 2.0},
        }
        none = {**result, "ready_within_15s": 0.0, "compute_cost_usd": 10.0}
        rows = warm_days.day_rows({"none": none, "oracle": result})
        return {"day": n, "results": rows}

    days = [day(1, 1.0, 10.5), day(2, 0.9, 11.0), day(3, 0.95, 10.2)]
    got = warm_days.summary(days)["oracle"]
    assert got["mean"]["ready_within_15s"] == 0.95
    assert got["mean"]["extra_cost_vs_none"] == round((0.05 + 0.1 + 0.02) / 3, 3)
    assert got["worst"] == {
        "ready_within_15s": 0.9,
        "ready_day": 2,
        "extra_cost_vs_none": 0.1,
        "cost_day": 2,
    }
    days[0]["results"]["oracle"]["extra_cost_vs_none"] = 0.2
    worst = warm_days.summary(days)["oracle"]["worst"]
    assert (worst["ready_day"], worst["cost_day"]) == (2, 1)
    assert warm_days.summary(days)["none"]["mean"]["extra_cost_vs_none"] == 0


def test_the_oracle_holds_the_spawns_own_node_with_its_image() -> None:
    from warm_oracle import Oracle, lead_time

    from wbspawner.model import CAPACITY_LABEL, POOL_LABEL, ZONE_LABEL

    trace = load_trace(TRACES / "workday.yaml")
    profiles = load_profiles([REPO / "profiles"], load_catalog())
    assert lead_time(180, 60, 10) >= 250
    oracle = Oracle(None, trace, profiles, lead_time(180, 60, 10))  # type: ignore[arg-type]
    for i, s in enumerate(trace.sessions[:20]):
        pod = oracle._pod(s, i)
        size = profiles.size(s.size)
        assert size is not None
        pool = profiles.pool_of(size)
        selector = pod["spec"]["nodeSelector"]
        assert selector[POOL_LABEL] == pool.name
        assert selector[CAPACITY_LABEL] == "spot"
        assert selector[ZONE_LABEL] == (s.home or pool.zones[0])
        images = {c["image"] for c in pod["spec"]["containers"]}
        assert next(i.image for i in size.images if i.default) in images
        assert pod["spec"]["priorityClassName"] == "wbspawner-placeholder"
