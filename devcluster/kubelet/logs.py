"""Container logs: written as a container runtime writes them, served as by the kubelet.

Each run of a container writes ``<pod dir>/logs/<container>/<restart count>.log``
in the CRI logging format (``<RFC 3339 time> <stdout|stderr> <F|P> <text>``,
``P`` for a piece of a line longer than 16 KiB), so a read can pick by time and
stream; the current and the previous run are kept, as the kubelet keeps them.
``read_log`` serves ``GET pods/{name}/log`` with ``container``, ``previous``,
``sinceSeconds``/``sinceTime``, ``timestamps``, ``tailLines``, ``limitBytes``
and ``follow`` (which streams until that run of the container ends). Errors are
worded like the apiserver's and the kubelet's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from devcluster.errors import ApiError

_MAX_LINE = 16 * 1024
"""A line longer than this is written in pieces (``P``), as containerd does."""
_FOLLOW_POLL_S = 0.5


def _stamp(ns: int) -> str:
    """RFC 3339 with nanoseconds, in UTC (``2026-01-02T03:04:05.123456789Z``)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _parse_stamp(text: str) -> datetime | None:
    """Parse an RFC 3339 time (nanoseconds are cut to microseconds)."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class LogWriter:
    """One run of a container: its output, line by line, to its log file.

    Args:
        path: the log file (appended to).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO | None = open(path, "ab")  # noqa: SIM115 (closed in close)
        self._partial: dict[str, bytes] = {}
        self.changed = asyncio.Event()
        self.closed = False
        self.listeners: list[Callable[[str, bytes], None]] = []
        """Called with each piece of output as it comes (``kubectl attach``), and
        with ``("", b"")`` when the run ends."""

    def write(self, stream: str, data: bytes) -> None:
        """Add output of ``stream`` (``stdout`` or ``stderr``)."""
        if self._file is None:
            return
        for listener in list(self.listeners):
            listener(stream, data)
        buffered = self._partial.get(stream, b"") + data
        lines = buffered.split(b"\n")
        rest = lines.pop()
        stamp = _stamp(time.time_ns()).encode()
        tag = stream.encode()
        out = []
        for line in lines:
            while len(line) > _MAX_LINE:
                out.append(b"%s %s P %s\n" % (stamp, tag, line[:_MAX_LINE]))
                line = line[_MAX_LINE:]
            out.append(b"%s %s F %s\n" % (stamp, tag, line))
        while len(rest) > _MAX_LINE:
            out.append(b"%s %s P %s\n" % (stamp, tag, rest[:_MAX_LINE]))
            rest = rest[_MAX_LINE:]
        self._partial[stream] = rest
        if out:
            self._file.write(b"".join(out))
            self._file.flush()
            self._wake()

    def note(self, text: str) -> None:
        """Write a line of the kubelet's own (e.g. why the process did not start)."""
        self.write("stderr", text.encode() + b"\n")

    def close(self) -> None:
        """Write what is left of unfinished lines and close the file."""
        if self._file is None:
            return
        stamp = _stamp(time.time_ns()).encode()
        for stream, rest in self._partial.items():
            if rest:
                self._file.write(b"%s %s F %s\n" % (stamp, stream.encode(), rest))
        self._partial.clear()
        self._file.close()
        self._file = None
        self.closed = True
        self._wake()
        for listener in list(self.listeners):
            listener("", b"")

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


