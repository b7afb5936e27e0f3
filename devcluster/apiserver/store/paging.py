"""List results: pages of at most ``limit`` objects and their continue tokens.

A continue token carries the list's resourceVersion and the last key sent, so
the next page is served from the same snapshot (410 Expired once the history
that snapshot needs was compacted).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.store.watch import Key, Matcher
from devcluster.errors import ApiError, bad_request


@dataclass(slots=True)
class ListPage:
    """The result of a list call."""

    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def paginate(
    keys: list[Key],
    objs: Mapping[Key, dict[str, Any]],
    match: Matcher,
    limit: int,
    start_after: Key | None,
    list_rv: int,
) -> ListPage:
    """Select matching objects from ``keys`` (sorted), at most ``limit``."""
    items: list[dict[str, Any]] = []
    last: Key | None = None
    more = 0
    for key in keys:
        if start_after is not None and key <= start_after:
            continue
        obj = objs[key]
        if not match(obj):
            continue
        if limit and len(items) >= limit:
            more += 1
            continue
        items.append(clone(obj))
        last = key
    token = ""
    if more and last is not None:
        raw = json.dumps({"rv": list_rv, "start": list(last)}).encode()
        token = base64.urlsafe_b64encode(raw).decode()
    return ListPage(items, str(list_rv), token, more or None)


def decode_continue(token: str) -> tuple[int, Key]:
    """Decode a continue token into (resourceVersion, last key)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise bad_request("invalid continue token") from None


def continue_expired() -> ApiError:
    """Return the 410 a list gets when its continue token is too old."""
    return ApiError(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list "
        "result. You can start a new list without the continue parameter.",
    )
