"""Recording user servers from the spawner: facts from the node, price, idempotence.

Each test uses its own SQLite file in a temporary directory; the clock is fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from wbspawner.catalog.pricing import hourly_cost
from wbspawner.costs.accounting import (
    MICRO,
    Start,
    UsageRecord,
    open_db,
    report,
    to_micro,
)
from wbspawner.hub.accounting import (
    Accounting,
    NodeFacts,
    Server,
    node_facts,
    record_server_start,
    usage_start,
)
from wbspawner.model import GroupBudget, Profiles

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
LOG = logging.getLogger("test-cost-hooks")


def node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def bob_large(profiles: Profiles, name: str = "") -> Server:
    return Server("bob", name, "large", profiles.pools["mem64"], ("jupyter-users",))


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


def reader(result: dict[str, Any] | None) -> Callable[[], Any]:
    async def read() -> dict[str, Any] | None:
        return result

    return read


def rows(url: str) -> list[UsageRecord]:
    with open_db(url)() as session:
        return list(session.query(UsageRecord).order_by(UsageRecord.id))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param(
            {"wbspawner.io/capacity": "spot", "topology.kubernetes.io/zone": "a1"},
            NodeFacts(name="n1", zone="a1", capacity_type="spot"),
            id="wbspawner-label",
        ),
        pytest.param(
            {"eks.amazonaws.com/capacityType": "ON_DEMAND"},
            NodeFacts(name="n1", zone="", capacity_type="on-demand"),
            id="eks-label",
        ),
        pytest.param(
            {"karpenter.sh/capacity-type": "spot"},
            NodeFacts(name="n1", zone="", capacity_type="spot"),
            id="karpenter-label",
        ),
        pytest.param({}, NodeFacts(name="n1", zone="", capacity_type=None), id="none"),
    ],
)
def test_node_facts_from_labels(labels: dict[str, str], expected: NodeFacts) -> None:
    assert node_facts(node("n1", labels)) == expected


def test_node_facts_of_an_unknown_node() -> None:
    assert node_facts(None) == NodeFacts(name="", zone="", capacity_type=None)


@pytest.mark.parametrize(
    ("capacity", "spot", "zone", "expected"),
    [
        pytest.param("on-demand", None, "us-east-1b", 0.504, id="on-demand-catalogue"),
        pytest.param(
            "spot",
            {("r5.2xlarge", "us-east-1b"): 0.15, ("r5.2xlarge", "us-east-1a"): 0.11},
            "us-east-1b",
            0.15,
            id="spot-observed-in-the-nodes-zone",
        ),
        pytest.param(
            "spot",
            {("r6i.2xlarge", "us-east-1a"): 0.12},
            "us-east-1b",
            0.12,
            id="spot-observed-elsewhere-as-the-form-shows",
        ),
        pytest.param("spot", None, "us-east-1b", 0.504 * 0.35, id="spot-estimated"),
        pytest.param(None, None, "", 0.504 * 0.35, id="unlabelled-node-first-type"),
    ],
)
def test_usage_start_prices_with_pricing(
    profiles: Profiles,
    capacity: Any,
    spot: dict[tuple[str, str], float] | None,
    zone: str,
    expected: float,
) -> None:
    facts = NodeFacts(name="ip-1", zone=zone, capacity_type=capacity)
    start = usage_start(bob_large(profiles), facts, profiles, spot, T0)
    assert start.price_per_hour == pytest.approx(expected, abs=1e-12)
    assert (start.user, start.size, start.pool, start.group) == (
        "bob",
        "large",
        "mem64",
        "jupyter-users",
    )
    assert start.capacity_type == (capacity or "spot")
    assert (start.zone, start.node, start.at) == (zone, "ip-1", T0)


def test_recorded_price_is_the_forms_price_without_observations(
    profiles: Profiles,
) -> None:
    pool = profiles.pools["mem64"]
    facts = NodeFacts(name="ip-1", zone="us-east-1b", capacity_type="spot")
    start = usage_start(bob_large(profiles), facts, profiles, None, T0)
    shown = hourly_cost(pool, "spot", None, profiles.cost)
    assert start.price_per_hour == shown.per_hour


def bob_start(at: datetime, node: str, price: float = 0.2) -> Start:
    return Start(
        user="bob",
        size="large",
        pool="mem64",
        capacity_type="spot",
        price_per_hour=price,
        at=at,
        node=node,
    )


def test_same_run_is_not_recorded_twice(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with maker() as session:
        row, new = record_server_start(session, bob_start(datetime(2026, 5, 1), "n1"))
        again = bob_start(datetime(2026, 5, 2), "n1", price=0.3)
        same, new_again = record_server_start(session, again)
        assert (new, new_again) == (True, False)
        assert same.id == row.id
        assert same.price_micro_per_hour == to_micro(0.2)
        assert session.query(UsageRecord).count() == 1


def test_a_new_run_closes_the_stale_record(tmp_path: Path) -> None:
    maker = open_db(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with maker() as session:
        record_server_start(session, bob_start(datetime(2026, 5, 1), "n1"))
        _, new = record_server_start(session, bob_start(datetime(2026, 5, 2), "n2"))
        assert new
        stale, fresh = session.query(UsageRecord).order_by(UsageRecord.id).all()
        assert stale.stopped_at == datetime(2026, 5, 2)
        assert fresh.stopped_at is None


async def test_start_and_stop_are_recorded_exactly(
    tmp_path: Path, profiles: Profiles
) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    clock = Clock(T0)
    costs = Accounting(url, LOG, clock)
    labels = {"wbspawner.io/capacity": "spot", "topology.kubernetes.io/zone": "z-b"}
    spot = {("r5.2xlarge", "z-b"): 0.1234}
    row = await costs.started(
        bob_large(profiles), profiles, spot, reader(node("ip-9", labels))
    )
    assert row is not None
    clock.advance(hours=2, minutes=30)
    closed = await costs.stopped("bob")
    assert closed is not None and closed.id == row.id
    (saved,) = rows(url)
    assert (saved.node, saved.zone, saved.capacity_type) == ("ip-9", "z-b", "spot")
    assert saved.price_micro_per_hour == 123400
    assert saved.stopped_at - saved.started_at == timedelta(hours=2, minutes=30)
    with open_db(url)() as session:
        (line,) = report(session, by="user", month="2026-05")
    assert line.cost == Fraction(5, 2) * Fraction(123400, MICRO)


async def test_a_start_the_hub_gave_up_on_leaves_no_record(
    tmp_path: Path, profiles: Profiles
) -> None:
    """Its pod ran (the record was written), then the hub gave up (a timeout, a
    server that never answered): the record goes, an earlier run's stays."""
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    clock = Clock(T0)
    costs = Accounting(url, LOG, clock)
    labels = {"topology.kubernetes.io/zone": "z-b"}
    await costs.started(bob_large(profiles), profiles, None, reader(node("n1", labels)))
    clock.advance(hours=1)
    await costs.stopped("bob")
    began = clock()
    clock.advance(minutes=5)
    await costs.started(bob_large(profiles), profiles, None, reader(node("n2", labels)))
    assert await costs.failed_start("bob", "", began) == 1
    (kept,) = rows(url)
    assert kept.node == "n1" and kept.stopped_at is not None


