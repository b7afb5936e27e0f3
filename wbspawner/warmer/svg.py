"""Small line charts as standalone SVG, for the warmer page and the benchmark.

This module owns drawing: polylines (straight or step-wise) with axes, tick
labels and a legend, as SVG text that can be inlined in HTML or written to a
file. Every label is escaped. No JavaScript, no plotting library.

Pure: no I/O.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart."""

    name: str
    points: Sequence[tuple[float, float]]
    step: bool = False
    """Draw as a step function (value holds until the next point)."""


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
    left, right, top, bottom = 56, 150, 28, 40
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points] or [0.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) * 1.1 if max(ys) > 0 else 1.0
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - y / y1 * ph

    e = html.escape
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" '
            'font-family="sans-serif" font-size="11">'
        ),
        f'<text x="{left}" y="16" font-size="13">{e(title)}</text>',
        (
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
            'stroke="#999"/>'
        ),
    ]
    ticks = x_ticks or [
        (x0 + (x1 - x0) * i / 4, f"{x0 + (x1 - x0) * i / 4:g}") for i in range(5)
    ]
    for x, label in ticks:
        if x0 <= x <= x1:
            parts.append(
                f'<text x="{px(x):.1f}" y="{top + ph + 14}" text-anchor="middle">'
                f"{e(label)}</text>"
            )
    for i in range(5):
        y = y1 * i / 4
        parts.append(
            f'<text x="{left - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">'
        f"{e(x_label)}</text>"
    )
    parts.append(
        f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" '
        f'text-anchor="middle">{e(y_label)}</text>'
    )
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in _path(s.points, s.step))
        if pts:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.6" '
                f'points="{pts}"/>'
            )
        ly = top + 12 + 16 * i
        parts.append(
            f'<line x1="{width - right + 10}" y1="{ly - 4}" x2="{width - right + 26}" '
            f'y2="{ly - 4}" stroke="{color}" stroke-width="2"/>'
            f'<text x="{width - right + 30}" y="{ly}">{e(s.name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
