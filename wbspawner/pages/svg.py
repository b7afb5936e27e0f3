"""Small line charts and axis ticks as SVG, for the admin pages and the benchmark.

This module owns drawing: polylines (straight or step-wise) with axes, tick
labels and a legend, as SVG text that can be inlined in HTML or written to a
file, and where axis ticks go: :func:`nice_ticks` puts value ticks on round
numbers (1, 2, 2.5 or 5 × 10^k, from 0 to just above the largest value) and
:func:`time_ticks` puts time ticks on whole local-clock steps (every 5 minutes
… every day) in the site's time zone. Every label is escaped; text takes the
page's colour (``currentColor``) so a dark theme shows it. No JavaScript, no
plotting library.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 28, 40
"""Margins around the plot area, pixels (the legend sits on the right)."""
NICE_MANTISSAS = (1.0, 2.0, 2.5, 5.0, 10.0)
"""Tick steps are one of these times a power of ten."""
TIME_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
"""Time tick steps, minutes: whole steps of a local clock."""


def nice_step(span: float, max_ticks: int = 5) -> float:
    """Return the smallest round step that covers ``span`` in ``max_ticks`` steps.

    Args:
        span: the range to cover (> 0; anything else counts as 1).
        max_ticks: the most steps wanted (≥ 1).

    Returns:
        1, 2, 2.5 or 5 times a power of ten.
    """
    span = span if span > 0 and math.isfinite(span) else 1.0
    raw = span / max(1, max_ticks)
    power = 10.0 ** math.floor(math.log10(raw))
    for mantissa in NICE_MANTISSAS:
        if mantissa * power >= raw * (1 - 1e-9):
            return mantissa * power
    return 10 * power  # pragma: no cover - 10 × power always covers raw


def nice_ticks(top: float, max_ticks: int = 5) -> list[float]:
    """Return value ticks from 0 to the first round number at or above ``top``.

    Args:
        top: the largest value shown (≤ 0: the axis runs to 1).
        max_ticks: the most steps wanted.

    Returns:
        ``[0, step, 2 × step, …]`` with a step from :func:`nice_step`; the last
        tick is ≥ ``top``.
    """
    top = top if top > 0 and math.isfinite(top) else 1.0
    step = nice_step(top, max_ticks)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


def format_tick(value: float) -> str:
    """Return a tick value as people write it: ``0``, ``2.5``, ``1,000``, ``0.05``."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")


def time_ticks(
    start: datetime, end: datetime, tz: tzinfo, max_ticks: int = 8
) -> list[tuple[datetime, str]]:
    """Return ticks on whole local-clock steps between two times.

    Args:
        start: the first time shown (aware).
        end: the last time shown (aware).
        tz: the site's time zone: ticks fall on its whole hours (or minutes,
            or midnights) and are labelled in it.
        max_ticks: the most ticks wanted.

    Returns:
        ``(time, label)`` pairs, oldest first; a label is ``HH:MM``, with the
        weekday in front at the first tick and at each local midnight.
    """
    span_min = max((end - start).total_seconds() / 60, 1.0)
    step = next(
        (m for m in TIME_STEPS_MIN if span_min / m <= max_ticks), TIME_STEPS_MIN[-1]
    )
    local = start.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = (local - midnight).total_seconds() / 60
    first = midnight + timedelta(minutes=math.ceil(minutes / step - 1e-9) * step)
    ticks: list[tuple[datetime, str]] = []
    at = first
    while at <= end:
        # local wall clock in the zone (a DST change shifts a tick by its hour)
        shown = at.astimezone(tz)
        day = not ticks or (shown.hour, shown.minute) == (0, 0)
        ticks.append((at, shown.strftime("%a %H:%M" if day else "%H:%M")))
        at = at + timedelta(minutes=step)
    return ticks


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart."""

    name: str
    points: Sequence[tuple[float, float]]
    step: bool = False
    """Draw as a step function (value holds until the next point)."""


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area and the data ranges it shows."""

    width: int
    height: int
    x0: float
    x1: float
    y1: float

    @property
    def pw(self) -> float:
        return self.width - LEFT - RIGHT

    @property
    def ph(self) -> float:
        return self.height - TOP - BOTTOM

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * self.pw

    def py(self, y: float) -> float:
        return TOP + self.ph - y / self.y1 * self.ph


