"""An AWS Budget that e-mails when the node pools' monthly spend passes a limit.

This module owns the budget wbspawner keeps in AWS Budgets: a monthly COST
budget filtered by the cost-allocation tag ``wbspawner.io/pool`` that the node
pools put on their instances (``CostFilters`` ``TagKeyValue``
``user:wbspawner.io/pool$<pool>``; the tag must be activated as a
cost-allocation tag in the billing console), with ACTUAL notifications at 80 %
and 100 % to an e-mail address.

:func:`ensure_budget` is idempotent: it reads the budget, and only when the
limit, filters or notifications differ from what is wanted does it write. A
changed budget is replaced (deleted and created again with its notifications
and subscriber in one call), so the result is the same whatever was there. The
subscribers of an existing budget are not compared (pass ``replace=True`` to
change the e-mail address of an unchanged budget).

The caller makes the ``budgets`` client with
:func:`~wbspawner.adapters.aws.make_client`; calls go through
:func:`~wbspawner.adapters.aws.call` (botocore's retries, mapped errors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from wbspawner.adapters.aws import NotFoundError, call
from wbspawner.model import POOL_LABEL

DEFAULT_BUDGET_NAME = "wbspawner-node-pools"
DEFAULT_THRESHOLDS = (80.0, 100.0)

Action = Literal["created", "replaced", "unchanged"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetSpec:
    """The budget wanted."""

    name: str = DEFAULT_BUDGET_NAME
    monthly: float
    """Limit, USD per month."""
    email: str
    pools: tuple[str, ...]
    """Pools whose tagged spend counts."""
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    """Percentages of the limit (ACTUAL spend) that send an e-mail."""
    currency: str = "USD"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmResult:
    """What :func:`ensure_budget` did."""

    action: Action
    changes: tuple[str, ...] = field(default=())
    """What differed (empty when created or unchanged)."""


def tag_filters(pools: Sequence[str]) -> dict[str, list[str]]:
    """Return the ``CostFilters`` selecting spend tagged with these pools.

    Args:
        pools: pool names.

    Returns:
        ``{"TagKeyValue": ["user:wbspawner.io/pool$<pool>", …]}`` (sorted).
    """
    return {"TagKeyValue": [f"user:{POOL_LABEL}${p}" for p in sorted(pools)]}


def budget_body(spec: BudgetSpec) -> dict[str, Any]:
    """Return the ``Budget`` parameter of ``CreateBudget`` for a spec."""
    return {
        "BudgetName": spec.name,
        "BudgetLimit": {"Amount": f"{spec.monthly:.2f}", "Unit": spec.currency},
        "CostFilters": tag_filters(spec.pools),
        "TimeUnit": "MONTHLY",
        "BudgetType": "COST",
    }


def notifications(spec: BudgetSpec) -> list[dict[str, Any]]:
    """Return the notifications (without subscribers) wanted for a spec."""
    return [
        {
            "NotificationType": "ACTUAL",
            "ComparisonOperator": "GREATER_THAN",
            "Threshold": float(t),
            "ThresholdType": "PERCENTAGE",
        }
        for t in spec.thresholds
    ]


def _amount(value: object) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _notification_key(n: Mapping[str, Any]) -> tuple[str, str, float, str]:
    return (
        str(n.get("NotificationType")),
        str(n.get("ComparisonOperator")),
        float(n.get("Threshold", 0)),
        str(n.get("ThresholdType", "PERCENTAGE")),
    )


def differences(
    spec: BudgetSpec, budget: Mapping[str, Any], existing: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Return how an existing budget differs from the spec (pure).

    Args:
        spec: the budget wanted.
        budget: the ``Budget`` of ``DescribeBudget``.
        existing: its notifications (``DescribeNotificationsForBudget``).

    Returns:
        Human-readable differences; empty when nothing needs to change.
    """
    changes = []
    limit = budget.get("BudgetLimit", {})
    if (
        _amount(limit.get("Amount")) != _amount(f"{spec.monthly:.2f}")
        or limit.get("Unit") != spec.currency
    ):
        changes.append(
            f"limit {limit.get('Amount')} {limit.get('Unit')} -> "
            f"{spec.monthly:.2f} {spec.currency}"
        )
    if budget.get("TimeUnit") != "MONTHLY" or budget.get("BudgetType") != "COST":
        changes.append("not a monthly cost budget")
    have = {k: sorted(v) for k, v in (budget.get("CostFilters") or {}).items()}
    if have != tag_filters(spec.pools):
        changes.append(f"filters {have} -> {tag_filters(spec.pools)}")
    have_n = sorted(_notification_key(n) for n in existing)
    want_n = sorted(_notification_key(n) for n in notifications(spec))
    if have_n != want_n:
        changes.append(
            f"thresholds {[k[2] for k in have_n]} -> {[k[2] for k in want_n]}"
        )
    return changes


def ensure_budget(
    client: Any, account_id: str, spec: BudgetSpec, *, replace: bool = False
) -> AlarmResult:
    """Create the budget, or replace it when it differs; otherwise leave it alone.

    Args:
        client: a ``budgets`` client (Budgets is global: ``us-east-1`` serves
            it).
        account_id: the AWS account that owns the budget.
        spec: the budget wanted.
        replace: replace it even when it looks unchanged (e.g. a new e-mail).

    Returns:
        What was done and why.

    Raises:
        AwsError: when AWS refuses a call.
    """
    subscribers = [{"SubscriptionType": "EMAIL", "Address": spec.email}]
    wanted = [
        {"Notification": n, "Subscribers": subscribers} for n in notifications(spec)
    ]
    try:
        found = call(
            client,
            "describe_budget",
            about=spec.name,
            AccountId=account_id,
            BudgetName=spec.name,
        )["Budget"]
    except NotFoundError:
        found = None
    if found is None:
        call(
            client,
            "create_budget",
            about=spec.name,
            AccountId=account_id,
            Budget=budget_body(spec),
            NotificationsWithSubscribers=wanted,
        )
        return AlarmResult(action="created")
    existing = call(
        client,
        "describe_notifications_for_budget",
        about=spec.name,
        AccountId=account_id,
        BudgetName=spec.name,
    ).get("Notifications", [])
    changes = differences(spec, found, existing)
    if replace and not changes:
        changes = ["replacement asked for"]
    if not changes:
        return AlarmResult(action="unchanged")
    call(
        client,
        "delete_budget",
        about=spec.name,
        AccountId=account_id,
        BudgetName=spec.name,
    )
    call(
        client,
        "create_budget",
        about=spec.name,
        AccountId=account_id,
        Budget=budget_body(spec),
        NotificationsWithSubscribers=wanted,
    )
    return AlarmResult(action="replaced", changes=tuple(changes))
