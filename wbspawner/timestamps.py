"""Kubernetes and AWS timestamps (RFC 3339) read back into aware datetimes.

One parser for every timestamp wbspawner reads: objects' ``creationTimestamp``,
Events' ``lastTimestamp``, taints' ``timeAdded``, the homes' own annotations.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(text: object) -> datetime | None:
    """Return an RFC 3339 timestamp as an aware datetime (``None`` if unparsable).

    Args:
        text: e.g. ``2026-11-25T09:00:00Z``; a time without an offset is UTC.

    Returns:
        The time, or ``None`` for anything else (missing, not a string, malformed).
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
