"""The ``wbspawner`` admin command: argument parsing, dispatch and exit codes.

This module owns the command line's shape and its contract with the shell: exit
code 0 when all is well, 1 when the configuration is invalid or an operation
failed for a reason an admin can fix (every problem printed to stderr, no
traceback), 2 for usage errors. It also owns the list of command modules.

Subcommands live in ``wbspawner/cli/*.py`` modules; each exposes
``register(subparsers)`` and adds its parsers with ``set_defaults(run=...)``
where ``run(args, ctx) -> int`` (see :mod:`wbspawner.cli.util`). To add a
command, create such a module and name it in :data:`COMMAND_MODULES`; a listed
module that does not exist (yet) is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from typing import TextIO

from wbspawner import __version__
from wbspawner.cli.util import CliContext, print_problems
from wbspawner.errors import ProfileConfigError, WbError

COMMAND_MODULES = (
    "wbspawner.cli.profiles",  # validate, render, catalog
    "wbspawner.cli.pools",  # pools plan / apply
    "wbspawner.cli.home",  # home move / show
    "wbspawner.cli.cost",  # cost estimates
    "wbspawner.cli.data",  # data plan / apply
)
"""Modules whose ``register(subparsers)`` adds subcommands, in help order."""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every available subcommand registered.

    Returns:
        The parser; each subcommand sets ``run`` in its defaults.

    Raises:
        ImportError: when a listed module exists but fails to import (a bug).
    """
    parser = argparse.ArgumentParser(
        prog="wbspawner",
        description="Admin tools of wbspawner: check the profiles, preview what "
        "users get, inspect instance types, plan node pools, move homes, "
        "estimate costs.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(subparsers)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``wbspawner`` command.

    Args:
        argv: arguments without the program name (``None``: ``sys.argv[1:]``).
        environ: environment for defaults such as ``WBSPAWNER_PROFILES``
            (``None``: ``os.environ``).
        stdout: where results go (``None``: ``sys.stdout``).
        stderr: where problems go (``None``: ``sys.stderr``).

    Returns:
        0 when all is well, 1 for invalid configuration or a failed operation,
        2 for a usage error.
    """
    ctx = CliContext(
        environ=os.environ if environ is None else environ,
        out=stdout or sys.stdout,
        err=stderr or sys.stderr,
    )
    parser = build_parser()
    try:  # argparse prints help and usage errors itself, to sys.stdout/stderr
        with redirect_stdout(ctx.out), redirect_stderr(ctx.err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "run", None) is None:
        parser.print_usage(ctx.err)
        print("wbspawner: error: a command is required", file=ctx.err)
        return 2
    try:
        code: int = args.run(args, ctx)
    except BrokenPipeError:  # output piped into `head` or a pager that quit
        if ctx.out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    except ProfileConfigError as err:
        print_problems(err, ctx.err)
        return 1
    except WbError as err:
        print(f"error: {getattr(err, 'message', None) or err}", file=ctx.err)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
