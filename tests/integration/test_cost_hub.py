"""Costs through the real hub: group budgets on the spawn form, accounting of servers.

One stack for the module (slapd, devcluster with node groups for the 4 GiB and
64 GiB pools in one zone, JupyterHub + configurable-http-proxy through the
repository's ``jupyterhub_config.py``), with the shipped profiles except for a
small monthly budget of jupyter-users ($100, no free sizes listed: the smallest
CPU size stays free). The tests share the accounting database (SQLite in the
hub's state directory) and run in any order: each sets the group's spend it
needs first (:func:`set_spend`: seeded records on top of what servers really
cost, which is cents):

- spend at 85 % shows bob the warning;
- spend past 100 %: a paid size is refused with the message, nothing is
  created; the free size starts; alice (admin) starts a paid size anyway, for
  herself and for bob;
- spend at half the budget: bob starts and stops twice with hub restarts in
  between and during the second run; ``wbspawner cost report`` equals
  Σ hours × price of the recorded rows, exactly, and nothing was lost;
- right-size advice: gina's 64 GiB server holds a known amount of memory in a
  kernel; its record keeps that peak (read from the server's own
  jupyter-resource-usage metrics as it stops), her next spawn form advises the
  4 GiB size with both prices, and the costs page's figure has her row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from math import ceil
from typing import Any

import pytest

from devcluster.demo.workbench import Kube, Workbench
from devcluster.services.ldap import LdapServer
from tests.integration.cost_support import cost_report_by_user
from tests.integration.hub_harness import (
    HubUser,
    error_on,
    hub_log,
    logged_in,
    pod_of,
    pvc_of,
    restart_hub,
    sizes_on,
    stack_on_profiles,
    wait_until,
)
from tests.integration.kernel_support import execute, start_kernel
from tests.paths import REPO
from wbspawner.catalog.pricing import format_price, hourly_cost
from wbspawner.costs.accounting import (
    MICRO,
    US_PER_HOUR,
    Start,
    UsageRecord,
    month_bounds,
    open_db,
    record,
    record_stop,
    report,
    to_micro,
)
from wbspawner.costs.web import load_rightsizing
from wbspawner.profiles.loader import load_profiles
from wbspawner.spawn.advice import gib_text, limit_mib, price_of
from wbspawner.warmer.snapshot import capacity_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SEED_NODE = "seed-node"
"""The node of seeded records (none of the cluster's)."""
BUDGETS = """budgets:
  - group: jupyter-users
    monthly: {monthly}
  - group: gpu-users
    monthly: 3000
    free_sizes: [small, medium]
"""


def cost_file(monthly: int) -> str:
    shipped = (REPO / "profiles" / "50-cost.yaml").read_text(encoding="utf-8")
    head, found, _ = shipped.partition("budgets:\n")
    assert found, "profiles/50-cost.yaml has no budgets section"
    return head + BUDGETS.format(monthly=monthly)


@pytest.fixture(scope="module")
def bench(
    ldap_server: LdapServer,
    stack_databases: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    with stack_on_profiles(
        tmp_path_factory.mktemp("costhub"),
        {"50-cost.yaml": cost_file(100)},
        time_factor=0.02,
        pools=["cpu4", "mem64"],
        zones=["us-east-1b"],
        ldap=ldap_server,
        capacity_grace_s=1.0,
        warmer=False,
        **stack_databases("cost_hub"),
    ) as workbench:
        yield workbench


@pytest.fixture(scope="module")
def db_url(bench: Workbench) -> str:
    """The accounting database the hub writes (on the session's PostgreSQL)."""
    return bench.cost_db


@pytest.fixture(scope="module")
def kube(bench: Workbench) -> Kube:
    assert bench.kube is not None
    return bench.kube


def group_spend(url: str, group: str) -> Fraction:
    with open_db(url)() as session:
        rows = report(session, by="group")
    return next((r.cost for r in rows if r.key == group), Fraction(0))


def seed_spend(url: str, cost: Fraction) -> None:
    """Add a closed record of bob's, early this month, costing ``cost`` (+ < 1 µ$)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    month_start, _ = month_bounds(now.strftime("%Y-%m"))
    length = min(timedelta(hours=1), (now - month_start) / 2)
    hours = Fraction(length // timedelta(microseconds=1), US_PER_HOUR)
    price_micro = ceil(cost / hours * MICRO)
    seed = Start(
        user="bob",
        group="jupyter-users",
        size="large",
        pool="mem64",
        capacity_type="on-demand",
        node=SEED_NODE,
        zone="us-east-1b",
        price_per_hour=price_micro / MICRO,
        at=month_start,
    )
    with open_db(url)() as session:
        record(session, seed)
        record_stop(session, "bob", month_start + length)


def set_spend(url: str, level: Fraction) -> None:
    """Make the group's spend this month ``level``: seeds on top of real records.

    Earlier seeds are removed first; real records (cents) stay. A level below
    what servers really cost leaves no seed.
    """
    with open_db(url)() as session:
        session.query(UsageRecord).filter(UsageRecord.node == SEED_NODE).delete()
        session.commit()
    missing = level - group_spend(url, "jupyter-users")
    if missing > 0:
        seed_spend(url, missing)


def billed(rows: list[UsageRecord]) -> Fraction:
    """Return the exact bill of finished records: duration × price, to the µs."""
    return sum(
        (
            Fraction(
                (r.stopped_at - r.started_at) // timedelta(microseconds=1),  # type: ignore[operator]
                US_PER_HOUR,
            )
            * Fraction(r.price_micro_per_hour, MICRO)
            for r in rows
            if r.stopped_at is not None
        ),
        Fraction(0),
    )


def bob_rows(url: str) -> list[UsageRecord]:
    with open_db(url)() as session:
        query = session.query(UsageRecord).filter(
            UsageRecord.user == "bob", UsageRecord.kind == "server"
        )
        return list(query.order_by(UsageRecord.id))


def start(user: HubUser, size: str, timeout: float = 150) -> None:
    user.form()
    response = user.spawn({"profile": size})
    assert response.status_code == 302, error_on(response.text) or response.text[:300]
    user.wait_ready(timeout=timeout)


def test_warning_at_85_percent(bench: Workbench, bob: HubUser, db_url: str) -> None:
    set_spend(db_url, Fraction(0))
    form = bob.form()
    assert "wb-banner" not in form  # nothing spent but cents
    set_spend(db_url, Fraction("85.50"))
    form = bob.form()
    assert 'class="alert alert-warning wb-banner"' in form
    assert (
        "Group jupyter-users has used $85.50 of its $100.00 monthly budget (85 %)."
        in form
    )
    assert 'class="wb-unavailable"' not in form  # no size refused
    assert sizes_on(form) == ["small", "medium", "large", "xlarge", "xxlarge"]


def test_spent_budget_refuses_a_paid_size_and_creates_nothing(
    bench: Workbench, bob: HubUser, kube: Kube, db_url: str
) -> None:
    set_spend(db_url, Fraction("105.50"))
    home_before = _uid(pvc_of(kube, "bob"))  # an earlier start may have made one
    form = bob.form()
    assert 'class="alert alert-danger wb-banner"' in form
    assert "(105 %)" in form and "You can still start &#x27;4 GiB&#x27;." in form
    assert form.count('class="wb-unavailable"') == 4  # every size but the smallest
    response = bob.spawn({"profile": "large"})
    assert response.status_code == 403
    assert error_on(response.text).endswith(
        "The size '64 GiB' cannot start: Group jupyter-users has used $105.50 of its "
        "$100.00 monthly budget (105 %). You can still start '4 GiB'. To use "
        "'64 GiB' this month, ask an admin (jupyter-admins) to raise the budget or "
        "to start it for you."
    )
    assert pod_of(kube, "bob") is None
    assert _uid(pvc_of(kube, "bob")) == home_before, "a refused start made no home"
    log = hub_log(bench)
    assert "Refused bob: size 'large' refused: group 'jupyter-users' spent" in log
    assert "Traceback" not in log


def test_free_size_still_starts(bob: HubUser, kube: Kube, db_url: str) -> None:
    set_spend(db_url, Fraction("105.50"))
    before = len(bob_rows(db_url))
    start(bob, "small")
    pod = pod_of(kube, "bob")
    assert pod is not None
    assert pod["metadata"]["labels"]["wbspawner.io/size"] == "small"
    bob.stop(kube)
    rows = bob_rows(db_url)
    assert len(rows) == before + 1
    assert (rows[-1].size, rows[-1].pool) == ("small", "cpu4")
    assert rows[-1].stopped_at is not None


def _uid(obj: dict[str, Any] | None) -> str | None:
    return obj["metadata"]["uid"] if obj else None


def test_admin_starts_a_paid_size_anyway(
    alice: HubUser, kube: Kube, db_url: str
) -> None:
    set_spend(db_url, Fraction("105.50"))
    form = alice.form()
    assert "As an admin you may still start any size." in form
    assert 'class="wb-unavailable"' not in form  # no size refused
    start(alice, "large")
    pod = pod_of(kube, "alice")
    assert pod is not None
    assert pod["metadata"]["labels"]["wbspawner.io/size"] == "large"
    alice.stop(kube)
    with open_db(db_url)() as session:
        rows = session.query(UsageRecord).filter(UsageRecord.user == "alice").all()
    assert [(r.size, r.group) for r in rows] == [("large", "jupyter-users")]
    assert rows[0].stopped_at is not None


def test_admin_starts_a_paid_size_for_a_user_over_budget(
    alice: HubUser, bob: HubUser, kube: Kube, db_url: str
) -> None:
    """The override: an admin starts bob's server with a paid size for him."""
    set_spend(db_url, Fraction("105.50"))
    before = len(bob_rows(db_url))
    response = alice.api("POST", "/users/bob/server", json={"profile": "large"})
    assert response.status_code in (201, 202), response.text
    bob.wait_ready(timeout=150)
    pod = pod_of(kube, "bob")
    assert pod is not None
    assert pod["metadata"]["labels"]["wbspawner.io/size"] == "large"
    assert alice.api("DELETE", "/users/bob/server").status_code in (202, 204)
    wait_until(lambda: pod_of(kube, "bob") is None, 60, "bob's pod gone", 0.5)
    wait_until(
        lambda: not alice.api("GET", "/users/bob").json()["server"],
        60,
        "bob's server stopped in the hub",
    )
    rows = bob_rows(db_url)
    assert len(rows) == before + 1
    assert (rows[-1].size, rows[-1].group) == ("large", "jupyter-users")
    assert rows[-1].stopped_at is not None


def check_row(row: UsageRecord, kube: Kube, node_name: str, form: str) -> None:
    """The record has the pod's node, its zone and capacity, the form's price."""
    node = kube.get(f"/api/v1/nodes/{node_name}")
    labels = node["metadata"]["labels"]
    assert (row.size, row.pool, row.group) == ("large", "mem64", "jupyter-users")
    assert row.node == node_name
    assert row.zone == labels["topology.kubernetes.io/zone"] == "us-east-1b"
    assert row.capacity_type == capacity_of(labels)
    profiles = load_profiles([REPO / "profiles"])
    shown = hourly_cost(profiles.pools["mem64"], row.capacity_type, None, profiles.cost)
    assert row.price_micro_per_hour == to_micro(shown.per_hour)
    assert f"{format_price(shown.per_hour)} {row.capacity_type}" in form


def test_month_report_is_exact_across_hub_restarts(
    bench: Workbench, bob: HubUser, kube: Kube, db_url: str
) -> None:
    set_spend(db_url, Fraction(50))  # half the budget: paid sizes start
    assert "wb-banner" not in bob.form()
    before = len(bob_rows(db_url))
    billed_before = billed(bob_rows(db_url))

    form = bob.form()
    start(bob, "large")
    first = pod_of(kube, "bob")
    assert first is not None
    bob.stop(kube)
    rows = bob_rows(db_url)
    assert len(rows) == before + 1 and rows[-1].stopped_at is not None
    check_row(rows[-1], kube, first["spec"]["nodeName"], form)

    restart_hub(bench)
    assert len(bob_rows(db_url)) == before + 1  # nothing lost
    start(bob, "large")
    second = pod_of(kube, "bob")
    assert second is not None
    restart_hub(bench)  # while the server runs: no second record, nothing lost
    assert bob.wait_ready(timeout=60).status_code == 200
    rows = bob_rows(db_url)
    assert len(rows) == before + 2 and rows[-1].stopped_at is None
    bob.stop(kube)
    rows = bob_rows(db_url)
    assert len(rows) == before + 2 and all(r.stopped_at for r in rows)
    check_row(rows[-1], kube, second["spec"]["nodeName"], form)

    month = rows[0].started_at.strftime("%Y-%m")
    assert all(r.stopped_at.strftime("%Y-%m") == month for r in rows)  # type: ignore[union-attr]
    expected = billed(rows)
    assert expected > billed_before  # the two runs are on bob's bill
    with open_db(db_url)() as session:
        by_user = {r.key: r.cost for r in report(session, by="user", month=month)}
    assert by_user["bob"] == expected

    printed = cost_report_by_user(db_url, month)
    assert printed["bob"] == float(expected)
    log = hub_log(bench)
    recorded = [r for r in rows if r.node != SEED_NODE]
    assert log.count("Accounting: bob started: ") == len(recorded)
    assert log.count("Accounting: bob stopped") == len(recorded)
    assert "Traceback" not in log


HELD_MIB = 512
"""What gina's kernel holds (pages written, so they are resident)."""


def metrics(user: HubUser) -> dict[str, Any]:
    """The server's own memory metrics (jupyter-resource-usage), through the proxy."""
    response = user.http.get(
        f"{user.url}/user/{user.name}/api/metrics/v1",
        headers={"Authorization": f"token {user.token()}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    return dict(response.json())


def test_a_sessions_peak_is_recorded_and_the_next_form_advises(
    bench: Workbench, kube: Kube, db_url: str
) -> None:
    set_spend(db_url, Fraction(0))
    gina = logged_in(bench, "gina")
    profiles = load_profiles([REPO / "profiles"])
    large, small = profiles.pools["mem64"], profiles.pools["cpu4"]
    start(gina, "large")
    kernel = start_kernel(gina)
    shown = metrics(gina)
    # JupyterLab shows the memory against the size's limit (MEM_LIMIT, set by
    # KubeSpawner from the size's full-node request).
    assert shown["limits"]["memory"]["rss"] == limit_mib(large) * 2**20
    before = shown["rss"] / 2**20
    execute(gina, kernel, f"held = b'\\x01' * ({HELD_MIB} * 2**20)", 60)
    assert metrics(gina)["rss"] / 2**20 - before == pytest.approx(HELD_MIB, rel=0.1)
    gina.stop(kube)

    with open_db(db_url)() as session:
        (row,) = session.query(UsageRecord).filter(UsageRecord.user == "gina").all()
    assert row.stopped_at is not None and row.peak_memory_mib is not None
    assert row.peak_memory_mib - before == pytest.approx(HELD_MIB, rel=0.1)

    form = gina.form()
    capacity = row.capacity_type
    text = (
        f"Your last session on 64 GiB peaked at {gib_text(row.peak_memory_mib)}: "
        f"4 GiB would do, {format_price(price_of(small, capacity, profiles))} "
        f"instead of {format_price(price_of(large, capacity, profiles))}."
    )
    assert (
        '<div class="alert alert-info wb-advice wb-advice-smaller" role="note" '
        f'data-size="small"><strong>Right size:</strong> {text}</div>'
    ) in form
    assert f"Accounting: gina used {row.peak_memory_mib} MiB" in hub_log(bench)

    month = row.started_at.strftime("%Y-%m")
    now = datetime.now(UTC)
    fits = load_rightsizing(db_url, month, now, profiles)
    (mine,) = [r for r in fits.rows if r.user == "gina"]
    assert (mine.size, mine.advised, mine.peak_mib) == (
        "large",
        "small",
        row.peak_memory_mib,
    )
    assert mine.saving > 0
