"""``wbspawner cost alarm`` against a moto server: create, no-op, update."""

from __future__ import annotations

import io
import uuid
from typing import Any

from tests.paths import REPO
from wbspawner.cli import main as cli
from wbspawner.costs.alarm import BudgetSpec, ensure_budget
from wbspawner.profiles.loader import load_profiles

ACCOUNT = "123456789012"
POOLS = ("cpu4", "mem64")


def spec(name: str, monthly: float = 1000.0, **kw: Any) -> BudgetSpec:
    return BudgetSpec(
        name=name, monthly=monthly, email="ops@example.org", pools=POOLS, **kw
    )


def read(client: Any, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    budget = client.describe_budget(AccountId=ACCOUNT, BudgetName=name)["Budget"]
    notes = client.describe_notifications_for_budget(
        AccountId=ACCOUNT, BudgetName=name
    )["Notifications"]
    return budget, notes


def test_budget_is_created_with_amount_thresholds_and_tag_filters(moto: Any) -> None:
    client, name = moto.client("budgets"), f"wb-{uuid.uuid4().hex[:8]}"
    assert ensure_budget(client, ACCOUNT, spec(name)).action == "created"
    budget, notes = read(client, name)
    assert float(budget["BudgetLimit"]["Amount"]) == 1000.0
    assert (budget["TimeUnit"], budget["BudgetType"]) == ("MONTHLY", "COST")
    assert budget["CostFilters"] == {
        "TagKeyValue": [f"user:wbspawner.io/pool${p}" for p in POOLS]
    }
    assert sorted(n["Threshold"] for n in notes) == [80.0, 100.0]
    assert {(n["NotificationType"], n["ThresholdType"]) for n in notes} == {
        ("ACTUAL", "PERCENTAGE")
    }


def test_email_subscriber_is_set(moto: Any) -> None:
    from moto.budgets.models import budgets_backends

    client, name = moto.client("budgets"), f"wb-{uuid.uuid4().hex[:8]}"
    ensure_budget(client, ACCOUNT, spec(name))
    backend = budgets_backends[ACCOUNT]["aws"]  # moto server runs in this process
    stored = backend.budgets[ACCOUNT][name].notifications
    assert [n.subscribers for n in stored] == [
        [{"SubscriptionType": "EMAIL", "Address": "ops@example.org"}]
    ] * 2


def test_second_run_changes_nothing_and_a_new_amount_updates(moto: Any) -> None:
    client, name = moto.client("budgets"), f"wb-{uuid.uuid4().hex[:8]}"
    ensure_budget(client, ACCOUNT, spec(name))
    before = read(client, name)
    again = ensure_budget(client, ACCOUNT, spec(name))
    assert (again.action, again.changes) == ("unchanged", ())
    assert read(client, name)[0]["LastUpdatedTime"] == before[0]["LastUpdatedTime"]
    changed = ensure_budget(client, ACCOUNT, spec(name, monthly=1500))
    assert changed.action == "replaced"
    assert any("1500.00" in c for c in changed.changes)
    budget, notes = read(client, name)
    assert float(budget["BudgetLimit"]["Amount"]) == 1500.0
    assert sorted(n["Threshold"] for n in notes) == [80.0, 100.0]


def test_cli_creates_then_reports_nothing_changed(
    moto: Any, moto_credentials: None
) -> None:
    name = f"wb-{uuid.uuid4().hex[:8]}"
    argv = [
        "cost",
        "alarm",
        "--monthly",
        "1000",
        "--email",
        "ops@example.org",
        "--name",
        name,
        "--endpoint-url",
        moto.endpoint_url,
        "--account-id",
        ACCOUNT,
        "--profiles",
        str(REPO / "profiles"),
    ]
    outputs = []
    for _ in range(2):
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(argv, environ={}, stdout=out, stderr=err) == 0, err.getvalue()
        outputs.append(out.getvalue())
    assert f"budget {name} created" in outputs[0]
    assert "nothing changed" in outputs[1]
    budget, _ = read(moto.client("budgets"), name)
    pools = sorted(load_profiles([REPO / "profiles"]).pools)
    assert budget["CostFilters"]["TagKeyValue"] == [
        f"user:wbspawner.io/pool${p}" for p in pools
    ]
