"""The warmer's files: observed spot prices in, warm status for the hub out.

This module owns the two files the warmer shares with the hub when it runs as
a hub-managed service (same pod, same disk): it reads observed spot prices
(``{"<type>/<zone>": USD per hour}``, as the spawn form does) and writes the
ready warm nodes per pool and zone (``{"<pool>": {"<zone>": n}}``, the
``WARM_STATUS_FILE`` the spawn form reads) atomically, so a reader never sees
half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from wbspawner.spawn.form import spot_prices_from_json


def read_spot_prices(path: str | Path) -> dict[tuple[str, str], float]:
    """Return observed spot prices by (instance type, zone).

    Args:
        path: the JSON file.

    Returns:
        The prices (empty when the file holds no mapping).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not JSON.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return dict(spot_prices_from_json(raw) or {})


def write_json_atomic(path: str | Path, data: Mapping[str, object]) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it over it.

    Args:
        path: the target file (its directory is made if missing).
        data: what to write.

    Raises:
        OSError: the directory or file cannot be written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=target.parent, delete=False, suffix=".tmp", encoding="utf-8"
    ) as tmp:
        json.dump(data, tmp, sort_keys=True)
    os.replace(tmp.name, target)
