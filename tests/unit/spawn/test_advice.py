"""Right-size advice from the last sessions' memory peaks, on the shipped profiles.

Limits there (the pools' full-node requests): 4 GiB 2,772 MiB, 16 GiB 14,610 MiB,
64 GiB 62,170 MiB, 128 GiB 124,073 MiB; on-demand $0.0416, $0.126, $0.504,
$1.008 per hour (spot $0.015, $0.044, $0.18, $0.35).
"""

from __future__ import annotations

import pytest

from wbspawner.model import CapacityType, Profiles
from wbspawner.spawn.advice import (
    LAST_SESSIONS,
    Advice,
    PastSession,
    advice_html,
    advise,
    gib_text,
)

GIB = 1024


def sessions(
    *peaks: tuple[str, int], capacity: CapacityType = "on-demand"
) -> list[PastSession]:
    return [PastSession(size=s, peak_mib=p, capacity_type=capacity) for s, p in peaks]


def cpu_sizes(profiles: Profiles) -> list:
    return [s for s in profiles.sizes if not profiles.pool_of(s).is_gpu]


@pytest.mark.parametrize(
    ("history", "kind", "other", "text"),
    [
        pytest.param(
            sessions(*[("large", 9 * GIB)] * 10),
            "smaller",
            "medium",
            "Your last 10 sessions on 64 GiB peaked at 9 GiB: 16 GiB would do, "
            "$0.13/h instead of $0.50/h.",
            id="the-issue-example",
        ),
        pytest.param(
            sessions(("large", 700)),
            "smaller",
            "small",
            "Your last session on 64 GiB peaked at 0.7 GiB: 4 GiB would do, "
            "$0.042/h instead of $0.50/h.",
            id="one-session-cheapest-size",
        ),
        pytest.param(
            sessions(("large", 700), capacity="spot"),
            "smaller",
            "small",
            "Your last session on 64 GiB peaked at 0.7 GiB: 4 GiB would do, "
            "$0.015/h instead of $0.18/h.",
            id="priced-on-the-capacity-it-ran-on",
        ),
        pytest.param(
            sessions(("large", 2300)),
            "smaller",
            "medium",
            "Your last session on 64 GiB peaked at 2.2 GiB: 16 GiB would do, "
            "$0.13/h instead of $0.50/h.",
            id="headroom-rules-out-4-gib",
        ),
        pytest.param(
            sessions(("large", 1000), ("large", 11 * GIB), ("large", 3000)),
            "smaller",
            "medium",
            "Your last 3 sessions on 64 GiB peaked at 11 GiB: 16 GiB would do, "
            "$0.13/h instead of $0.50/h.",
            id="the-highest-peak-counts",
        ),
        pytest.param(
            sessions(("medium", 1000), ("large", 40 * GIB), ("large", 900)),
            "smaller",
            "small",
            "Your last session on 16 GiB peaked at 1 GiB: 4 GiB would do, "
            "$0.042/h instead of $0.13/h.",
            id="only-the-size-used-last",
        ),
        pytest.param(
            sessions(("large", 57 * GIB), ("large", 3 * GIB)),
            "limit",
            "xlarge",
            "1 of your last 2 sessions on 64 GiB reached 57 GiB of its 61 GiB "
            "memory limit: a kernel that needs more is stopped. 128 GiB has room, "
            "$1.01/h instead of $0.50/h.",
            id="limit-hit-names-the-bigger-size",
        ),
        pytest.param(
            sessions(("xxlarge", 240 * GIB)),
            "limit",
            None,
            "Your last session on 256 GiB reached 240 GiB of its 246 GiB "
            "memory limit: a kernel that needs more is stopped.",
            id="limit-hit-on-the-biggest-visible-size",
        ),
    ],
)
def test_advice(
    profiles: Profiles,
    history: list[PastSession],
    kind: str,
    other: str | None,
    text: str,
) -> None:
    found = advise(history, cpu_sizes(profiles)[:5], profiles)
    assert found is not None
    assert (found.kind, found.other, found.text) == (kind, other, text)


@pytest.mark.parametrize(
    ("history", "min_sessions"),
    [
        pytest.param([], 1, id="no-measured-session"),
        pytest.param(sessions(("large", 40 * GIB)), 1, id="no-cheaper-size-fits"),
        pytest.param(sessions(("large", 12 * GIB)), 1, id="16-gib-without-headroom"),
        pytest.param(sessions(("small", 1500)), 1, id="already-the-cheapest"),
        pytest.param(sessions(("huge", 1000)), 1, id="size-no-longer-visible"),
        pytest.param(sessions(("large", 700)) * 2, 3, id="too-few-sessions"),
        pytest.param(sessions(("gpu-t4", 1000)), 1, id="gpu-never-advised-a-cpu"),
    ],
)
def test_no_advice(
    profiles: Profiles, history: list[PastSession], min_sessions: int
) -> None:
    visible = [s for s in profiles.sizes if s.slug != "huge"]
    assert advise(history, visible, profiles, min_sessions=min_sessions) is None


def test_only_the_last_sessions_are_read(profiles: Profiles) -> None:
    """An old session past the last ten that hit the limit is not held against."""
    history = sessions(*[("large", 2 * GIB)] * LAST_SESSIONS, ("large", 61 * GIB))
    found = advise(history, profiles.sizes, profiles)
    assert found is not None
    assert (found.kind, found.sessions, found.peak_mib) == ("smaller", 10, 2 * GIB)


@pytest.mark.parametrize(
    ("mib", "text"),
    [(700, "0.7 GiB"), (1024, "1 GiB"), (9 * GIB, "9 GiB"), (9728, "9.5 GiB")]
    + [(12 * GIB + 300, "12 GiB"), (62170, "61 GiB")],
)
def test_gib_text(mib: int, text: str) -> None:
    assert gib_text(mib) == text


def test_html_is_one_escaped_block() -> None:
    advice = Advice(
        kind="smaller",
        size="large",
        other='s"<x>',
        sessions=1,
        peak_mib=1,
        text="<b>4 GiB</b> would do",
    )
    block = advice_html(advice)
    assert block.startswith('<div class="alert alert-info wb-advice wb-advice-smaller"')
    assert 'data-size="s&quot;&lt;x&gt;"' in block
    assert "&lt;b&gt;4 GiB&lt;/b&gt; would do" in block
    assert "wb-banner" not in block  # the budget's banners are another block
    assert advice_html(None) == ""
