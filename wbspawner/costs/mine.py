"""What a user sees of their own spending on the hub's home page.

This module owns the view: the user's cost this month per size (their servers
and their Dask workers, at the $/hour in force when they ran), the month's
total, and where their group stands against its monthly budget, as plain
strings for the hub's ``home.html``. The sizes show their display names from
the profiles (a size no longer in the profiles shows its slug).

Pure: no I/O; :mod:`wbspawner.hub.spending` reads the database and calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from wbspawner.catalog.pricing import format_price
from wbspawner.costs.accounting import ReportRow
from wbspawner.model import Profiles
from wbspawner.spawn.budget import BudgetLevel, BudgetState


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeLine:
    """One size's row of the user's spending."""

    size: str
    """Display name of the size."""
    hours: str
    cost: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MySpending:
    """The home page's spending panel."""

    month: str
    """``YYYY-MM``."""
    sizes: tuple[SizeLine, ...]
    """Most expensive first."""
    total: str
    budget: str
    """A sentence on the group's budget (``""``: no group budget applies)."""
    level: BudgetLevel
    percent: int
    """Share of the group's budget spent, whole percent (0 without a budget)."""


def my_spending(
    rows: Sequence[ReportRow], state: BudgetState, profiles: Profiles, month: str
) -> MySpending:
    """Return the spending panel of one user.

    Args:
        rows: the user's report for the month, grouped by size.
        state: the user's group budget state.
        profiles: the profiles in force (size display names).
        month: ``YYYY-MM``.

    Returns:
        The panel; costs as ``$1.50`` (cents, or tenths of a cent below 10 ¢).
    """
    names = {s.slug: s.display_name for s in profiles.sizes}
    total = sum((r.cost for r in rows), start=Fraction(0))
    lines = tuple(
        SizeLine(
            size=names.get(r.key, r.key),
            hours=f"{float(r.hours):,.2f}",
            cost=format_price(float(r.cost), ""),
        )
        for r in rows
    )
    budget = ""
    if state.level != "none":
        budget = (
            f"Your group {state.group} has used "
            f"{format_price(float(state.spent), '')} of its "
            f"{format_price(float(state.monthly), '')} budget for {month} "
            f"({state.percent} %)."
        )
        if state.level == "over":
            budget += " Paid sizes cannot start until next month."
        elif state.level == "warn":
            budget += " It is close to its limit."
    return MySpending(
        month=month,
        sizes=lines,
        total=format_price(float(total), ""),
        budget=budget,
        level=state.level,
        percent=min(100, state.percent),
    )
