"""The one reader of RFC 3339 timestamps (wbspawner.timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wbspawner.timestamps import parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2026-12-07T15:00:00Z", datetime(2026, 12, 7, 15, tzinfo=UTC), id="z"
        ),
        pytest.param(
            "2026-12-07T10:00:00-05:00",
            datetime(2026, 12, 7, 10, tzinfo=timezone(timedelta(hours=-5))),
            id="offset",
        ),
        pytest.param(
            "2026-12-07T15:00:00", datetime(2026, 12, 7, 15, tzinfo=UTC), id="naive"
        ),
        pytest.param("yesterday", None, id="malformed"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="missing"),
        pytest.param(1765119600, None, id="a-number"),
    ],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected
