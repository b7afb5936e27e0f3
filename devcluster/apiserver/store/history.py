"""The store's watch cache: resourceVersions, event history and open watches.

``History`` owns the global resourceVersion counter (like etcd's revision) and a
bounded event history per resource: the apiserver's watch cache. Like that
cache (``cacher/watch_cache.go``: at least 100 events, and events younger than
75 s kept by growing up to a bound), a resource keeps its newest ``min_events``
events, every event younger than ``fresh_s`` real seconds, and never more than
``size``; older events are dropped as new ones arrive. Watches replay history
from a resourceVersion (410 Expired when it was dropped or compacted), then
receive live events.
Lists can be served at an exact past resourceVersion by undoing history, which
also backs ``continue`` tokens. The current objects are the caller's (the
store's table); they are passed in where a replay or a snapshot needs them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from devcluster.apiserver.store.watch import Key, Matcher, Watch, WatchEvent, key_of
from devcluster.errors import bad_request, expired

Objects = Mapping[Key, dict[str, Any]]


def parse_rv(text: str) -> int:
    """Parse a resourceVersion parameter (400 when it is not a number)."""
    try:
        return int(text)
    except ValueError:
        raise bad_request(f"invalid resource version: {text!r}") from None


class History:
    """The resourceVersion counter, per-resource history and registered watches.

    Args:
        size: most watch events kept per resource (older ones: 410 Gone).
        min_events: fewest events kept per resource, however old.
        fresh_s: events younger than this (real seconds) are kept (up to ``size``).
        clock: the monotonic clock (seconds) events are stamped with.
    """

    def __init__(
        self,
        size: int,
        min_events: int = 100,
        fresh_s: float = 75.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rv = 0
        self._size = size
        self._min = min(min_events, size)
        self._fresh_s = fresh_s
        self._clock = clock
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

    def record(
        self,
        kind: str,
        event_type: str,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        rv: int,
    ) -> None:
        """Append an event to the history of ``kind`` and deliver it to watches."""
        hist = self._hist.setdefault(kind, deque())
        now = self._clock()
        ev = WatchEvent(rv, event_type, obj, old, at=now)
        hist.append(ev)
        while len(hist) > self._size or (
            len(hist) > self._min and now - hist[0].at > self._fresh_s
        ):
            self._compacted[kind] = hist.popleft().rv
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

    def start_watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str | None,
        match: Matcher,
        current: Objects,
    ) -> Watch:
        """Register a watch with its initial events already queued.

        Without a resourceVersion (or with "0") the initial events are synthetic
        ADDED events for ``current``, the objects of ``kind`` now.

        Raises:
            ApiError: 410 for a compacted resourceVersion, 400 for a bad one.
        """
        watch = Watch(kind, namespace, match, self.forget)
        if resource_version in (None, "", "0"):
            for key in sorted(current):
                obj = current[key]
                if namespace is None or key[0] == namespace:
                    if match(obj):
                        rv = int(obj["metadata"]["resourceVersion"])
                        watch.queue.put_nowait(("ADDED", WatchEvent(rv, "ADDED", obj)))
        else:
            rv = parse_rv(resource_version)
            self._check_rv(kind, rv)
            for ev in self._hist.get(kind, ()):
                if ev.rv > rv:
                    watch.offer(ev)
        self._watches.setdefault(kind, set()).add(watch)
        return watch

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
        self, kind: str, current: Objects, resource_version: str, match_mode: str
    ) -> tuple[Objects, int]:
        """Return the objects of ``kind`` as of a resourceVersion and that version.

        ``current`` is the objects of ``kind`` now. Only
        ``resourceVersionMatch=Exact`` asks for the past; otherwise the newest
        state satisfies "not older than".
        """
        if match_mode not in ("", "Exact", "NotOlderThan"):
            raise bad_request(f"unsupported resourceVersionMatch {match_mode!r}")
        if match_mode != "Exact" or not resource_version:
            if match_mode == "Exact":
                raise bad_request("resourceVersionMatch=Exact needs a resourceVersion")
            return current, self._rv
        rv = parse_rv(resource_version)
        if rv >= self._rv:
            return current, self._rv
        self._check_rv(kind, rv)
        objs = dict(current)
        for ev in reversed(self._hist.get(kind, ())):
            if ev.rv <= rv:
                break
            key = key_of(ev.obj)
            if ev.type == "ADDED":
                objs.pop(key, None)
            elif ev.old is not None:
                objs[key] = ev.old
        return objs, rv
