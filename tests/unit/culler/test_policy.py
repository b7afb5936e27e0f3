"""The culler's rules, one test (or table) per rule, on an injected clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from wbspawner.culler.policy import (
    KernelView,
    ServerView,
    decide,
    last_use,
    warning_text,
)
from wbspawner.model import CullSettings

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
SETTINGS = CullSettings(
    idle_timeout_s=3600,
    warn_before_s=600,
    max_busy_age_s=7200,
    size_timeouts_s=MappingProxyType({"huge": 1200}),
)


def server(**kw: object) -> ServerView:
    base = ServerView(user="ada", size="medium", started=T0, last_activity=T0)
    return replace(base, **kw)  # type: ignore[arg-type]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("minutes", "action"),
    [(0, "keep"), (49.9, "keep"), (50, "warn"), (59, "warn"), (120, "warn")],
)
def test_warned_before_the_idle_timeout(minutes: float, action: str) -> None:
    """Warned warn_before_s before the size's timeout (1 h less 10 min)."""
    assert decide(server(), SETTINGS, at(minutes)).action == action


def test_a_warning_names_the_stop_time_at_least_warn_before_ahead() -> None:
    early = decide(server(), SETTINGS, at(50))
    assert early.stop_at == at(60)
    late = decide(server(), SETTINGS, at(120))  # a pass missed: still 10 min notice
    assert late.stop_at == at(130)


def test_never_culled_without_a_warning() -> None:
    assert decide(server(), SETTINGS, at(600)).action == "warn"


@pytest.mark.parametrize(
    ("warned", "minutes", "action"),
    [(50, 55, "keep"), (50, 60, "cull"), (58, 60, "keep"), (58, 68, "cull")],
)
def test_culled_after_timeout_and_warn_before(
    warned: float, minutes: float, action: str
) -> None:
    """Culled once the timeout passed and warn_before_s since the warning."""
    warned_server = server(warned_at=at(warned))
    assert decide(warned_server, SETTINGS, at(minutes)).action == action


def test_use_after_the_warning_resets_it() -> None:
    """'Keep running' (or any use) after the warning withdraws it."""
    kept = server(warned_at=at(50), last_activity=at(52))
    decision = decide(kept, SETTINGS, at(60))
    assert decision.action == "reset"
    fresh = replace(kept, warned_at=None)  # the service forgets the warning
    assert decide(fresh, SETTINGS, at(60)).action == "keep"
    assert decide(fresh, SETTINGS, at(52 + 50)).action == "warn"


def test_per_size_timeouts() -> None:
    huge = server(size="huge")  # 20 min timeout
    assert decide(huge, SETTINGS, at(9)).action == "keep"
    assert decide(huge, SETTINGS, at(10)).action == "warn"
    assert decide(server(size="unknown"), SETTINGS, at(10)).action == "keep"
    assert decide(server(size=None), SETTINGS, at(50)).action == "warn"


def test_a_busy_kernel_is_use_until_the_maximum_age() -> None:
    busy = KernelView(id="k", execution_state="busy", busy_since=at(0))
    running = server(kernels=(busy,))
    assert decide(running, SETTINGS, at(100)).action == "keep"
    assert last_use(running, SETTINGS, at(119)) == at(119)
    # Past max_busy_age_s (2 h) the server is judged by its other use alone.
    assert last_use(running, SETTINGS, at(120)) == T0
    assert decide(running, SETTINGS, at(120)).action == "warn"


def test_an_idle_kernel_is_not_use() -> None:
    idle = KernelView(id="k", execution_state="idle")
    assert decide(server(kernels=(idle,)), SETTINGS, at(50)).action == "warn"


def test_a_kernel_busy_after_the_warning_resets_it() -> None:
    busy = KernelView(id="k", execution_state="busy", busy_since=at(55))
    warned = server(warned_at=at(50), kernels=(busy,))
    assert decide(warned, SETTINGS, at(60)).action == "reset"


def test_culling_off_keeps_everything() -> None:
    off = replace(SETTINGS, enabled=False)
    assert decide(server(warned_at=at(50)), off, at(600)).action == "keep"


def test_every_decision_has_a_reason() -> None:
    for minutes in (0, 50, 70):
        assert decide(server(), SETTINGS, at(minutes)).reason


def test_warning_text_has_the_idle_time_stop_time_and_price() -> None:
    decision = decide(server(price_per_hour=2.016), SETTINGS, at(50))
    text = warning_text(decision, at(50), ZoneInfo("Europe/Berlin"))
    assert text == (
        "This server has been idle for 50 minutes; it will stop at 16:00 CET "
        "and it costs $2.02/h. Keep it running?"
    )
    unpriced = decide(server(), SETTINGS, at(50))
    assert "costs" not in warning_text(unpriced, at(50), ZoneInfo("UTC"))
