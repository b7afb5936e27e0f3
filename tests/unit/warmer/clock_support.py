"""The warmer tests' fixed clock and zones.

The warmer's decisions depend on the time of day in the schedule's time zone
and on zones; its tests share one moment, a Wednesday at 09:00 in New York
(the shipped schedules' zone), so a schedule window reads the same in all of
them.
"""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 11, 25, 14, tzinfo=UTC)
"""Wednesday 2026-11-25, 09:00 in New York."""
A, B = "us-east-1a", "us-east-1b"
"""Two zones of the test region."""
