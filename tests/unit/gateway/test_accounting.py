"""Dask accounting: worker prices, the record diff, a SQLite round, the backend part."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from tests.unit.gateway.accounting_support import T0, accounted
from wbspawner.catalog.instances import load_catalog
from wbspawner.costs.accounting import (
    DEFAULT_DB_URL,
    MICRO,
    UsageRecord,
    list_open,
    open_db,
    report,
    to_micro,
)
from wbspawner.costs.database import AccountingDbError
from wbspawner.gateway.accounting import (
    CostBook,
    configure_costs,
)
from wbspawner.gateway.billing import (
    DaskUsage,
    OpenDask,
    diff_usage,
    running_workers,
    usage_of,
    worker_price,
)
from wbspawner.gateway.options import ENV_POOL, ENV_SIZE
from wbspawner.gateway.workers import workers_per_node
from wbspawner.model import Profiles


def node_price(profiles: Profiles, pool_name: str) -> float:
    """The pool's node price computed here from the catalogue: cheapest type,
    less the assumed spot discount when spot is preferred."""
    pool = profiles.pools[pool_name]
    types = load_catalog().types
    cheapest = min(types[t].price_per_hour for t in pool.instance_types)
    if pool.capacity_types[0] == "spot":
        return cheapest * (1 - profiles.cost.spot_discount)
    return cheapest


# ------------------------------------------------------------------ prices


@pytest.mark.parametrize(
    "size",
    [
        pytest.param("m64-quarter", id="four-per-node"),
        pytest.param("m64-whole", id="whole-node"),
        pytest.param("m128-half", id="two-per-node"),
        pytest.param("gpu-t4", id="gpu-whole-node"),
        pytest.param("gpu-a10g", id="one-gpu-each"),
    ],
)
def test_worker_price_is_the_nodes_share(profiles: Profiles, size: str) -> None:
    spec = next(s for s in profiles.dask.worker_sizes if s.name == size)
    price = worker_price(profiles, size)
    assert price is not None
    assert price.pool == spec.pool
    assert price.capacity_type == profiles.pools[spec.pool].capacity_types[0]
    expected = node_price(profiles, spec.pool) / spec.workers_per_node
    assert price.per_hour == pytest.approx(expected, rel=1e-12)


def test_gpu_workers_per_node_is_capped_by_the_gpus(profiles: Profiles) -> None:
    """More workers per node than GPUs: each worker still gets a whole GPU."""
    size = next(s for s in profiles.dask.worker_sizes if s.name == "gpu-a10g")
    pool = profiles.pools[size.pool]
    greedy = replace(size, workers_per_node=pool.gpu_count * 2)
    assert workers_per_node(greedy, pool) == pool.gpu_count


def test_unknown_size_is_priced_as_a_whole_node_of_its_pool(
    profiles: Profiles,
) -> None:
    price = worker_price(profiles, "retired-size", "mem128")
    assert price is not None and price.pool == "mem128"
    assert price.per_hour == pytest.approx(node_price(profiles, "mem128"))
    assert worker_price(profiles, "retired-size", "no-such-pool") is None


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        pytest.param({"active_workers": ["a", "b"]}, 2, id="active"),
        pytest.param(
            {"active_workers": ["a"], "closing_workers": ["b", "c"]}, 3, id="closing"
        ),
        pytest.param({"active_workers": [], "closed_workers": ["a"]}, 0, id="closed"),
        pytest.param({"count": 5}, 0, id="requested-not-running"),
    ],
)
def test_running_workers(msg: dict[str, Any], expected: int) -> None:
    assert running_workers(msg) == expected


def test_usage_of_reads_size_and_pool_from_the_cluster_config(
    profiles: Profiles,
) -> None:
    cluster = SimpleNamespace(
        name="c1",
        username="bob",
        options={"worker_size": "ignored-when-env-has-it"},
        config={"environment": {ENV_SIZE: "m128-half", ENV_POOL: "mem128"}},
    )
    usage = usage_of(cluster, profiles, 3, "jupyter-users")
    expected = worker_price(profiles, "m128-half")
    assert expected is not None
    assert usage == DaskUsage(
        name="c1",
        user="bob",
        size="m128-half",
        pool="mem128",
        capacity_type=expected.capacity_type,
        price_per_hour=expected.per_hour,
        workers=3,
        group="jupyter-users",
    )


# ------------------------------------------------------------------ diff


def usage(name: str, workers: int | None, price: float | None = 0.25) -> DaskUsage:
    return DaskUsage(
        name=name,
        user="bob",
        size="m64-quarter",
        pool="mem64",
        capacity_type="spot",
        price_per_hour=price,
        workers=workers,
    )


def opened(name: str, workers: int, price: float = 0.25) -> OpenDask:
    return OpenDask(
        name=name, user="bob", workers=workers, price_micro_per_hour=to_micro(price)
    )


@pytest.mark.parametrize(
    ("observed", "records", "expected"),
    [
        pytest.param([], [], [], id="nothing"),
        pytest.param(
            [usage("c1", None)],
            [],
            [("start", "c1", 0, 0.25)],
            id="new-cluster-no-heartbeat-yet",
        ),
        pytest.param(
            [usage("c1", 2)], [opened("c1", 2)], [], id="unchanged-records-nothing"
        ),
        pytest.param(
            [usage("c1", 2)],
            [opened("c1", 0)],
            [("rescale", "c1", 2, 0.25)],
            id="scaled-up",
        ),
        pytest.param(
            [usage("c1", None)],
            [opened("c1", 2)],
            [],
            id="unknown-workers-keep-the-record",
        ),
        pytest.param(
            [usage("c1", 2, price=0.3)],
            [opened("c1", 2)],
            [("rescale", "c1", 2, 0.3)],
            id="new-price",
        ),
        pytest.param(
            [usage("c1", 1, price=None)],
            [opened("c1", 2, price=0.123456)],
            [("rescale", "c1", 1, 0.123456)],
            id="unknown-price-keeps-the-recorded-one",
        ),
        pytest.param(
            [usage("c2", 1)],
            [opened("c1", 2)],
            [("stop", "c1", 2, 0.0), ("start", "c2", 1, 0.25)],
            id="one-gone-one-new",
        ),
    ],
)
def test_diff_usage(
    observed: list[DaskUsage],
    records: list[OpenDask],
    expected: list[tuple[str, str, int, float]],
) -> None:
    changes = diff_usage(observed, records)
    got = [(c.action, c.name, c.workers, c.price_per_hour) for c in changes]
    assert got == expected
    assert all((c.usage is not None) == (c.action == "start") for c in changes)


def test_diff_does_not_mutate_inputs() -> None:
    observed, records = [usage("c1", 3)], [opened("c1", 1)]
    before = (list(observed), list(records))
    diff_usage(observed, records)
    assert (observed, records) == before


# ------------------------------------------------------------------ sqlite


def test_cost_book_records_workers_times_hours_times_price(tmp_path: Path) -> None:
    """Start with no workers, 2 workers for 90 min, 5 for 30 min, then stop."""
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    book = CostBook(url)
    price = 0.0441
    timeline = [
        (T0, [usage("c1", None, price)]),
        (T0 + timedelta(minutes=2), [usage("c1", 2, price)]),
        (T0 + timedelta(minutes=92), [usage("c1", 5, price)]),
        (T0 + timedelta(minutes=93), [usage("c1", 5, price)]),  # nothing new
        (T0 + timedelta(minutes=122), []),
    ]
    written = [book.sync(observed, at) for at, observed in timeline]
    assert [[c.action for c in w] for w in written] == [
        ["start"],
        ["rescale"],
        ["rescale"],
        [],
        ["stop"],
    ]
    with open_db(url)() as session:
        rows = session.query(UsageRecord).order_by(UsageRecord.id).all()
        assert not list_open(session, "dask")
        assert [(r.units, r.kind, r.name) for r in rows] == [
            (0, "dask", "c1"),
            (2, "dask", "c1"),
            (5, "dask", "c1"),
        ]
        result = report(session, by="user", month="2026-03", now=T0 + timedelta(1))
    hours = 2 * Fraction(90, 60) + 5 * Fraction(30, 60)
    assert [(r.key, r.hours) for r in result] == [("bob", hours)]
    assert result[0].cost == hours * Fraction(to_micro(price), MICRO)


# ------------------------------------------------------------------ backend


async def test_backend_records_start_heartbeat_and_stop(
    profiles: Profiles, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    backend = accounted(url)
    await backend.setup(None)
    user = SimpleNamespace(name="gina", groups={"jupyter-users", "gpu-users"})
    name = await backend.start_cluster(user, {})
    assert [c.action for c in await backend.record_costs()] == ["start"]
    backend.now = T0 + timedelta(minutes=10)
    await backend.on_cluster_heartbeat(name, {"active_workers": ["w1", "w2"]})
    assert [c.workers for c in await backend.record_costs()] == [2]
    backend.now = T0 + timedelta(minutes=40)
    await backend.stop_cluster(name)
    await backend.cleanup()  # the final round records the stop
    with open_db(url)() as session:
        rows = session.query(UsageRecord).order_by(UsageRecord.id).all()
        assert not list_open(session, "dask")
        by_group = report(session, by="group", month="2026-03", now=backend.now)
    price = worker_price(profiles, "m64-quarter")
    assert price is not None
    assert {r.group for r in rows} == {"gpu-users"}
    assert [(r.units, r.price_micro_per_hour) for r in rows] == [
        (0, to_micro(price.per_hour)),
        (2, to_micro(price.per_hour)),
    ]
    assert [(r.key, r.hours) for r in by_group] == [("gpu-users", Fraction(1))]


async def test_database_failure_is_logged_not_raised(
    profiles: Profiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'costs.sqlite'}"
    backend = accounted(url)
    await backend.setup(None)
    user = SimpleNamespace(name="bob", groups={"jupyter-users"})
    with caplog.at_level(logging.WARNING):
        name = await backend.start_cluster(user, {})
        assert await backend.record_costs() == []
        await backend.stop_cluster(name)
        await backend.cleanup()
    assert "Costs: Dask usage not recorded (OperationalError" in caplog.text
    assert "Traceback" not in caplog.text


def test_configure_costs_reads_the_url_or_uses_the_default() -> None:
    c = Config()
    assert configure_costs(c, {"WBSPAWNER_COST_DB_URL": "sqlite:///x.db"}) == (
        "sqlite:///x.db"
    )
    assert c.WorkbenchBackendMixin.cost_db_url == "sqlite:///x.db"
    assert configure_costs(Config(), {"WBSPAWNER_COST_DB_URL": " "}) == DEFAULT_DB_URL


def test_configure_costs_reads_the_url_from_a_file_as_the_hub_does(
    tmp_path: Path,
) -> None:
    """The dask-gateway chart's pod gets the URL as a variable; elsewhere an
    operator may mount it as a file, like the hub's."""
    url_file = tmp_path / "cost-url"
    url_file.write_text("postgresql+psycopg://w:pw@127.0.0.1:5432/costs\n")
    c = Config()
    found = configure_costs(c, {"WBSPAWNER_COST_DB_URL_FILE": str(url_file)})
    assert found == "postgresql+psycopg://w:pw@127.0.0.1:5432/costs"
    assert c.WorkbenchBackendMixin.cost_db_url == found
    with pytest.raises(AccountingDbError, match="cannot be read"):
        configure_costs(Config(), {"WBSPAWNER_COST_DB_URL_FILE": str(tmp_path / "no")})
