"""Tables of the ``wbspawner`` commands, fitted to a terminal's width.

This module owns the layout of a table for a terminal: a table that fits is
laid out as for a pipe (:func:`wbspawner.cli.util.format_table`); on a narrower
terminal long text cells wrap at spaces inside their column, and when even
that is too wide the columns come in bands one under the other, each led by the
row's name. Short values (names, numbers, ``4 GiB``) are never split or cut,
and every cell keeps its whole text. A pipe always gets the plain layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from wbspawner.cli.terminal import make_console
from wbspawner.cli.util import CliContext, format_table
from wbspawner.pools.tables import TableFn

GAP = 2
"""Blanks between two columns (as in the plain tables)."""
WRAP_OVER = 16
"""A column of text wider than this may wrap at spaces on a narrow terminal."""


def _widths(
    headers: Sequence[str], rows: Sequence[Sequence[str]]
) -> tuple[list[int], list[int]]:
    """Return each column's natural width and the least it may be given.

    A column of short values (names, numbers, ``4 GiB``) keeps its natural
    width; a column of longer text may shrink to its longest word.
    """
    natural, least = [], []
    for i, header in enumerate(headers):
        cells = [header, *(r[i] for r in rows)]
        width = max(len(c) for c in cells)
        natural.append(width)
        longest_word = max(len(w) for c in cells for w in c.split() or [""])
        wraps = width > WRAP_OVER and any(" " in c for c in cells[1:])
        least.append(longest_word if wraps else width)
    return natural, least


def _bands(headers: Sequence[str], least: Sequence[int], width: int) -> list[list[int]]:
    """Split the columns into groups that fit, each led by the row's name.

    The name is the first titled column, with any untitled marks before it
    (``*`` for a default).
    """
    key = next((i for i, h in enumerate(headers) if h), 0) + 1
    lead = list(range(key))
    lead_width = sum(least[:key]) + GAP * (key - 1)
    bands: list[list[int]] = [list(lead)]
    used = lead_width
    for i in range(key, len(least)):
        if len(bands[-1]) > key and used + GAP + least[i] > width:
            bands.append(list(lead))
            used = lead_width
        bands[-1].append(i)
        used += GAP + least[i]
    return bands


def _rich_lines(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[int],
    least: Sequence[int],
    natural: Sequence[int],
) -> list[str]:
    # No styles: the lines are text, so callers may wrap or test them as such.
    table = Table(box=None, pad_edge=False, padding=(0, GAP // 2), header_style=None)
    for i, header in enumerate(headers):
        table.add_column(
            header,
            justify="right" if i in right else "left",
            no_wrap=least[i] == natural[i],
            min_width=least[i],
            overflow="fold",
        )
    for row in rows:
        table.add_row(*row)
    with console.capture() as captured:
        console.print(table, style=None)
    return [line.rstrip() for line in captured.get().splitlines()]


def table_lines(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[int] = (),
) -> list[str]:
    """Return a table as lines for a console: fitted on a terminal, else plain.

    A table that fits is laid out as for a pipe. On a narrower terminal, long
    text cells wrap at spaces inside their column; when even that is too wide,
    the columns are shown in bands one under the other, each led by the first
    (the row's name). Short values are never split or cut, and every cell keeps
    its whole text.

    Args:
        console: from :func:`make_console` for the stream the table goes to.
        headers: column titles.
        rows: cells, as strings.
        right: indexes of right-aligned (numeric) columns.

    Returns:
        The lines, without line ends.
    """
    plain = format_table(headers, rows, right)
    width = console.width
    if not console.is_terminal or max(map(len, plain), default=0) <= width:
        return plain
    natural, least = _widths(headers, rows)
    lines: list[str] = []
    for band in _bands(headers, least, width):
        if lines:
            lines.append("")
        lines += _rich_lines(
            console,
            [headers[i] for i in band],
            [[r[i] for i in band] for r in rows],
            [band.index(i) for i in right if i in band],
            [least[i] for i in band],
            [natural[i] for i in band],
        )
    return lines


def print_table(
    ctx: CliContext,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[int] = (),
) -> None:
    """Print a table to stdout, fitted to the terminal when it is one.

    Args:
        ctx: the command context.
        headers: column titles.
        rows: cells, as strings.
        right: indexes of right-aligned (numeric) columns.
    """
    for line in table_lines(make_console(ctx.out, ctx.environ), headers, rows, right):
        ctx.print(line)


Layout = Callable[[Sequence[str], Sequence[Sequence[str]], Sequence[int]], list[str]]
"""Lays out (headers, rows, right-aligned columns) as lines, as
:func:`~wbspawner.cli.util.format_table` does."""


def layout_for(ctx: CliContext) -> Layout:
    """Return the table layout for stdout: fitted on a terminal, else plain.

    Args:
        ctx: the command context.

    Returns:
        A function like :func:`~wbspawner.cli.util.format_table`.
    """
    console = make_console(ctx.out, ctx.environ)

    def layout(
        headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
    ) -> list[str]:
        return table_lines(console, headers, rows, right)

    return layout


def fitted(ctx: CliContext) -> TableFn:
    """Return a table layout for stdout: fitted on a terminal, else plain.

    Args:
        ctx: the command context.

    Returns:
        A function of (headers, rows) to lines, as the pools reports take it.
    """
    console = make_console(ctx.out, ctx.environ)

    def layout(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
        return table_lines(console, headers, rows)

    return layout