async def test_stop_without_a_start_is_fine(tmp_path: Path) -> None:
    costs = Accounting(f"sqlite:///{tmp_path / 'c.sqlite'}", LOG, Clock(T0))
    assert await costs.stopped("nobody") is None


async def test_start_twice_counts_once(tmp_path: Path, profiles: Profiles) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    clock = Clock(T0)
    costs = Accounting(url, LOG, clock)
    read = reader(node("ip-1", {"wbspawner.io/capacity": "on-demand"}))
    await costs.started(bob_large(profiles), profiles, None, read)
    clock.advance(hours=1)
    await costs.started(bob_large(profiles), profiles, None, read)
    clock.advance(hours=1)
    await costs.stopped("bob")
    (saved,) = rows(url)
    assert saved.stopped_at - saved.started_at == timedelta(hours=2)


async def test_unreadable_node_still_records(
    tmp_path: Path, profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> dict[str, Any] | None:
        raise TimeoutError("API too slow")

    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    row = await Accounting(url, LOG, Clock(T0)).started(
        bob_large(profiles), profiles, None, broken
    )
    assert row is not None
    assert (row.node, row.capacity_type) == ("", "spot")
    assert "reading the node of bob failed" in caplog.text


async def test_database_failure_is_logged_not_raised(
    tmp_path: Path, profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'c.sqlite'}"
    costs = Accounting(url, LOG, Clock(T0))
    read = reader(node("ip-1", {}))
    assert await costs.started(bob_large(profiles), profiles, None, read) is None
    assert await costs.stopped("bob") is None
    assert await costs.spent() is None
    state = await costs.budget(profiles, ["jupyter-users"], False)
    assert state.level == "none"
    assert "Accounting: recording the start of bob failed" in caplog.text
    assert "Accounting: recording the stop of bob failed" in caplog.text


async def test_accounting_off_records_nothing(profiles: Profiles) -> None:
    costs = Accounting(None, LOG, Clock(T0))
    read = reader(node("ip-1", {}))
    assert await costs.started(bob_large(profiles), profiles, None, read) is None
    assert await costs.stopped("bob") is None
    assert await costs.spent() == {}


async def test_budget_counts_open_records_up_to_now(
    tmp_path: Path, profiles: Profiles
) -> None:
    small_budget = dataclasses.replace(
        profiles, budgets=(GroupBudget(group="jupyter-users", monthly=100.0),)
    )
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    clock = Clock(datetime(2026, 5, 1, tzinfo=UTC))
    costs = Accounting(url, LOG, clock)
    read = reader(node("ip-1", {"wbspawner.io/capacity": "on-demand"}))
    # mem64 on-demand is $0.504/h: the warning (80 $) comes after 158.7 hours.
    await costs.started(bob_large(profiles), small_budget, None, read)
    clock.advance(hours=150)
    state = await costs.budget(small_budget, ["jupyter-users"], False)
    assert state.level == "ok"
    assert state.spent == 150 * Fraction(504000, MICRO)
    clock.advance(hours=10)
    assert (await costs.budget(small_budget, ["jupyter-users"], False)).level == "warn"
    clock.advance(hours=40)
    await costs.stopped("bob")
    clock.advance(hours=100)
    state = await costs.budget(small_budget, ["jupyter-users"], False)
    assert (state.level, state.spent) == ("over", 200 * Fraction(504000, MICRO))


def test_logs_never_show_the_database_password() -> None:
    costs = Accounting("postgresql://wb:s3cret-pw@db:5432/costs", LOG)
    assert costs.shown == "postgresql://wb:***@db:5432/costs"
    assert Accounting("not a url", LOG).shown == "(unparsable URL)"


async def test_a_database_that_comes_back_gets_the_start_and_the_stop(
    tmp_path: Path, profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    """The database unreachable (SQLite's folder missing: OperationalError) for
    a few tries: the start is written once it is there, with the moment it
    happened at (one warning meanwhile), and its stop closes that record."""
    folder = tmp_path / "later"
    url = f"sqlite:///{folder / 'c.sqlite'}"
    clock = Clock(T0)
    costs = Accounting(url, LOG, clock, retry_for=5.0, retry_every=0.01)
    read = reader(node("ip-1", {"wbspawner.io/capacity": "on-demand"}))
    tries = 0

    async def back_after_three_tries() -> None:
        nonlocal tries
        while tries < 3:
            await asyncio.sleep(0.01)
            tries += 1
        folder.mkdir()

    back = asyncio.ensure_future(back_after_three_tries())
    row = await costs.started(bob_large(profiles), profiles, None, read)
    await back
    assert row is not None and row.started_at == T0.replace(tzinfo=None)
    clock.advance(hours=1)
    closed = await costs.stopped("bob")
    assert closed is not None and closed.id == row.id
    (saved,) = rows(url)
    assert saved.stopped_at - saved.started_at == timedelta(hours=1)
    assert caplog.text.count("unreachable, trying again") == 1
    assert "failed" not in caplog.text


async def test_a_database_that_stays_away_is_given_up(
    tmp_path: Path, profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'never' / 'c.sqlite'}"
    costs = Accounting(url, LOG, Clock(T0), retry_for=0.05, retry_every=0.01)
    read = reader(node("ip-1", {}))
    assert await costs.started(bob_large(profiles), profiles, None, read) is None
    assert "unreachable, trying again for up to 0 s" in caplog.text
    assert "Accounting: recording the start of bob failed" in caplog.text


async def test_peaks_go_on_the_running_record_and_back_to_the_form(
    tmp_path: Path, profiles: Profiles
) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    clock = Clock(T0)
    costs = Accounting(url, LOG, clock)
    read = reader(node("ip-1", {"wbspawner.io/capacity": "on-demand"}))
    assert await costs.history("bob") == []
    await costs.peaked("bob", "", 100)  # nothing runs: nothing to write
    await costs.started(bob_large(profiles), profiles, None, read)
    for sample in (800, 2500, 1200):
        await costs.peaked("bob", "", sample)
    clock.advance(hours=1)
    await costs.stopped("bob")
    (saved,) = rows(url)
    assert saved.peak_memory_mib == 2500
    (last,) = await costs.history("bob")
    assert (last.size, last.peak_mib, last.capacity_type) == (
        "large",
        2500,
        "on-demand",
    )
    assert await costs.history("alice") == []


async def test_peaks_off_or_failing_never_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    off = Accounting(None, LOG, Clock(T0))
    await off.peaked("bob", "", 100)
    assert await off.history("bob") == []
    broken = Accounting(f"sqlite:///{tmp_path / 'nope' / 'c.sqlite'}", LOG, Clock(T0))
    await broken.peaked("bob", "", 100)
    assert await broken.history("bob") == []
    assert "Accounting: recording the memory peak of bob failed" in caplog.text
    assert "Accounting: reading the memory peaks of bob failed" in caplog.text
