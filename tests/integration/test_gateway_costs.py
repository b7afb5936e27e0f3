"""Dask accounting end to end: the real dask-gateway-server records what clusters cost.

Runs ``dask-gateway-server`` (UnsafeLocalBackend) as ``test_gateway`` does, with
the accounting database in a temporary SQLite file: a user starts a cluster,
scales it to two workers, stops it; the database then holds ``dask`` records
whose cost is Σ workers × hours × $/worker-hour exactly, at the price the
profiles give, and ``wbspawner cost report --by user`` shows it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction

import pytest

from tests.integration.cost_support import cost_report_by_user
from tests.integration.gateway_harness import (
    TEST_CONFIG,
    GatewayProc,
    running_gateway,
)
from tests.integration.hub_harness import wait_until
from tests.paths import REPO
from wbspawner.catalog.instances import load_catalog
from wbspawner.costs.accounting import (
    MICRO,
    US_PER_HOUR,
    list_open,
    open_db,
    report,
)
from wbspawner.profiles.loader import load_profiles

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# The test configuration of test_gateway, plus what dask_gateway_config.py adds
# for accounting, and quicker heartbeats so worker counts arrive within seconds.
COSTS_CONFIG = (
    TEST_CONFIG
    + """
from wbspawner.gateway.accounting import configure_costs

configure_costs(c, os.environ)
c.DBBackendBase.cluster_heartbeat_period = 1
"""
)


@pytest.fixture(scope="module")
def cost_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    state = tmp_path_factory.mktemp("gwcosts")
    no_reaping = {"WBSPAWNER_DASK_GATEWAY_REAP_INTERVAL": "0"}
    with running_gateway(state, COSTS_CONFIG, no_reaping) as gw:
        yield gw


def expected_price_micro(size_name: str) -> int:
    """$/worker-hour of a size, computed here from the catalogue and profiles."""
    profiles = load_profiles([REPO / "profiles"])
    size = next(s for s in profiles.dask.worker_sizes if s.name == size_name)
    pool = profiles.pools[size.pool]
    types = load_catalog().types
    node = min(types[t].price_per_hour for t in pool.instance_types)
    if pool.capacity_types[0] == "spot":
        node *= 1 - profiles.cost.spot_discount
    return round(Fraction(str(node)) * MICRO / size.workers_per_node)


def test_cluster_scaled_to_two_workers_is_recorded_exactly(
    cost_gateway: GatewayProc,
) -> None:
    with (
        cost_gateway.client("bob") as gw,
        gw.new_cluster(worker_size="m64-quarter", max_workers=2) as cluster,
    ):
        name = cluster.name
        cluster.scale(2)
        with cluster.get_client() as client:
            client.wait_for_workers(2, timeout=60)
        wait_until(
            lambda: any(
                r.units == 2 and r.stopped_at is None
                for r in cost_gateway.records(name)
            ),
            30,
            "a record with 2 running workers",
        )
        time.sleep(2)  # two workers run for a while
    wait_until(
        lambda: (rows := cost_gateway.records(name)) and rows[-1].stopped_at,
        30,
        "the cluster's last record closed",
    )
    rows = cost_gateway.records(name)
    assert {(r.kind, r.user, r.group, r.size, r.pool) for r in rows} == {
        ("dask", "bob", "jupyter-users", "m64-quarter", "mem64")
    }
    assert {r.price_micro_per_hour for r in rows} == {
        expected_price_micro("m64-quarter")
    }
    assert rows[0].units == 0 and max(r.units for r in rows) == 2
    for before, after in zip(rows, rows[1:], strict=False):
        assert before.stopped_at == after.started_at  # closed and continued
    two = [r for r in rows if r.units == 2]
    assert sum((r.stopped_at - r.started_at).total_seconds() for r in two) >= 2
    # Σ workers × hours × price, from the raw records, exactly:
    expected = sum(
        Fraction(
            (r.stopped_at - r.started_at)
            // timedelta(microseconds=1)
            * r.units
            * r.price_micro_per_hour,
            US_PER_HOUR * MICRO,
        )
        for r in rows
        if r.stopped_at
    )
    assert expected > 0
    month = rows[0].started_at.strftime("%Y-%m")
    with open_db(cost_gateway.db_url)() as session:
        assert not [r for r in list_open(session, "dask") if r.name == name]
        by_user = {r.key: r.cost for r in report(session, by="user", month=month)}
    assert by_user["bob"] == expected

    printed = cost_report_by_user(cost_gateway.db_url, month)
    assert printed["bob"] == pytest.approx(float(expected), rel=1e-12)
    log = cost_gateway.proc.tail(100_000)
    assert f"Costs: cluster {name} of bob: rescale, 2 worker(s)" in log
    assert f"Costs: cluster {name} of bob: stopped" in log
    assert "Traceback" not in log
