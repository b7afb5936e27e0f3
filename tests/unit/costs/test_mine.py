"""A user's own spending on the home page: per size, total, group budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

from wbspawner.costs.accounting import ReportRow, open_db, record_start, record_stop
from wbspawner.costs.mine import my_spending
from wbspawner.hub.spending import read_spending, template_var
from wbspawner.model import Profiles
from wbspawner.spawn.budget import BudgetState

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def test_sizes_show_their_names_and_the_budget_its_state(profiles: Profiles) -> None:
    size = profiles.sizes[0]
    rows = [
        ReportRow(key=size.slug, hours=Fraction(3), cost=Fraction(3, 2)),
        ReportRow(key="gone", hours=Fraction(1), cost=Fraction(1, 20)),
    ]
    state = BudgetState(
        group="gpu-users", level="warn", spent=Fraction(850), monthly=Fraction(1000)
    )
    view = my_spending(rows, state, profiles, "2026-03")
    assert [(s.size, s.hours, s.cost) for s in view.sizes] == [
        (size.display_name, "3.00", "$1.50"),
        ("gone", "1.00", "$0.050"),
    ]
    assert view.total == "$1.55"
    assert view.budget.startswith(
        "Your group gpu-users has used $850.00 of its $1,000.00 budget for "
        "2026-03 (85 %)."
    )
    assert view.level == "warn" and view.percent == 85


def test_no_budget_no_sentence(profiles: Profiles) -> None:
    view = my_spending([], BudgetState(group="", level="none"), profiles, "2026-03")
    assert view.budget == "" and view.sizes == () and view.total == "$0.00"


def test_read_counts_only_the_users_own_records(
    tmp_path: Path, profiles: Profiles
) -> None:
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    slug = profiles.sizes[0].slug
    with open_db(url)() as s:
        for user, hours in (("ada", 2), ("bob", 5)):
            start = NOW - timedelta(days=1)
            record_start(s, user, slug, "p", "spot", "z", "n", 0.5, start, "g")
            record_stop(s, user, start + timedelta(hours=hours))
    view = read_spending(open_db(url), profiles, "ada", [], is_admin=False, now=NOW)
    assert [(s.hours, s.cost) for s in view.sizes] == [("2.00", "$1.00")]


def test_template_var_without_a_database_or_user_is_none(profiles: Profiles) -> None:
    assert template_var(None, lambda: profiles)(object())() is None
    assert template_var("sqlite://", lambda: profiles)(None)() is None


def test_a_database_that_does_not_answer_shows_no_panel(
    profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    user = SimpleNamespace(name="ada", admin=False, groups=[])
    var = template_var("postgresql+psycopg://wb@127.0.0.1:1/costs", lambda: profiles)
    assert var(user)() is None
    assert "ada's spending cannot be read" in caplog.text
    assert "Traceback" not in caplog.text
