"""The month's costs as an admin reads them: `wbspawner cost report`, run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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
