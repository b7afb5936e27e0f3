"""How the ``wbspawner`` commands talk to a terminal: progress and tables.

This module owns one choice, made per stream: is it a terminal a person watches,
or a pipe or file a program reads? On a terminal, long work (``pools apply``,
``home move``, ``home gc``) shows a live progress bar with a line per finished
step, and tables are laid out by `rich <https://rich.readthedocs.io>`_ to the
terminal's width (``$COLUMNS``, else the terminal's own), wrapping long cells
inside their column instead of the line. Anywhere else the same steps are plain
lines (``[3/12] done  create-asg …``) and tables the aligned text of
:func:`wbspawner.cli.util.format_table`, with no terminal codes at all, so logs
and scripts read exactly what they read before. ``TERM=dumb`` counts as not a
terminal; ``NO_COLOR`` keeps the bar but drops the colours.

Progress goes to stderr (the notes stream), results to stdout: ``--json`` or
``> file`` still get only results, while the person at the terminal sees the
work advance. The library never renders anything: the core reports steps (an
iterator or a callback) and the command shells pass them here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from wbspawner.cli.util import CliContext, format_table
from wbspawner.pools.tables import TableFn

DEFAULT_WIDTH = 80
"""Width of a terminal that tells none (and of ``$COLUMNS`` unset in a pty)."""


def is_terminal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Return whether a stream is a terminal that understands escape codes.

    Args:
        stream: where the command writes.
        environ: the command's environment (``TERM``).

    Returns:
        ``True`` for a TTY whose ``TERM`` is not ``dumb``.
    """
    if environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed, or not a real file
        return False


def terminal_width(stream: TextIO, environ: Mapping[str, str]) -> int:
    """Return the columns a terminal has: ``$COLUMNS``, else the terminal's own.

    Args:
        stream: the terminal.
        environ: the command's environment.

    Returns:
        The width in columns (:data:`DEFAULT_WIDTH` when nothing says).
    """
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or DEFAULT_WIDTH
    except (AttributeError, ValueError, OSError):
        return DEFAULT_WIDTH


def make_console(stream: TextIO, environ: Mapping[str, str]) -> Console:
    """Return a rich console for a stream, deciding terminal or not here.

    Everything rich would otherwise guess from the process (``FORCE_COLOR``,
    ``TTY_COMPATIBLE``, the size of whichever standard stream is a terminal) is
    decided from this stream and the command's environment, so a command given
    a ``StringIO`` never writes escape codes.

    Args:
        stream: where to write.
        environ: the command's environment.

    Returns:
        The console; ``console.is_terminal`` says which way it went.
    """
    terminal = is_terminal(stream, environ)
    return Console(
        file=stream,
        force_terminal=terminal,
        force_interactive=terminal,
        width=terminal_width(stream, environ) if terminal else 10_000,
        no_color="NO_COLOR" in environ or not terminal,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=not terminal,
    )


class StepBar:
    """Counts the steps of one piece of work; made by :meth:`Steps.bar`."""

    def __init__(
        self,
        steps: Steps,
        progress: Progress | None,
        task: TaskID,
        total: int | None,
    ) -> None:
        self._steps, self._progress, self._task = steps, progress, task
        self._total, self._count = total, 0

    def done(self, line: str, *, failed: bool = False, now: str = "") -> None:
        """Report one finished step.

        Args:
            line: what the step did (one line).
            failed: it failed (red on a terminal).
            now: what runs next, shown beside the bar on a terminal.
        """
        self._count += 1
        if self._progress is None:
            of = f"/{self._total}" if self._total is not None else ""
            width = len(str(self._total)) if self._total is not None else 0
            self._steps.plain(f"[{self._count:>{width}}{of}] {line}")
            return
        self._progress.console.print(Text(line, style="red" if failed else ""))
        self._progress.update(self._task, advance=1, description=now or " ")


class Steps:
    """Step lines and progress bars for one command, on stderr.

    Args:
        stream: where progress goes (the command's stderr).
        environ: the command's environment.
    """

    def __init__(self, stream: TextIO, environ: Mapping[str, str]) -> None:
        self.console = make_console(stream, environ)
        self._stream = stream

    @property
    def terminal(self) -> bool:
        """Whether progress is drawn for a terminal."""
        return self.console.is_terminal

    def plain(self, line: str) -> None:
        """Write one line as it is, flushed (a pipe's reader sees it at once)."""
        print(line, file=self._stream, flush=True)

    @contextmanager
    def phase(self, text: str) -> Iterator[None]:
        """Show one step of unknown length while it runs.

        On a terminal a spinner turns beside ``text`` and a line with a tick
        stays once it is done; elsewhere ``text …`` is written when it starts,
        so a reader knows what is being waited for.

        Args:
            text: what the step does ("Finding the node subnets").

        Yields:
            Nothing; the step runs in the ``with`` block.
        """
        if not self.terminal:
            self.plain(f"{text} …")
            yield
            return
        with self.console.status(text, spinner="dots"):
            yield
        self.console.print(Text.assemble(("✓ ", "green"), text))

    @contextmanager
    def bar(self, title: str, total: int | None) -> Iterator[StepBar]:
        """Count the steps of one piece of work.

        On a terminal a bar (spinner, what runs now, bar, ``n/total``, elapsed
        time) stays at the bottom while a line per finished step scrolls above
        it, and goes when the work ends; elsewhere ``title`` and a numbered line
        per step are written.

        Args:
            title: the work ("Applying 12 actions to cluster x").
            total: how many steps (``None``: not known in advance).

        Yields:
            The :class:`StepBar` to report each finished step to.
        """
        if not self.terminal:
            self.plain(title)
            yield StepBar(self, None, TaskID(0), total)
            return
        self.console.print(title)
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="cyan"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            task = progress.add_task(title, total=total)
            yield StepBar(self, progress, task, total)


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


def write_text(ctx: CliContext, text: str) -> None:
    """Print text to stdout; on a terminal, long lines wrap at spaces.

    Args:
        ctx: the command context.
        text: lines of results (tables from :func:`table_lines` fit already).
    """
    console = make_console(ctx.out, ctx.environ)
    if not console.is_terminal:
        ctx.print(text)
        return
    console.print(Text(text), overflow="fold")


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
