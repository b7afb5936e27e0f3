"""Accounting: a simulated month of starts, stops and price changes, exactly."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from wbspawner.costs.accounting import (
    Start,
    UsageRecord,
    discard_failed_start,
    month_bounds,
    open_db,
    record,
    record_price_change,
    record_start,
    record_stop,
    report,
)

USERS = {"ada": "physics", "bob": "physics", "cy": "biology", "di": "biology"}
SIZES = {"small": ("cpu4", 0.0416), "large": ("mem64", 0.504), "gpu": ("gpu-t4", 0.526)}
MONTH_START = datetime(2026, 3, 1)


def simulate(url: str, seed: int) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """Play a generated month into the database; return expected cost per user/size.

    Expected costs are summed here, independently of the report: hours × price of
    every stretch, with prices as exact decimals.
    """
    rng = random.Random(seed)
    by_user: dict[str, Fraction] = dict.fromkeys(USERS, Fraction(0))
    by_size: dict[str, Fraction] = {}
    maker = open_db(url)
    for user, group in USERS.items():
        at = MONTH_START + timedelta(minutes=rng.randrange(0, 600))
        while True:
            size = rng.choice(sorted(SIZES))
            pool, base = SIZES[size]
            price = round(base * rng.uniform(0.3, 1.0), 6)
            run_for = timedelta(
                minutes=rng.randrange(5, 600), seconds=rng.randrange(60)
            )
            if at + run_for >= datetime(2026, 4, 1):
                break
            with maker() as session:  # a new session per event: as a hub would
                record_start(
                    session,
                    user,
                    size,
                    pool,
                    "spot",
                    "us-east-1a",
                    f"node-{rng.randrange(99)}",
                    price,
                    at,
                    group=group,
                )
            stretches = [(at, price)]
            if rng.random() < 0.4:  # the spot price changes while it runs
                change_at = at + run_for / 3
                price = round(base * rng.uniform(0.3, 1.0), 6)
                with maker() as session:
                    record_price_change(session, user, price, change_at)
                stretches.append((change_at, price))
            stop = at + run_for
            with maker() as session:
                assert record_stop(session, user, stop) is not None
            ends = [s[0] for s in stretches[1:]] + [stop]
            for (begin, p), end in zip(stretches, ends, strict=True):
                hours = Fraction(
                    (end - begin) // timedelta(microseconds=1), 3600 * 10**6
                )
                cost = hours * Fraction(str(p))
                by_user[user] += cost
                by_size[size] = by_size.get(size, Fraction(0)) + cost
            at = stop + timedelta(minutes=rng.randrange(30, 2000))
    return by_user, by_size


@pytest.mark.parametrize("seed", [1, 2], ids=["seed-1", "seed-2"])
def test_month_report_equals_hours_times_price_exactly(
    tmp_path: Path, seed: int
) -> None:
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    by_user, by_size = simulate(url, seed)
    now = datetime(2026, 5, 1)
    with open_db(url)() as session:  # reopened: nothing lost
        users = {r.key: r.cost for r in report(session, "user", "2026-03", now)}
        sizes = {r.key: r.cost for r in report(session, "size", "2026-03", now)}
        groups = {r.key: r.cost for r in report(session, "group", "2026-03", now)}
    assert users == {u: c for u, c in by_user.items() if c}
    assert sizes == by_size
    assert groups["physics"] == by_user["ada"] + by_user["bob"]
    assert sum(users.values()) > 0


def test_records_survive_closing_and_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.sqlite'}"
    t0 = datetime(2026, 3, 10, 9, 0)
    with open_db(url)() as session:
        record_start(
            session, "ada", "large", "mem64", "spot", "us-east-1a", "n1", 0.2, t0
        )
    with open_db(url)() as session:  # the hub restarted while ada's server ran
        record_stop(session, "ada", t0 + timedelta(hours=3))
    with open_db(url)() as session:
        (row,) = report(session, "user", "2026-03", datetime(2026, 4, 2))
    assert (row.key, row.hours, row.cost) == ("ada", 3, Fraction(3) * Fraction("0.2"))


def test_month_boundaries_split_a_running_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'split.sqlite'}"
    start = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    with open_db(url)() as session:
        record(
            session,
            Start(
                user="bob",
                size="small",
                pool="cpu4",
                capacity_type="on-demand",
                price_per_hour=1.0,
                at=start,
            ),
        )
        record_stop(session, "bob", start + timedelta(hours=5))
        march = report(session, "user", "2026-03", datetime(2026, 5, 1))
        april = report(session, "user", "2026-04", datetime(2026, 5, 1))
    assert [r.hours for r in march] == [2]
    assert [r.hours for r in april] == [3]


def test_dask_cluster_costs_workers_times_hours(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dask.sqlite'}"
    t0 = datetime(2026, 3, 2, 10, 0)
    with open_db(url)() as session:
        record(
            session,
            Start(
                user="cy",
                size="m64-quarter",
                pool="mem64",
                capacity_type="spot",
                price_per_hour=0.05,
                at=t0,
                kind="dask",
                name="c1",
                units=4,
            ),
        )
        record_price_change(
            session,
            "cy",
            0.05,
            t0 + timedelta(hours=1),
            kind="dask",
            name="c1",
            units=8,
        )
        record_stop(session, "cy", t0 + timedelta(hours=2), kind="dask", name="c1")
        (row,) = report(session, "user", "2026-03", datetime(2026, 4, 1))
    assert row.hours == 4 + 8
    assert row.cost == 12 * Fraction("0.05")


def test_bad_month_is_refused() -> None:
    with pytest.raises(ValueError, match="month must be YYYY-MM"):
        month_bounds("2026-13")


def test_an_in_memory_database_gets_its_tables_too() -> None:
    """Nothing else shares it: migrated over its own engine, not a second one."""
    with open_db("sqlite://")() as session:
        record_start(
            session, "ada", "small", "cpu4", "spot", "a", "n", 0.5, MONTH_START
        )
        (row,) = report(session, month="2026-03", now=MONTH_START + timedelta(hours=2))
    assert (row.key, row.hours) == ("ada", 2)


def test_a_failed_start_leaves_no_record_an_older_open_one_stays(
    tmp_path: Path,
) -> None:
    """Records are servers that became ready: the hub's failed start goes."""
    url = f"sqlite:///{tmp_path / 'failed.sqlite'}"
    t0 = datetime(2026, 3, 10, 9, 0)
    with open_db(url)() as session:
        record_start(session, "ada", "small", "cpu4", "spot", "a", "n1", 0.1, t0)
        started = t0 + timedelta(hours=1)
        assert discard_failed_start(session, "ada", started) == 0  # older: kept
        record_stop(session, "ada", started)
        record_start(session, "ada", "small", "cpu4", "spot", "a", "n2", 0.1, started)
        assert discard_failed_start(session, "ada", started) == 1
        rows = session.query(UsageRecord).all()
    assert [(r.node, r.stopped_at) for r in rows] == [("n1", started)]


def test_an_orphans_record_is_closed_not_one_started_since(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orphan.sqlite'}"
    t0 = datetime(2026, 3, 10, 9, 0)
    with open_db(url)() as session:
        record_start(session, "ada", "small", "cpu4", "spot", "a", "n1", 0.1, t0)
        before = t0 - timedelta(minutes=1)
        assert record_stop(session, "ada", t0, started_before=before) is None
        row = record_stop(session, "ada", t0, cause="orphan", started_before=t0)
    assert row is not None and row.stop_cause == "orphan"
