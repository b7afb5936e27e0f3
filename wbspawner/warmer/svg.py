"""Small line charts as standalone SVG, for the warmer page and the benchmark.

This module owns drawing: polylines (straight or step-wise) with axes, tick
labels and a legend, as SVG text that can be inlined in HTML or written to a
file. Every label is escaped. No JavaScript, no plotting library.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 28, 40
"""Margins around the plot area, pixels (the legend sits on the right)."""


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


def _frame(series: Sequence[Series], width: int, height: int) -> _Frame:
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points] or [0.0]
    x0, x1 = min(xs), max(xs)
    return _Frame(
        width=width,
        height=height,
        x0=x0,
        x1=x1 if x1 > x0 else x0 + 1,
        y1=max(ys) * 1.1 if max(ys) > 0 else 1.0,
    )


def _axes(
    f: _Frame, ticks: Sequence[tuple[float, str]], x_label: str, y_label: str
) -> list[str]:
    if not ticks:
        ticks = [(f.x0 + (f.x1 - f.x0) * i / 4, "") for i in range(5)]
        ticks = [(x, f"{x:g}") for x, _ in ticks]
    parts = [
        f'<text x="{f.px(x):.1f}" y="{TOP + f.ph + 14}" text-anchor="middle">'
        f"{escape(label)}</text>"
        for x, label in ticks
        if f.x0 <= x <= f.x1
    ]
    for i in range(5):
        y = f.y1 * i / 4
        parts.append(
            f'<text x="{LEFT - 4}" y="{f.py(y) + 4:.1f}" text-anchor="end">'
            f"{y:.3g}</text>"
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
        if pts:
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
    width: int = 720,
    height: int = 260,
) -> str:
    """Return a line chart as a standalone SVG document (inline-safe).

    Args:
        series: the lines.
        title: chart title.
        x_label: x axis label.
        y_label: y axis label.
        x_ticks: (x, label) ticks; none: five even ticks.
        width: pixels.
        height: pixels.

    Returns:
        SVG text; every label is escaped.
    """
    f = _frame(series, width, height)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
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
