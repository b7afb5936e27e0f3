"""How the pools' reports lay out a table, unless their caller says otherwise.

This module owns the plain layout (left-aligned columns two spaces apart, as a
log or a pipe gets it) and the type of a layout function, which lets the CLI fit
the same rows to a terminal's width. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

TableFn = Callable[[Sequence[str], Sequence[Sequence[str]]], list[str]]
"""Lays out a table (headers, rows) as lines; the CLI fits it to a terminal."""


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Return a table as left-aligned columns two spaces apart (the default).

    Args:
        headers: column titles.
        rows: cells.

    Returns:
        The lines, trailing blanks removed.
    """
    every = [tuple(headers), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in every) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in every
    ]
