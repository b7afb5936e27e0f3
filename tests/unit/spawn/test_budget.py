"""Group budgets: whose spend counts where, the levels, what a spent one refuses."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from wbspawner.errors import UserFacingError
from wbspawner.model import GroupBudget, Profiles
from wbspawner.profiles import access
from wbspawner.spawn.budget import (
    BudgetState,
    budget_state,
    check_size,
    free_sizes,
    size_refusal,
    spending_group,
    summary,
    unavailable_sizes,
)
from wbspawner.spawn.form import CARD, budget_banner, kubespawner_profiles

NOW = datetime(2026, 5, 17, 12, 0, tzinfo=UTC)
BOB = ["jupyter-users"]
GINA = ["gpu-users", "jupyter-users"]
ALICE = ["jupyter-admins", "jupyter-users"]


def with_budgets(profiles: Profiles, *budgets: GroupBudget) -> Profiles:
    return dataclasses.replace(profiles, budgets=budgets)


# The shipped profiles: gpu-users 3000/month (free: small, medium), then
# jupyter-users 5000/month (no free sizes: the smallest CPU size stays free).
@pytest.mark.parametrize(
    ("groups", "is_admin", "spent", "size", "level", "refused"),
    [
        pytest.param(BOB, False, {}, "large", "ok", False, id="nothing-spent"),
        pytest.param(
            BOB,
            False,
            {"jupyter-users": Fraction("3999.99")},
            "large",
            "ok",
            False,
            id="just-below-warning",
        ),
        pytest.param(
            BOB,
            False,
            {"jupyter-users": Fraction(4000)},
            "large",
            "warn",
            False,
            id="exactly-80-percent-warns",
        ),
        pytest.param(
            BOB,
            False,
            {"jupyter-users": Fraction("4999.999999")},
            "xlarge",
            "warn",
            False,
            id="a-micro-dollar-below-100",
        ),
        pytest.param(
            BOB,
            False,
            {"jupyter-users": Fraction(5000)},
            "large",
            "over",
            True,
            id="exactly-100-percent-refuses-paid",
        ),
        pytest.param(
            BOB,
            False,
            {"jupyter-users": Fraction(7000)},
            "small",
            "over",
            False,
            id="smallest-cpu-size-stays-free",
        ),
        pytest.param(
            BOB,
            False,
            {"jupyter-users": Fraction(5000)},
            "medium",
            "over",
            True,
            id="only-the-smallest-is-free-by-default",
        ),
        pytest.param(
            GINA,
            False,
            {"gpu-users": Fraction(3000)},
            "gpu-t4",
            "over",
            True,
            id="gpu-group-counts-first-and-refuses-gpu",
        ),
        pytest.param(
            GINA,
            False,
            {"gpu-users": Fraction(3000)},
            "medium",
            "over",
            False,
            id="listed-free-size-allowed",
        ),
        pytest.param(
            GINA,
            False,
            {"jupyter-users": Fraction(9000)},
            "large",
            "ok",
            False,
            id="other-groups-spend-does-not-count",
        ),
        pytest.param(
            ALICE,
            True,
            {"jupyter-users": Fraction(6000)},
            "huge",
            "over",
            False,
            id="hub-admin-overrides",
        ),
        pytest.param(
            ["jupyter-admins", "jupyter-users"],
            False,
            {"jupyter-users": Fraction(6000)},
            "large",
            "over",
            False,
            id="admin-group-member-overrides",
        ),
        pytest.param(
            ["jupyter-admins"],
            False,
            {"jupyter-admins": Fraction(10**6)},
            "huge",
            "none",
            False,
            id="group-without-budget",
        ),
        pytest.param(
            BOB,
            False,
            {"-": Fraction(10**6)},
            "large",
            "ok",
            False,
            id="records-without-group-count-nowhere",
        ),
    ],
)
def test_level_and_decision(
    profiles: Profiles,
    groups: list[str],
    is_admin: bool,
    spent: dict[str, Fraction],
    size: str,
    level: str,
    refused: bool,
) -> None:
    state = budget_state(profiles, groups, spent, NOW, is_admin=is_admin)
    chosen = profiles.size(size)
    assert chosen is not None
    assert state.level == level
    assert (size_refusal(state, chosen) is not None) is refused
    if refused:
        with pytest.raises(UserFacingError, match="cannot start: Group"):
            check_size(state, chosen)
    else:
        check_size(state, chosen)


@pytest.mark.parametrize(
    ("warn_fraction", "spent", "level"),
    [
        pytest.param(0.5, Fraction("49.99"), "ok", id="below-half"),
        pytest.param(0.5, Fraction(50), "warn", id="half"),
        pytest.param(1.0, Fraction("99.999999"), "ok", id="warn-only-when-spent"),
        pytest.param(1.0, Fraction(100), "over", id="spent-is-over-not-warn"),
        pytest.param(0.1, Fraction("10.000001"), "warn", id="custom-low"),
    ],
)
def test_warn_fraction_from_the_profiles(
    profiles: Profiles, warn_fraction: float, spent: Fraction, level: str
) -> None:
    budgeted = with_budgets(
        profiles,
        GroupBudget(group="jupyter-users", monthly=100.0, warn_fraction=warn_fraction),
    )
    assert budget_state(budgeted, BOB, {"jupyter-users": spent}, NOW).level == level


@pytest.mark.parametrize(
    ("groups", "budgets", "expected"),
    [
        pytest.param(GINA, ("gpu-users", "jupyter-users"), "gpu-users", id="first"),
        pytest.param(
            GINA,
            ("jupyter-users", "gpu-users"),
            "jupyter-users",
            id="profiles-order-decides",
        ),
        pytest.param(GINA, (), "gpu-users", id="no-budget-first-login-group"),
        pytest.param(
            ["zz-other", "jupyter-users"],
            (),
            "jupyter-users",
            id="login-group-before-other",
        ),
        pytest.param(["zz-other"], (), "zz-other", id="any-group"),
        pytest.param([], (), "", id="no-group"),
    ],
)
def test_spending_group(
    profiles: Profiles, groups: list[str], budgets: tuple[str, ...], expected: str
) -> None:
    budgeted = with_budgets(
        profiles, *(GroupBudget(group=g, monthly=10.0) for g in budgets)
    )
    assert spending_group(budgeted, groups) == expected


def test_free_sizes_listed_or_smallest_cpu(profiles: Profiles) -> None:
    listed = GroupBudget(group="gpu-users", monthly=1.0, free_sizes=("medium",))
    assert free_sizes(profiles, listed) == {"medium"}
    default = GroupBudget(group="gpu-users", monthly=1.0)
    assert free_sizes(profiles, default) == {"small"}
    gpu_only = dataclasses.replace(
        profiles, sizes=tuple(s for s in profiles.sizes if s.slug.startswith("gpu"))
    )
    assert free_sizes(gpu_only, default) == frozenset()


def test_percent_rounds_down_and_month_is_named(profiles: Profiles) -> None:
    state = budget_state(profiles, BOB, {"jupyter-users": Fraction("4249.99")}, NOW)
    assert state.percent == 84
    assert state.month == "2026-05"
    assert state.spent == Fraction("4249.99")
    assert state.monthly == 5000


def test_warning_text_names_group_amounts_and_percent(profiles: Profiles) -> None:
    state = budget_state(profiles, BOB, {"jupyter-users": Fraction(4250)}, NOW)
    assert summary(state) == (
        "Group jupyter-users has used $4,250.00 of its $5,000.00 monthly budget (85 %)."
    )
    html = budget_banner(state)
    assert 'class="alert alert-warning wb-banner"' in html
    assert "(85 %)" in html


def test_spent_banner_says_what_still_starts_and_whom_to_ask(
    profiles: Profiles,
) -> None:
    state = budget_state(profiles, BOB, {"jupyter-users": Fraction(5100)}, NOW)
    sizes = access.visible_sizes(profiles, BOB, False)
    text = summary(state, sizes)
    assert text is not None
    assert text.startswith(
        "Group jupyter-users has used $5,100.00 of its $5,000.00 monthly budget "
        "(102 %)."
    )
    assert "You can still start '4 GiB'." in text
    assert "ask an admin (jupyter-admins)" in text
    assert "alert-danger" in budget_banner(state, sizes)


def test_admin_sees_the_state_with_the_override(profiles: Profiles) -> None:
    state = budget_state(
        profiles, ALICE, {"jupyter-users": Fraction(5000)}, NOW, is_admin=True
    )
    assert state.override
    assert summary(state) == (
        "Group jupyter-users has used $5,000.00 of its $5,000.00 monthly budget "
        "(100 %). As an admin you may still start any size."
    )


def test_no_banner_below_warning_or_without_budget(profiles: Profiles) -> None:
    ok = budget_state(profiles, BOB, {"jupyter-users": Fraction(1)}, NOW)
    none = budget_state(profiles, ["jupyter-admins"], {}, NOW)
    assert summary(ok) is None and budget_banner(ok) == ""
    assert summary(none) is None and budget_banner(none) == ""


def test_refusal_message_names_size_group_spend_and_whom_to_ask(
    profiles: Profiles,
) -> None:
    state = budget_state(profiles, BOB, {"jupyter-users": Fraction("5000.5")}, NOW)
    large = profiles.size("large")
    assert large is not None
    sizes = access.visible_sizes(profiles, BOB, False)
    with pytest.raises(UserFacingError) as caught:
        check_size(state, large, sizes)
    err = caught.value
    assert err.message == (
        "The size '64 GiB' cannot start: Group jupyter-users has used $5,000.50 of "
        "its $5,000.00 monthly budget (100 %). You can still start '4 GiB'. To use "
        "'64 GiB' this month, ask an admin (jupyter-admins) to raise the budget or "
        "to start it for you."
    )
    assert err.reason == "budget"
    assert err.status_code == 403
    assert "group 'jupyter-users' spent 5000.500000 of 5000.00 in 2026-05" in (
        err.log_message
    )


def test_unavailable_sizes_are_the_paid_ones(profiles: Profiles) -> None:
    state = budget_state(profiles, GINA, {"gpu-users": Fraction(3000)}, NOW)
    sizes = access.visible_sizes(profiles, GINA, False)
    refused = unavailable_sizes(state, sizes)
    assert sorted(refused) == sorted(
        s.slug for s in sizes if s.slug not in ("small", "medium")
    )
    assert (
        refused["gpu-t4"] == "Not available: the 2026-05 budget of gpu-users is spent"
    )


def test_form_marks_paid_sizes_and_preselects_a_free_one(profiles: Profiles) -> None:
    state = budget_state(profiles, BOB, {"jupyter-users": Fraction(5000)}, NOW)
    entries = kubespawner_profiles(profiles, BOB, False, budget=state)
    by_slug = {e["slug"]: e[CARD] for e in entries}
    assert [e["slug"] for e in entries if e["default"]] == ["small"]
    assert by_slug["small"].unavailable is None
    assert by_slug["large"].unavailable == (
        "Not available: the 2026-05 budget of jupyter-users is spent"
    )


def test_form_keeps_the_default_when_nothing_is_refused(profiles: Profiles) -> None:
    state = budget_state(profiles, BOB, {"jupyter-users": Fraction(4500)}, NOW)
    entries = kubespawner_profiles(profiles, BOB, False, budget=state)
    assert [e["slug"] for e in entries if e["default"]] == ["medium"]
    assert all(e[CARD].unavailable is None for e in entries)


def test_state_without_budget_refuses_nothing(profiles: Profiles) -> None:
    state = BudgetState(group="", level="none")
    assert all(size_refusal(state, s) is None for s in profiles.sizes)