async def pump(
    reader: asyncio.StreamReader | None, writer: LogWriter, stream: str
) -> None:
    """Copy a process's pipe to its log until the pipe closes."""
    if reader is None:
        return
    with contextlib.suppress(OSError, ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(stream, chunk)


@dataclass
class ContainerLogs:
    """The log files of one container, by run (its restart count then)."""

    runs: dict[int, Path] = field(default_factory=dict)
    current: LogWriter | None = None

    def begin(self, directory: Path, restart_count: int) -> LogWriter:
        """Open the log of a new run (keeping it and the one before)."""
        if self.current is not None:
            self.current.close()
        path = directory / f"{restart_count}.log"
        self.current = LogWriter(path)
        self.runs[restart_count] = path
        for old in [n for n in self.runs if n < restart_count - 1]:
            with contextlib.suppress(OSError):
                self.runs.pop(old).unlink()
        return self.current

    def latest(self) -> Path | None:
        """The newest run's log."""
        return self.runs[max(self.runs)] if self.runs else None


@dataclass(frozen=True)
class Entry:
    """One line of a CRI log."""

    time: datetime
    stamp: str
    text: bytes


def _entries(raw: bytes) -> list[Entry]:
    """Parse a CRI log, joining pieces (``P``) of long lines."""
    found: list[Entry] = []
    pending: dict[bytes, bytes] = {}
    for line in raw.split(b"\n"):
        parts = line.split(b" ", 3)
        if len(parts) < 4:
            continue
        stamp, stream, tag, text = parts
        pending[stream] = pending.get(stream, b"") + text
        if tag == b"P":
            continue
        when = _parse_stamp(stamp.decode())
        if when is not None:
            found.append(Entry(when, stamp.decode(), pending.pop(stream) + b"\n"))
    return found


@dataclass(frozen=True)
class LogQuery:
    """The query parameters of ``GET pods/{name}/log``."""

    container: str
    previous: bool = False
    follow: bool = False
    timestamps: bool = False
    since: datetime | None = None
    tail: int | None = None
    limit: int | None = None


def parse_query(
    name: str, pod: Mapping[str, Any], query: Mapping[str, str]
) -> LogQuery:
    """Check and parse a log request.

    Raises:
        ApiError: 400 for an unknown or ambiguous container or a bad parameter.
    """
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    container = query.get("container") or ""
    if not container:
        if len(names) != 1:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, "
                f"choose one of: [{' '.join(names)}]"
                + (
                    f" or one of the init containers: [{' '.join(init)}]"
                    if init
                    else ""
                ),
            )
        container = names[0]
    if container not in names + init:
        raise ApiError(
            400, "BadRequest", f"container {container} is not valid for pod {name}"
        )
    truthy = ("true", "True", "1")
    since: datetime | None = None
    try:
        if query.get("sinceSeconds"):
            seconds = int(query["sinceSeconds"])
            if seconds < 1:
                raise ValueError("sinceSeconds must be greater than 0")
            since = datetime.now(UTC) - timedelta(seconds=seconds)
        elif query.get("sinceTime"):
            since = _parse_stamp(query["sinceTime"])
            if since is None:
                raise ValueError(f"invalid sinceTime {query['sinceTime']!r}")
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from None
    return LogQuery(
        container,
        previous=query.get("previous") in truthy,
        follow=query.get("follow") in truthy,
        timestamps=query.get("timestamps") in truthy,
        since=since,
        tail=tail,
        limit=limit,
    )


def _render(entries: list[Entry], q: LogQuery) -> bytes:
    if q.since is not None:
        entries = [e for e in entries if e.time >= q.since]
    if q.tail is not None:
        entries = entries[-q.tail :] if q.tail > 0 else []
    if q.timestamps:
        return b"".join(e.stamp.encode() + b" " + e.text for e in entries)
    return b"".join(e.text for e in entries)


def _waiting(name: str, container: str, reason: str) -> ApiError:
    return ApiError(
        400,
        "BadRequest",
        f'container "{container}" in pod "{name}" is waiting to start: {reason}',
    )


async def read_log(
    name: str,
    q: LogQuery,
    logs: ContainerLogs | None,
    restart_count: int = 0,
    waiting_reason: str = "ContainerCreating",
) -> AsyncIterator[bytes]:
    """Return the chosen run's log as chunks (one, or a stream with ``follow``).

    As the kubelet picks the container: ``previous`` is the run the status's
    ``lastState`` records (the one before ``restart_count``), otherwise the
    newest run, running or not (during CrashLoopBackOff, the one that crashed).

    Args:
        name: the pod's name.
        q: the parsed query.
        logs: the container's log files (None before it first started).
        restart_count: the container's restart count.
        waiting_reason: why the container has no log yet, for the error.

    Raises:
        ApiError: 400 when that run does not exist.
    """
    writer = None
    if q.previous:
        path = logs.runs.get(restart_count - 1) if logs and restart_count else None
        if path is None:
            raise ApiError(
                400,
                "BadRequest",
                f'previous terminated container "{q.container}" in pod "{name}" '
                "not found",
            )
        if logs is not None and logs.current is not None and logs.current.path == path:
            writer = logs.current
    else:
        path = logs.latest() if logs else None
        if path is None:
            raise _waiting(name, q.container, waiting_reason)
        writer = logs.current if logs else None
    raw = await asyncio.to_thread(path.read_bytes)
    return _stream(raw, path, writer if q.follow else None, q)


async def _stream(
    raw: bytes, path: Path, writer: LogWriter | None, q: LogQuery
) -> AsyncIterator[bytes]:
    end = raw.rfind(b"\n") + 1
    sent = 0
    first = _render(_entries(raw[:end]), q)
    if q.limit is not None:
        first = first[: q.limit]
    sent += len(first)
    yield first
    if writer is None:
        return
    offset = end
    follow_q = LogQuery(q.container, timestamps=q.timestamps, since=q.since)
    while q.limit is None or sent < q.limit:
        done = writer.closed
        if not done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.changed.wait(), _FOLLOW_POLL_S)
        try:
            with open(path, "rb") as log:
                log.seek(offset)
                more = log.read()
        except OSError:
            return
        end = more.rfind(b"\n") + 1
        chunk = _render(_entries(more[:end]), follow_q)
        offset += end
        if q.limit is not None:
            chunk = chunk[: q.limit - sent]
        if chunk:
            sent += len(chunk)
            yield chunk
        if done:
            return
