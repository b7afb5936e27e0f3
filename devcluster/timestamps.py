"""Timestamps as the API server writes them: RFC 3339, UTC, whole seconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_iso() -> str:
    """Return the current time as an RFC 3339 timestamp with seconds (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_after(seconds: float) -> str:
    """Return the RFC 3339 timestamp ``seconds`` from now."""
    return datetime.fromtimestamp(time.time() + seconds, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
