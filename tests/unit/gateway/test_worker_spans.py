"""Every Dask worker that ran is accounted for, from its own start to its stop.

Issue item: clusters that lived under ~15 s were recorded with ``units=0``,
because running workers came only from the scheduler's heartbeat (every 15 s).
Backends that start and stop workers themselves now report each worker's
start and stop, and the records follow them, however brief.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.gateway.accounting_support import T0, accounted
from wbspawner.costs.accounting import UsageRecord, list_open, open_db, report
from wbspawner.gateway.billing import (
    DaskUsage,
    OpenDask,
    WorkerSpan,
    diff_usage,
    running_at,
    worker_steps,
)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def span(start: float, stop: float | None = None) -> WorkerSpan:
    return WorkerSpan(start=s(start), stop=None if stop is None else s(stop))


@pytest.mark.parametrize(
    ("spans", "since", "until", "expected"),
    [
        pytest.param([], 0, None, [(0, 0)], id="no-workers"),
        pytest.param(
            [span(1, 3), span(1.5, 3.2)],
            0,
            None,
            [(0, 0), (1, 1), (1.5, 2), (3, 1), (3.2, 0)],
            id="two-brief-workers",
        ),
        pytest.param(
            [span(1, 3), span(1.5)], 2, None, [(2, 2), (3, 1)], id="since-a-record"
        ),
        pytest.param(
            [span(1, 2), span(2, 4)],
            0,
            None,
            [(0, 0), (1, 1), (4, 0)],
            id="one-replaces-another",
        ),
        pytest.param(
            [span(1, 3), span(2, 5)], 0, 4, [(0, 0), (1, 1), (2, 2), (3, 1)], id="until"
        ),
        pytest.param(
            [span(1, 1.001)], 0, None, [(0, 0), (1, 1), (1.001, 0)], id="a-millisecond"
        ),
    ],
)
def test_worker_steps(
    spans: list[WorkerSpan],
    since: float,
    until: float | None,
    expected: list[tuple[float, int]],
) -> None:
    got = worker_steps(spans, s(since), None if until is None else s(until))
    assert got == [(s(t), n) for t, n in expected]


def test_running_at_counts_started_and_not_stopped() -> None:
    spans = [span(1, 3), span(2)]
    assert [running_at(spans, s(t)) for t in (0, 1, 2, 3, 9)] == [0, 1, 2, 1, 1]


def usage(spans: list[WorkerSpan], stopped: float | None = None) -> DaskUsage:
    return DaskUsage(
        name="c1",
        user="bob",
        size="m64-quarter",
        pool="mem64",
        capacity_type="spot",
        price_per_hour=0.25,
        workers=None,
        spans=tuple(spans),
        started_at=s(0),
        stopped_at=None if stopped is None else s(stopped),
    )


def changes(observed: list[DaskUsage], records: list[OpenDask]) -> list[tuple]:
    return [
        (c.action, c.workers, None if c.at is None else (c.at - T0).total_seconds())
        for c in diff_usage(observed, records)
    ]


def test_a_cluster_that_came_and_went_between_two_rounds() -> None:
    observed = [usage([span(1, 3), span(1.5, 3.2)], stopped=4)]
    assert changes(observed, []) == [
        ("start", 0, 0),
        ("rescale", 1, 1),
        ("rescale", 2, 1.5),
        ("rescale", 1, 3),
        ("rescale", 0, 3.2),
        ("stop", 0, 4),
    ]


def test_an_open_record_continues_at_the_workers_times() -> None:
    record = OpenDask(
        name="c1", user="bob", workers=1, price_micro_per_hour=250_000, since=s(1)
    )
    assert changes([usage([span(1, 3), span(1.5)])], [record]) == [
        ("rescale", 2, 1.5),
        ("rescale", 1, 3),
    ]
    settled = OpenDask(
        name="c1", user="bob", workers=1, price_micro_per_hour=250_000, since=s(3)
    )
    assert changes([usage([span(1, 3), span(1.5)])], [settled]) == []


def test_a_new_price_is_recorded_when_seen_after_the_workers() -> None:
    record = OpenDask(
        name="c1", user="bob", workers=1, price_micro_per_hour=200_000, since=s(1)
    )
    got = diff_usage([usage([span(1), span(2)])], [record])
    assert [(c.action, c.workers, c.price_per_hour, c.at) for c in got] == [
        ("rescale", 2, 0.2, s(2)),
        ("rescale", 2, 0.25, None),
    ]


async def test_backend_records_brief_workers_without_any_round_between(
    tmp_path: Path,
) -> None:
    """Two workers run for 2 s and 1.7 s; no round runs until the cluster ended."""
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    backend = accounted(url, tracks_workers=True)
    await backend.setup(None)
    user = SimpleNamespace(name="bob", groups={"jupyter-users"})
    name = await backend.start_cluster(user, {})
    for at, event, worker in [
        (1, "start", "w1"),
        (1.5, "start", "w2"),
        (3, "stop", "w1"),
        (3.2, "stop", "w2"),
    ]:
        backend.now = s(at)
        if event == "start":
            backend.cost_worker_started(name, worker)
        else:
            backend.cost_worker_stopped(name, worker)
    await backend.on_cluster_heartbeat(name, {"active_workers": []})  # ignored
    backend.now = s(4)
    await backend.stop_cluster(name)
    backend.cost_cluster_ended(name)
    backend.now = s(9)  # the round runs later; records keep the events' times
    await backend.cleanup()
    with open_db(url)() as session:
        rows = session.query(UsageRecord).order_by(UsageRecord.id).all()
        assert not list_open(session, "dask")
        result = report(session, by="user", month="2026-03", now=s(60))
    assert [
        (
            r.units,
            (r.started_at - T0).total_seconds(),
            (r.stopped_at - T0).total_seconds(),
        )
        for r in rows
    ] == [(0, 0, 1), (1, 1, 1.5), (2, 1.5, 3), (1, 3, 3.2), (0, 3.2, 4)]
    assert [(r.key, r.hours) for r in result] == [("bob", Fraction(37, 36_000))]


async def test_a_worker_still_stopping_keeps_the_record_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    backend = accounted(url, tracks_workers=True)
    await backend.setup(None)
    user = SimpleNamespace(name="bob", groups={"jupyter-users"})
    name = await backend.start_cluster(user, {})
    backend.now = s(1)
    backend.cost_worker_started(name, "w1")
    backend.now = s(2)
    await backend.stop_cluster(name)  # the backend stops its worker next
    assert [c.action for c in await backend.record_costs()] == ["start", "rescale"]
    backend.now = s(5)
    backend.cost_worker_stopped(name, "w1")
    backend.cost_cluster_ended(name)
    assert [c.action for c in await backend.record_costs()] == ["rescale", "stop"]
    with open_db(url)() as session:
        rows = session.query(UsageRecord).order_by(UsageRecord.id).all()
    assert [(r.units, r.stopped_at) for r in rows] == [(0, s(1)), (1, s(5)), (0, s(5))]
    await backend.cleanup()
