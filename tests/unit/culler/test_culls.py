"""Culls in the accounting: marking the spawner's stop, and what culling saved."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

from wbspawner.costs.accounting import open_db, record_start, record_stop
from wbspawner.costs.culls import mark_cull, savings
from wbspawner.costs.page import costs_data, parse_query, render_costs

T = datetime(2026, 12, 7, 15, 0)
UTC_TZ = ZoneInfo("UTC")


def start(session, user: str, at: datetime, price: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    record_start(session, user, "xxlarge", "mem256", "spot", "z", "n", price, at)


def test_the_spawners_stop_is_marked_as_a_cull(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with maker() as s:
        start(s, "ada", T)
        record_stop(s, "ada", T + timedelta(hours=1), cause="stop")
        row = mark_cull(s, "ada", "", T + timedelta(minutes=59), T + timedelta(hours=1))
        assert row is not None and row.stop_cause == "cull"


def test_an_earlier_stop_is_not_marked(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with maker() as s:
        start(s, "ada", T)
        record_stop(s, "ada", T + timedelta(hours=1), cause="stop")
        assert (
            mark_cull(s, "ada", "", T + timedelta(hours=2), T + timedelta(hours=2))
            is None
        )


def test_a_record_still_open_is_closed_as_a_cull(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with maker() as s:
        start(s, "ada", T)
        row = mark_cull(s, "ada", "", T, T + timedelta(hours=1))
        assert row is not None
        assert (row.stop_cause, row.stopped_at) == ("cull", T + timedelta(hours=1))


def test_saving_runs_until_the_next_start_or_the_end_of_the_day(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with maker() as s:
        start(s, "ada", T, price=2.0)
        record_stop(s, "ada", T + timedelta(hours=1), cause="cull")  # 16:00
        start(s, "ada", T + timedelta(hours=2, minutes=30))  # back at 17:30
        start(s, "bob", T, price=1.0)
        record_stop(s, "bob", T + timedelta(hours=2), cause="cull")  # 17:00, not back
        start(s, "cy", T)
        record_stop(s, "cy", T + timedelta(hours=1), cause="stop")  # not a cull
        found = savings(s, UTC_TZ, "2026-12", now=datetime(2026, 12, 20))
    assert [(x.user, x.hours, x.cost) for x in found] == [
        ("ada", Fraction(3, 2), Fraction(3)),
        ("bob", Fraction(7), Fraction(7)),  # to midnight
    ]


def test_a_cull_not_followed_by_a_start_counts_up_to_now(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with maker() as s:
        start(s, "ada", T, price=2.0)
        record_stop(s, "ada", T + timedelta(hours=1), cause="cull")
        found = savings(s, UTC_TZ, None, now=T + timedelta(hours=1, minutes=30))
    assert [x.cost for x in found] == [Fraction(1)]


def test_the_end_of_the_day_is_the_sites() -> None:
    from wbspawner.costs.culls import _end_of_day

    assert _end_of_day(T, ZoneInfo("America/New_York")) == datetime(2026, 12, 8, 5, 0)


def test_the_costs_page_shows_the_saving_and_its_definition(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with maker() as s:
        start(s, "ada", T, price=2.0)
        record_stop(s, "ada", T + timedelta(hours=1), cause="cull")
        found = savings(s, UTC_TZ, "2026-12", now=T + timedelta(hours=3))
    page = render_costs([], "2026-12", "user", savings=found)
    assert "Culling saved $4.00 this month" in page
    assert "until its user started a server again" in page
    query = parse_query("2026-12", "user", T)
    assert costs_data([], query, "USD", found)["culling"]["saved"] == 4.0
