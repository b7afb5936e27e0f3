"""ResourceVersions, watch history and list snapshots for the store.

The ``History`` base class owns the global resourceVersion counter and a bounded
event history per resource. Watches replay history from a resourceVersion
(410 Expired when it was compacted), then receive live events; a watch with a
selector sees an object *enter* the selection as ADDED and *leave* it as
DELETED, as the apiserver's watch cache does. Lists can be served at an exact
past resourceVersion by undoing history, which also backs ``continue`` tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import RESOURCES
from devcluster.apiserver.selectors import make_matcher
from devcluster.errors import ApiError, bad_request, expired

Key = tuple[str, str]
Matcher = Callable[[Mapping[str, Any]], bool]


@dataclass(slots=True)
class WatchEvent:
    """One change. ``obj`` and ``old`` are stored snapshots: never mutate them."""

    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
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


@dataclass(slots=True)
class ListPage:
    """The result of a list call."""

    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def _key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta["name"])


class Watch:
    """A registered watch: pending events in a queue, closed by ``close()``."""

    def __init__(
        self,
        owner: History,
        kind: str,
        namespace: str | None,
        match: Matcher,
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.match = match
        self.queue: asyncio.Queue[tuple[str, WatchEvent] | None] = asyncio.Queue()
        self.closed = False
        self._owner = owner

    def offer(self, ev: WatchEvent) -> None:
        """Queue an event if it concerns this watch, translated for the selector."""
        if self.closed:
            return
        if self.namespace is not None and _key_of(ev.obj)[0] != self.namespace:
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
            self._owner.forget(self)
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


class History:
    """The resourceVersion counter, per-resource history and registered watches."""

    def __init__(self, size: int) -> None:
        self._rv = 0
        self._size = size
        self._hist: dict[str, deque[WatchEvent]] = {}
        self._compacted: dict[str, int] = {}
        self._watches: dict[str, set[Watch]] = {}

    @property
    def resource_version(self) -> int:
        """Return the newest resourceVersion handed out."""
        return self._rv

    def next_rv(self) -> int:
        """Allocate the next resourceVersion."""
        self._rv += 1
        return self._rv

    def _current(self, kind: str) -> dict[Key, dict[str, Any]]:
        raise NotImplementedError

    def record(
        self,
        kind: str,
        event_type: str,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        rv: int,
    ) -> None:
        """Append an event to the history of ``kind`` and deliver it to watches."""
        hist = self._hist.setdefault(kind, deque(maxlen=self._size))
        if len(hist) == hist.maxlen:
            self._compacted[kind] = hist[0].rv
        ev = WatchEvent(rv, event_type, obj, old)
        hist.append(ev)
        for watch in list(self._watches.get(kind, ())):
            watch.offer(ev)

    def compact(self, kind: str | None = None) -> None:
        """Forget the history (of one resource or all), as etcd compaction does."""
        for name in [kind] if kind else list(self._hist):
            hist = self._hist.get(name)
            if hist:
                self._compacted[name] = hist[-1].rv
                hist.clear()
            else:
                self._compacted[name] = self._rv

    def _check_rv(self, kind: str, rv: int) -> None:
        if rv < self._compacted.get(kind, 0):
            hist = self._hist.get(kind)
            oldest = hist[0].rv if hist else self._rv
            raise expired(rv, oldest)

    @staticmethod
    def parse_rv(text: str) -> int:
        """Parse a resourceVersion parameter (400 when it is not a number)."""
        try:
            return int(text)
        except ValueError:
            raise bad_request(f"invalid resource version: {text!r}") from None

    def start_watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str | None,
        match: Matcher,
    ) -> Watch:
        """Register a watch with its initial events already queued."""
        watch = Watch(self, kind, namespace, match)
        if resource_version in (None, "", "0"):
            for key in sorted(self._current(kind)):
                obj = self._current(kind)[key]
                if namespace is None or key[0] == namespace:
                    if match(obj):
                        rv = int(obj["metadata"]["resourceVersion"])
                        watch.queue.put_nowait(("ADDED", WatchEvent(rv, "ADDED", obj)))
        else:
            rv = self.parse_rv(resource_version)
            self._check_rv(kind, rv)
            for ev in self._hist.get(kind, ()):
                if ev.rv > rv:
                    watch.offer(ev)
        self._watches.setdefault(kind, set()).add(watch)
        return watch

    def watch(
        self,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ``(type, object)`` for changes, like a watch request.

        Raises:
            ApiError: 410 when ``resource_version`` is older than the history.
        """
        watch = self.open_watch(
            kind, namespace, resource_version, label_selector, field_selector
        )
        return watch.iter_objects()

    def open_watch(
        self,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Watch:
        """Register a watch now and return it (close it when done).

        Raises:
            ApiError: 410 for a compacted resourceVersion, 400 for a bad selector.
        """
        res = RESOURCES.get(kind)
        if res is None:
            raise ApiError(
                404, "NotFound", "the server could not find the requested resource"
            )
        match = make_matcher(kind, label_selector, field_selector)
        ns = namespace if res.namespaced else None
        return self.start_watch(kind, ns, resource_version, match)

    def forget(self, watch: Watch) -> None:
        """Unregister a watch."""
        self._watches.get(watch.kind, set()).discard(watch)

    def close_watches(self) -> None:
        """Close every registered watch."""
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.close()

    def watch_count(self) -> int:
        """Return how many watches are open."""
        return sum(len(w) for w in self._watches.values())

    def snapshot_at(
        self, kind: str, resource_version: str, match_mode: str
    ) -> tuple[dict[Key, dict[str, Any]], int]:
        """Return the objects of ``kind`` as of a resourceVersion and that version.

        Only ``resourceVersionMatch=Exact`` asks for the past; otherwise the newest
        state satisfies "not older than".
        """
        current = self._current(kind)
        if match_mode not in ("", "Exact", "NotOlderThan"):
            raise bad_request(f"unsupported resourceVersionMatch {match_mode!r}")
        if match_mode != "Exact" or not resource_version:
            if match_mode == "Exact":
                raise bad_request("resourceVersionMatch=Exact needs a resourceVersion")
            return current, self._rv
        rv = self.parse_rv(resource_version)
        if rv >= self._rv:
            return current, self._rv
        self._check_rv(kind, rv)
        objs = dict(current)
        for ev in reversed(self._hist.get(kind, ())):
            if ev.rv <= rv:
                break
            key = _key_of(ev.obj)
            if ev.type == "ADDED":
                objs.pop(key, None)
            elif ev.old is not None:
                objs[key] = ev.old
        return objs, rv

    def paginate(
        self,
        kind: str,
        keys: list[Key],
        objs: dict[Key, dict[str, Any]],
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

    @staticmethod
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
