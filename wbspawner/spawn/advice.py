"""Right-size advice: which size the user's recent sessions needed, and its price.

This module owns the decision the spawn form shows above the sizes, from the
memory peaks the accounting recorded for the user's last sessions
(:mod:`wbspawner.costs.peaks`):

- **smaller**: the sessions on the size used last all peaked well below a
  cheaper size's limit ("Your last 10 sessions on 64 GiB peaked at 9 GiB:
  16 GiB would do, $0.13/h instead of $0.50/h");
- **limit**: some of them reached :data:`LIMIT_SHARE` of the size's limit (the
  kernel may have been killed, or was close to it); the next bigger size is
  named with its price;
- nothing otherwise (too few sessions measured, no cheaper size fits).

A size's limit is its pool's full-node request (the pod's memory limit, which
JupyterLab's memory indicator shows against); a size "would do" when its limit
is at least :data:`HEADROOM` times the peak. Only sizes of the same kind are
compared (CPU with CPU, the same GPU kind and count). :func:`smaller_size` is
shared with the costs page's month of savings (:mod:`wbspawner.costs.rightsize`).

Pure: no I/O. :func:`advice_html` renders the advice as one block of its own
on the form; every text in it is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from wbspawner.catalog.pricing import SpotPrices, format_price, hourly_cost
from wbspawner.model import CapacityType, Pool, Profiles, Size

HEADROOM = 1.25
"""A size would do when its memory limit is at least this times the peak."""
LIMIT_SHARE = 0.9
"""A session whose peak reached this share of its size's limit hit the limit."""
LAST_SESSIONS = 10
"""How many of the user's most recent measured sessions the advice reads."""

