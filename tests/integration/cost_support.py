"""Costs in tests: `wbspawner cost report` as an admin runs it; spending seeded."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wbspawner.costs import accounting


def cost_report_by_user(db_url: str, month: str) -> dict[str, float]:
    """Run ``wbspawner cost report --by user --json``; return the cost of each user.

    The command of this Python's environment, as an admin runs it; fails the test
    when it exits with an error.
    """
    cli = Path(sys.executable).parent / "wbspawner"
    done = subprocess.run(
        [
            str(cli),
            "cost",
            "report",
            "--db",
            db_url,
            "--by",
            "user",
            "--month",
            month,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {row["user"]: row["cost"] for row in json.loads(done.stdout)}


def seed_spending(
    db_url: str,
    user: str,
    *,
    size: str = "medium",
    group: str = "gpu-users",
    zone: str = "us-east-1b",
) -> None:
    """Two hours of a $0.75/h server this month, as the spawner records them."""
    sessions = accounting.open_db(db_url)
    start = datetime.now(UTC).replace(day=1, hour=1, minute=0, second=0, microsecond=0)
    with sessions() as s:
        accounting.record_start(
            s, user, size, "cpu16", "spot", zone, "node-1", 0.75, start, group
        )
        accounting.record_stop(s, user, start + timedelta(hours=2))
