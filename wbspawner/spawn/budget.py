"""Group budgets: whose spending counts where, and what a spent budget refuses.

This module owns the budget rules the spawn form and the spawner's option check
apply (``budgets:`` in the profiles):

- a user's spending counts against one group: the first budget, in the
  profiles' order, whose group the user belongs to; without one, the user's
  first (sorted) group that may log in, else their first group;
- the month-to-date spend of that group (recorded servers and Dask clusters,
  open records up to now) against its monthly amount gives a level: ``ok``,
  ``warn`` from ``warn_fraction`` (80 % by default), ``over`` from 100 %;
- when ``over``, sizes that are not free cannot start. Free sizes are the
  budget's ``free_sizes``, or, when it lists none, the smallest size without
  GPUs (least memory, then cheapest, then first listed), so that members can
  still open their notebooks;
- hub admins and members of an admin group are never refused (the override);
  they still see the state.

Pure: no I/O. Comparisons are exact (fractions); floats only for display.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Literal

from wbspawner.catalog.pricing import format_price
from wbspawner.errors import UserFacingError
from wbspawner.model import GroupBudget, Profiles, Size
from wbspawner.profiles.access import is_admin_member

BudgetLevel = Literal["none", "ok", "warn", "over"]
"""``none``: no budget applies; ``ok``; ``warn``: from warn_fraction; ``over``."""


def _exact(value: float) -> Fraction:
    """Return a float from the profiles as the decimal number the admin wrote."""
    return Fraction(str(value))


def budget_of(profiles: Profiles, group: str) -> GroupBudget | None:
    """Return the budget of a group, if it has one.

    Args:
        profiles: the profiles.
        group: a group name.

    Returns:
        The group's budget, or ``None``.
    """
    return next((b for b in profiles.budgets if b.group == group), None)


def spending_group(profiles: Profiles, groups: Collection[str]) -> str:
    """Return the group a user's spending counts against.

    Args:
        profiles: the profiles (budgets in order, login groups).
        groups: the user's groups.

    Returns:
        The group of the first budget (in the profiles' order) the user is a
        member of; else the user's first group, in name order, that may log in
        (a user or admin group); else their first group; ``""`` for none.
    """
    for budget in profiles.budgets:
        if budget.group in groups:
            return budget.group
    login = {*profiles.user_groups, *profiles.admin_groups}
    ordered = sorted(groups)
    return next((g for g in ordered if g in login), ordered[0] if ordered else "")


def free_sizes(profiles: Profiles, budget: GroupBudget) -> frozenset[str]:
    """Return the slugs of the sizes that stay allowed once a budget is spent.

    Args:
        profiles: the profiles (sizes and their pools).
        budget: the group's budget.

    Returns:
        The budget's ``free_sizes``; when it lists none, the smallest size
        without GPUs (least memory, then cheapest, then first listed), if any.
    """
    if budget.free_sizes:
        return frozenset(budget.free_sizes)
    cpu = [
        (profiles.pool_of(s).memory_mib, profiles.pool_of(s).price_per_hour, i, s)
        for i, s in enumerate(profiles.sizes)
        if not profiles.pool_of(s).is_gpu
    ]
    return frozenset({min(cpu)[3].slug}) if cpu else frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetState:
    """How much of its monthly budget a user's group has spent."""

    group: str
    """The group the user's spending counts against (``""``: none)."""
    level: BudgetLevel
    spent: Fraction = Fraction(0)
    """Month-to-date spend of the group, USD."""
    monthly: Fraction = Fraction(0)
    """The group's monthly budget, USD (0 when ``level`` is ``none``)."""
    month: str = ""
    """``YYYY-MM`` of the spend."""
    free_sizes: frozenset[str] = frozenset()
    """Sizes that stay allowed when the budget is spent."""
    override: bool = False
    """The user is an admin: never refused."""
    admins: tuple[str, ...] = ()
    """Admin groups, named in messages as whom to ask."""

    @property
    def percent(self) -> int:
        """Return the share of the budget spent, in whole percent (rounded down)."""
        return math.floor(self.spent * 100 / self.monthly) if self.monthly else 0

    def is_paid(self, size: Size) -> bool:
        """Return whether a size is refused once the budget is spent."""
        return size.slug not in self.free_sizes


def budget_state(
    profiles: Profiles,
    groups: Collection[str],
    spent: Mapping[str, Fraction],
    now: datetime,
    *,
    is_admin: bool = False,
) -> BudgetState:
    """Return where a user's group stands against its monthly budget.

    Args:
        profiles: the profiles (budgets, admin groups, sizes).
        groups: the user's groups.
        spent: month-to-date spend per group, USD (groups missing spent 0).
        now: the current time; names the month.
        is_admin: whether the user is a hub admin (members of an admin group
            are admins too).

    Returns:
        The state; level ``none`` when no budget applies to the user.
    """
    group = spending_group(profiles, groups)
    override = is_admin or is_admin_member(profiles, groups)
    budget = budget_of(profiles, group)
    admins = profiles.admin_groups
    if budget is None:
        return BudgetState(group=group, level="none", override=override, admins=admins)
    monthly = _exact(budget.monthly)
    used = Fraction(spent.get(group, Fraction(0)))
    level: BudgetLevel = "ok"
    if used >= monthly:
        level = "over"
    elif used >= monthly * _exact(budget.warn_fraction):
        level = "warn"
    return BudgetState(
        group=group,
        level=level,
        spent=used,
        monthly=monthly,
        month=now.strftime("%Y-%m"),
        free_sizes=free_sizes(profiles, budget),
        override=override,
        admins=admins,
    )


def _usage(state: BudgetState) -> str:
    spent = format_price(float(state.spent), "")
    monthly = format_price(float(state.monthly), "")
    return (
        f"Group {state.group} has used {spent} of its {monthly} monthly budget "
        f"({state.percent} %)"
    )


def _quoted(slugs: Iterable[str], sizes: Iterable[Size]) -> str:
    names = [f"'{s.display_name}'" for s in sizes if s.slug in set(slugs)]
    return " or ".join(names)


def _ask(state: BudgetState) -> str:
    who = " or ".join(state.admins) or "the hub admins"
    return f"ask an admin ({who}) to raise the budget or to start it for you"


def summary(state: BudgetState, sizes: Iterable[Size] = ()) -> str | None:
    """Return the banner text for a group at or above its warning level.

    Args:
        state: the budget state.
        sizes: the sizes the user sees (to name the free ones).

    Returns:
        ``Group X has used $A of its $B monthly budget (N %).``, and when the
        budget is spent what still starts and whom to ask; ``None`` below the
        warning level or without a budget.
    """
    if state.level not in ("warn", "over"):
        return None
    text = _usage(state) + "."
    if state.level == "over":
        if state.override:
            return text + " As an admin you may still start any size."
        free = _quoted(state.free_sizes, sizes)
        still = f" You can still start {free}." if free else ""
        text += (
            f" Paid sizes cannot start until next month.{still} To use another "
            f"size, {_ask(state)}."
        )
    return text


def size_refusal(state: BudgetState, size: Size) -> str | None:
    """Return why a size cannot start because of the budget, or ``None``.

    Args:
        state: the user's budget state.
        size: the size.

    Returns:
        A short reason (shown next to the size on the form), or ``None`` when
        the size may start.
    """
    if state.level != "over" or state.override or not state.is_paid(size):
        return None
    return f"Not available: the {state.month} budget of {state.group} is spent"


def unavailable_sizes(state: BudgetState, sizes: Iterable[Size]) -> dict[str, str]:
    """Return the sizes the budget refuses, with the reason, by slug.

    Args:
        state: the user's budget state.
        sizes: the sizes to consider.

    Returns:
        A new dict ``slug → reason``; empty when nothing is refused.
    """
    out: dict[str, str] = {}
    for size in sizes:
        reason = size_refusal(state, size)
        if reason:
            out[size.slug] = reason
    return out


def check_size(state: BudgetState, size: Size, sizes: Iterable[Size] = ()) -> None:
    """Refuse a paid size when the user's group has spent its budget.

    Args:
        state: the user's budget state.
        size: the size asked for.
        sizes: the sizes the user sees (to name the free ones).

    Raises:
        UserFacingError: the budget is spent, the size is not free and the user
            is not an admin; the message names the group, the spend, what still
            starts and whom to ask.
    """
    if size_refusal(state, size) is None:
        return
    free = _quoted(state.free_sizes, sizes)
    still = f" You can still start {free}." if free else ""
    raise UserFacingError(
        f"The size '{size.display_name}' cannot start: {_usage(state)}.{still} "
        f"To use '{size.display_name}' this month, {_ask(state)}.",
        reason="budget",
        log_message=(
            f"size {size.slug!r} refused: group {state.group!r} spent "
            f"{float(state.spent):.6f} of {float(state.monthly):.2f} in {state.month}"
        ),
        status_code=403,
    )