AdviceKind = Literal["smaller", "limit"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PastSession:
    """One finished or running server session whose memory peak is known."""

    size: str
    """Size slug."""
    peak_mib: int
    capacity_type: CapacityType
    """What it ran on (the advice prices the other size alike)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Advice:
    """What the form tells the user about the size they have been using."""

    kind: AdviceKind
    size: str
    """The size the sessions ran on (slug)."""
    other: str | None
    """The size advised instead (slug), ``None`` when there is none."""
    sessions: int
    """How many sessions the advice is drawn from."""
    peak_mib: int
    """The highest peak among them."""
    text: str
    """The sentence shown (plain text)."""


def limit_mib(pool: Pool) -> int:
    """Return the memory limit a size's server runs with (the full-node request)."""
    return pool.request.memory_mib


def gib_text(mib: int) -> str:
    """Return MiB as people read it: ``0.7 GiB``, ``9.5 GiB``, ``16 GiB``."""
    gib = mib / 1024
    if gib >= 10:
        return f"{gib:.0f} GiB"
    return f"{gib:.1f} GiB".replace(".0 GiB", " GiB")


def _same_kind(a: Pool, b: Pool) -> bool:
    return (a.gpu_count, a.gpu_kind) == (b.gpu_count, b.gpu_kind)


def price_of(
    pool: Pool,
    capacity: CapacityType,
    profiles: Profiles,
    spot_prices: SpotPrices | None = None,
) -> float:
    """Return a pool's $/hour on a capacity type (its first one if it lacks it)."""
    offered = capacity if capacity in pool.capacity_types else None
    chosen = offered or (pool.capacity_types or ("on-demand",))[0]
    return hourly_cost(pool, chosen, spot_prices, profiles.cost).per_hour


def smaller_size(
    size: Size,
    peak_mib: int,
    capacity: CapacityType,
    sizes: Sequence[Size],
    profiles: Profiles,
    spot_prices: SpotPrices | None = None,
) -> Size | None:
    """Return the cheapest size of the same kind that would do and costs less.

    Args:
        size: the size the sessions ran on.
        peak_mib: the highest peak of those sessions.
        capacity: the capacity type to price both sizes on.
        sizes: the sizes to choose from (those the user may pick).
        profiles: the profiles in force (pools, prices).
        spot_prices: observed spot prices, or ``None``.

    Returns:
        The size (the smaller limit on a tie in price), or ``None``.
    """
    pool = profiles.pool_of(size)
    paid = price_of(pool, capacity, profiles, spot_prices)
    fits: list[tuple[float, int, Size]] = []
    for other in sizes:
        other_pool = profiles.pool_of(other)
        if other.slug == size.slug or not _same_kind(pool, other_pool):
            continue
        if limit_mib(other_pool) < peak_mib * HEADROOM:
            continue
        price = price_of(other_pool, capacity, profiles, spot_prices)
        if price < paid:
            fits.append((price, limit_mib(other_pool), other))
    return min(fits, key=lambda f: (f[0], f[1]))[2] if fits else None


def bigger_size(size: Size, sizes: Sequence[Size], profiles: Profiles) -> Size | None:
    """Return the size of the same kind with the next larger memory limit."""
    pool = profiles.pool_of(size)
    larger = [
        s
        for s in sizes
        if _same_kind(pool, profiles.pool_of(s))
        and limit_mib(profiles.pool_of(s)) > limit_mib(pool)
    ]
    return min(larger, key=lambda s: limit_mib(profiles.pool_of(s)), default=None)


def advise(
    history: Sequence[PastSession],
    sizes: Sequence[Size],
    profiles: Profiles,
    spot_prices: SpotPrices | None = None,
    min_sessions: int = 1,
) -> Advice | None:
    """Return the advice for a user from their most recent measured sessions.

    Args:
        history: the user's sessions with a known peak, newest first (only the
            first :data:`LAST_SESSIONS` are read).
        sizes: the sizes the user may pick now.
        profiles: the profiles in force.
        spot_prices: observed spot prices, or ``None``.
        min_sessions: fewer sessions on the size used last give no advice.

    Returns:
        The advice about the size used last, or ``None``.
    """
    recent = list(history[:LAST_SESSIONS])
    by_slug = {s.slug: s for s in sizes}
    if not recent or recent[0].size not in by_slug:
        return None
    size = by_slug[recent[0].size]
    on_size = [s for s in recent if s.size == size.slug]
    if len(on_size) < max(1, min_sessions):
        return None
    pool = profiles.pool_of(size)
    peak = max(s.peak_mib for s in on_size)
    capacity = on_size[0].capacity_type
    limit = limit_mib(pool)
    hits = sum(1 for s in on_size if s.peak_mib >= limit * LIMIT_SHARE)
    if hits:
        return _limit_advice(size, on_size, hits, peak, sizes, profiles, spot_prices)
    other = smaller_size(size, peak, capacity, sizes, profiles, spot_prices)
    if other is None:
        return None
    now = price_of(pool, capacity, profiles, spot_prices)
    then = price_of(profiles.pool_of(other), capacity, profiles, spot_prices)
    n = len(on_size)
    who = "Your last session" if n == 1 else f"Your last {n} sessions"
    text = (
        f"{who} on {size.display_name} "
        f"peaked at {gib_text(peak)}: {other.display_name} would do, "
        f"{format_price(then)} instead of {format_price(now)}."
    )
    return Advice(
        kind="smaller",
        size=size.slug,
        other=other.slug,
        sessions=n,
        peak_mib=peak,
        text=text,
    )


def _limit_advice(
    size: Size,
    on_size: Sequence[PastSession],
    hits: int,
    peak: int,
    sizes: Sequence[Size],
    profiles: Profiles,
    spot_prices: SpotPrices | None,
) -> Advice:
    """Return the warning that sessions reached the size's memory limit."""
    pool = profiles.pool_of(size)
    n = len(on_size)
    who = "Your last session" if n == 1 else f"{hits} of your last {n} sessions"
    text = (
        f"{who} on {size.display_name} reached {gib_text(peak)} of its "
        f"{gib_text(limit_mib(pool))} memory limit: a kernel that needs more "
        "is stopped."
    )
    bigger = bigger_size(size, sizes, profiles)
    if bigger is not None:
        capacity = on_size[0].capacity_type
        price = price_of(profiles.pool_of(bigger), capacity, profiles, spot_prices)
        now = price_of(pool, capacity, profiles, spot_prices)
        text += (
            f" {bigger.display_name} has room, {format_price(price)} "
            f"instead of {format_price(now)}."
        )
    return Advice(
        kind="limit",
        size=size.slug,
        other=bigger.slug if bigger else None,
        sessions=len(on_size),
        peak_mib=peak,
        text=text,
    )


def advice_html(advice: Advice | None) -> str:
    """Return the advice as its own block on the spawn form (``""``: none).

    Args:
        advice: the advice, or ``None``.

    Returns:
        HTML: an info note for a smaller size, a warning for the limit; the
        advised size's slug is in ``data-size`` for scripts and tests.
    """
    if advice is None:
        return ""
    kind = "info" if advice.kind == "smaller" else "warning"
    other = html.escape(advice.other or "", quote=True)
    return (
        f'<div class="alert alert-{kind} wb-advice wb-advice-{advice.kind}" '
        f'role="note" data-size="{other}">'
        f"<strong>Right size:</strong> {html.escape(advice.text)}</div>"
    )
