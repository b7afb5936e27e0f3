"""Which idle servers to warn and which to stop: the culler's pure decision.

This module owns the culling rules, over what the service observed of each
running server (:class:`ServerView`) and the profiles' ``culling`` section:

- a server's *last use* is the latest of its start, its own last activity (the
  server's report: API requests of the user's tabs, kernel messages, terminals)
  and, for each kernel busy executing, now — but a kernel counts as busy only
  for ``max_busy_age_s`` after it became busy: past that the server is judged by
  its other use alone (a forgotten loop does not keep a big node forever);
- a server unused for its size's idle timeout minus ``warn_before_s`` is
  warned, with the time it will stop and what it costs per hour;
- a warned server is stopped once its timeout has passed *and* at least
  ``warn_before_s`` have passed since the warning (never a stop without the
  warning first, whatever the timing of the passes);
- a warned server used again after the warning (the user clicked "Keep
  running", typed, a kernel started executing) keeps running: the warning is
  withdrawn and the idle clock starts again.

Every decision carries its reason, in words for the log and the status page.
Pure: no I/O, the time is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from wbspawner.model import CullSettings

Action = Literal["keep", "warn", "cull", "reset"]
"""``keep``: nothing to do; ``warn``: send the warning; ``cull``: stop the
server; ``reset``: used again since its warning, which is withdrawn."""

BUSY = "busy"
"""A kernel's ``execution_state`` while it executes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelView:
    """One kernel of a server, as its ``/api/kernels`` lists it."""

    id: str
    execution_state: str
    busy_since: datetime | None = None
    """When it was first seen busy in this busy stretch (``None``: not busy)."""

    @property
    def busy(self) -> bool:
        """Whether the kernel is executing."""
        return self.execution_state == BUSY


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerView:
    """A running server as the culler sees it."""

    user: str
    name: str = ""
    """Server name (``""``: the default server)."""
    size: str | None = None
    """Size slug (``None``: unknown; the default timeout applies)."""
    started: datetime | None = None
    last_activity: datetime | None = None
    """The latest use the server (or else the hub) reported."""
    kernels: tuple[KernelView, ...] = ()
    price_per_hour: float | None = None
    """USD per hour it costs (``None``: unknown)."""
    warned_at: datetime | None = None
    """When the culler warned it (``None``: not warned, or withdrawn)."""

    @property
    def key(self) -> str:
        """``user`` or ``user/name``: how logs name the server."""
        return f"{self.user}/{self.name}" if self.name else self.user


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to do with one server, and why."""

    server: ServerView
    action: Action
    reason: str
    last_use: datetime
    stop_at: datetime
    """When it stops if nobody uses it (for ``warn``: the time to tell the user)."""


def last_use(server: ServerView, settings: CullSettings, now: datetime) -> datetime:
    """Return when a server was last used, counting busy kernels as use.

    Args:
        server: the server.
        settings: the culling settings (``max_busy_age_s``).
        now: the current time.

    Returns:
        The latest of its start, its last activity and, for each busy kernel,
        now while it has been busy for less than ``max_busy_age_s``.
    """
    times = [t for t in (server.started, server.last_activity) if t is not None]
    max_age = timedelta(seconds=settings.max_busy_age_s)
    for kernel in server.kernels:
        if kernel.busy and (
            kernel.busy_since is None or now - kernel.busy_since < max_age
        ):
            times.append(now)
    return min(max(times, default=now), now)


def decide(server: ServerView, settings: CullSettings, now: datetime) -> Decision:
    """Return what to do with one running server.

    Args:
        server: the server, with its warning if it has one.
        settings: the culling settings in force.
        now: the current time (aware).

    Returns:
        The decision, with its reason.
    """
    used = last_use(server, settings, now)
    timeout = timedelta(seconds=settings.idle_timeout_of(server.size))
    warn_before = timedelta(seconds=settings.warn_before_s)
    stop_at = used + timeout
    idle = _duration(now - used)
    size = server.size or "unknown size"

    def made(action: Action, reason: str, at: datetime = stop_at) -> Decision:
        return Decision(
            server=server, action=action, reason=reason, last_use=used, stop_at=at
        )

    if not settings.enabled:
        return made("keep", "culling is off (culling.enabled: false)")
    warned = server.warned_at
    if warned is not None and used > warned:
        return made("reset", f"used again since the warning at {warned:%H:%M:%S}")
    if warned is not None:
        at = max(stop_at, warned + warn_before)
        if now >= at:
            return made(
                "cull",
                f"idle for {idle} (timeout of {size}: {_duration(timeout)}), "
                f"warned at {warned:%H:%M:%S}",
                at,
            )
        return made("keep", f"warned; stops at {at:%H:%M:%S} unless used", at)
    if now >= stop_at - warn_before:
        at = max(stop_at, now + warn_before)
        return made(
            "warn",
            f"idle for {idle}; the timeout of {size} is {_duration(timeout)}",
            at,
        )
    busy = [k for k in server.kernels if k.busy]
    why = f"{len(busy)} kernel(s) busy" if busy and used == now else f"idle {idle}"
    return made("keep", f"{why}; warning due at {stop_at - warn_before:%H:%M:%S}")


def decide_all(
    servers: list[ServerView], settings: CullSettings, now: datetime
) -> list[Decision]:
    """Return a decision for every server, in the order given."""
    return [decide(s, settings, now) for s in servers]


def warning_text(decision: Decision, now: datetime, tz: ZoneInfo) -> str:
    """Return the warning a user reads in JupyterLab.

    Args:
        decision: a ``warn`` decision.
        now: the current time.
        tz: the time zone the stop time is written in (the site's).

    Returns:
        E.g. "This server has been idle for 50 minutes; it will stop at 15:10
        CET and it costs $2.02/h. Keep it running?"
    """
    idle = _duration(now - decision.last_use)
    local = decision.stop_at.astimezone(tz)
    price = decision.server.price_per_hour
    cost = f" and it costs ${price:,.2f}/h" if price is not None else ""
    return (
        f"This server has been idle for {idle}; it will stop at "
        f"{local:%H:%M} {local.tzname()}{cost}. Keep it running?"
    )


def _duration(delta: timedelta) -> str:
    """Return a duration in words: ``50 minutes``, ``2 hours 5 minutes``."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    minutes = seconds // 60
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)
