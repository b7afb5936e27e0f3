"""How the ``wbspawner`` commands tell a terminal from a pipe.

This module owns one choice, made per stream: is it a terminal a person watches,
or a pipe or file a program reads? It decides from the stream and the command's
environment only (``TERM=dumb`` is no terminal; ``$COLUMNS``, else the
terminal's own, is its width; ``NO_COLOR`` drops colours), never from what rich
would guess from the process, so a command given a ``StringIO`` never writes a
terminal code. On a terminal, long work shows a bar and step lines
(:mod:`wbspawner.cli.progress`) and tables fit the width
(:mod:`wbspawner.cli.tables`), both drawn by `rich
<https://rich.readthedocs.io>`_; anywhere else the same steps are numbered
plain lines and tables keep their plain layout, so logs and scripts read exactly
what they read before.

Progress goes to stderr (the notes stream), results to stdout: ``--json`` or
``> file`` still get only results, while the person at the terminal sees the
work advance. (``home move`` has no ``--json``; its steps are its report, on
stdout.) The library never renders anything: the core reports steps (an
iterator or a callback) and the command shells pass them here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console
from rich.text import Text

from wbspawner.cli.util import CliContext

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