def _path(
    points: Sequence[tuple[float, float]], step: bool
) -> list[tuple[float, float]]:
    if not step:
        return list(points)
    out: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if i:
            out.append((x, points[i - 1][1]))
        out.append((x, y))
    return out


def _frame(
    series: Sequence[Series],
    width: int,
    height: int,
    x_range: tuple[float, float] | None = None,
) -> _Frame:
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    xs += list(x_range or ())
    ys = [y for s in series for _, y in s.points] or [0.0]
    x0, x1 = min(xs), max(xs)
    return _Frame(
        width=width,
        height=height,
        x0=x0,
        x1=x1 if x1 > x0 else x0 + 1,
        y1=nice_ticks(max(ys))[-1],
    )


def _axes(
    f: _Frame, ticks: Sequence[tuple[float, str]], x_label: str, y_label: str
) -> list[str]:
    if not ticks:
        step = nice_step(f.x1 - f.x0)
        first = math.ceil(f.x0 / step - 1e-9)
        count = math.floor((f.x1 - f.x0) / step + 1e-9) + 1
        ticks = [
            ((first + i) * step, format_tick((first + i) * step)) for i in range(count)
        ]
    parts = []
    for x, label in ticks:
        if f.x0 <= x <= f.x1:
            parts.append(
                f'<line class="grid" x1="{f.px(x):.1f}" y1="{TOP + f.ph}" '
                f'x2="{f.px(x):.1f}" y2="{TOP + f.ph + 4}" stroke="#999"/>'
                f'<text x="{f.px(x):.1f}" y="{TOP + f.ph + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for y in nice_ticks(f.y1):
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{f.py(y):.1f}" '
            f'x2="{LEFT + f.pw}" y2="{f.py(y):.1f}" stroke="#999" '
            'stroke-opacity="0.3"/>'
            f'<text x="{LEFT - 4}" y="{f.py(y) + 4:.1f}" text-anchor="end">'
            f"{format_tick(y)}</text>"
        )
    mid = TOP + f.ph / 2
    parts.append(
        f'<text x="{LEFT + f.pw / 2}" y="{f.height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text x="12" y="{mid}" transform="rotate(-90 12 {mid})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return parts


def _lines(f: _Frame, series: Sequence[Series]) -> list[str]:
    parts = []
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = " ".join(
            f"{f.px(x):.1f},{f.py(y):.1f}" for x, y in _path(s.points, s.step)
        )
        if len(s.points) == 1:  # one point draws no line: a dot shows it
            x, y = s.points[0]
            parts.append(
                f'<circle cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="3" fill="{color}"/>'
            )
        elif pts:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.6" '
                f'points="{pts}"/>'
            )
        ly, lx = TOP + 12 + 16 * i, f.width - RIGHT
        parts.append(
            f'<line x1="{lx + 10}" y1="{ly - 4}" x2="{lx + 26}" y2="{ly - 4}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<text x="{lx + 30}" y="{ly}">{escape(s.name)}</text>'
        )
    return parts


def line_chart_svg(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] = (),
    x_range: tuple[float, float] | None = None,
    width: int = 720,
    height: int = 260,
) -> str:
    """Return a line chart as a standalone SVG document (inline-safe).

    Args:
        series: the lines.
        title: chart title.
        x_label: x axis label.
        y_label: y axis label.
        x_ticks: (x, label) ticks; none: round ticks.
        x_range: an x range the axis covers at least (the data may widen it).
        width: pixels.
        height: pixels.

    Returns:
        SVG text; every label is escaped.
    """
    f = _frame(series, width, height, x_range)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" '
        f'fill="currentColor" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )
    frame = (
        f'<rect x="{LEFT}" y="{TOP}" width="{f.pw}" height="{f.ph}" fill="none" '
        'stroke="#999"/>'
    )
    head = [
        svg,
        f'<text x="{LEFT}" y="16" font-size="13">{escape(title)}</text>',
        frame,
    ]
    body = _axes(f, x_ticks, x_label, y_label) + _lines(f, series)
    return "\n".join([*head, *body, "</svg>"])
