"""One watch on the store: its queue of events, translated for its selector.

A watch with a selector sees an object *enter* the selection as ADDED and
*leave* it as DELETED, as the apiserver's watch cache does. ``WatchEvent`` is
one recorded change; it caches its JSON line per event type, so a change sent to
many watchers is encoded once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devcluster.apiserver.patches import clone

Key = tuple[str, str]
Matcher = Callable[[Mapping[str, Any]], bool]


@dataclass(slots=True)
class WatchEvent:
    """One change. ``obj`` and ``old`` are stored snapshots: never mutate them."""

    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    at: float = 0.0
    """When it was recorded (monotonic seconds): the watch cache ages events."""
    _wire: dict[str, bytes] = field(default_factory=dict)

    def wire(self, event_type: str) -> bytes:
        """Return the JSON line of this event for the given type (cached)."""
        line = self._wire.get(event_type)
        if line is None:
            line = (
                json.dumps(
                    {"type": event_type, "object": self.obj}, separators=(",", ":")
                )
                + "\n"
            ).encode()
            self._wire[event_type] = line
        return line


def key_of(obj: Mapping[str, Any]) -> Key:
    """Return the store key ``(namespace or "", name)`` of an object."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta["name"])


class Watch:
    """A registered watch: pending events in a queue, closed by ``close()``.

    Args:
        kind: the plural name watched.
        namespace: the namespace watched, or None for all.
        match: the label and field selectors, as one predicate.
        on_close: called once with this watch when it closes (unregisters it).
    """

    def __init__(
        self,
        kind: str,
        namespace: str | None,
        match: Matcher,
        on_close: Callable[[Watch], None],
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.match = match
        self.queue: asyncio.Queue[tuple[str, WatchEvent] | None] = asyncio.Queue()
        self.closed = False
        self._on_close = on_close

    def offer(self, ev: WatchEvent) -> None:
        """Queue an event if it concerns this watch, translated for the selector."""
        if self.closed:
            return
        if self.namespace is not None and key_of(ev.obj)[0] != self.namespace:
            return
        if ev.type == "MODIFIED" and ev.old is not None:
            was, now = self.match(ev.old), self.match(ev.obj)
            if was and now:
                self.queue.put_nowait(("MODIFIED", ev))
            elif now:
                self.queue.put_nowait(("ADDED", ev))
            elif was:
                self.queue.put_nowait(("DELETED", ev))
        elif self.match(ev.obj):
            self.queue.put_nowait((ev.type, ev))

    async def next(self, timeout: float | None = None) -> tuple[str, WatchEvent] | None:
        """Return the next event, or None when closed or after ``timeout`` seconds."""
        if self.closed and self.queue.empty():
            return None
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if item is None:
            self.closed = True
        return item

    def close(self) -> None:
        """Stop receiving events and wake any reader."""
        if not self.closed:
            self.closed = True
            self._on_close(self)
            self.queue.put_nowait(None)

    async def iter_objects(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ``(type, copy of object)`` until closed."""
        try:
            while True:
                item = await self.next()
                if item is None:
                    return
                yield item[0], clone(item[1].obj)
        finally:
            self.close()
