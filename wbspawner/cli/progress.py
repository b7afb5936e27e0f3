"""Progress of long commands: a bar and step lines, or numbered plain lines.

This module owns how ``pools apply``, ``home move`` and ``home gc`` show their
work as it happens. On a terminal (:func:`wbspawner.cli.terminal.is_terminal`)
a spinner turns beside each step of unknown length, and a bar (what runs now,
``n/total``, elapsed time) stays at the bottom while a line per finished step
scrolls above it; anywhere else each step is one flushed plain line
(``[3/12] done  create-asg …``). The commands feed it what the core reports.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from wbspawner.cli.terminal import make_console


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
