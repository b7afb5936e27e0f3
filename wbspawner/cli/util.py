"""Shared pieces of the ``wbspawner`` subcommands: options, loading, output.

This module owns what every command module (``wbspawner/cli/*.py``) reuses so
that the commands behave alike: the ``--profiles``/``--catalog``/``--json``
options and how their defaults are found (option, then ``WBSPAWNER_PROFILES`` /
``WBSPAWNER_CATALOG``, then ``./profiles`` and the packaged catalogue), aligned
the AWS endpoint (``--endpoint-url``, then ``AWS_ENDPOINT_URL``), aligned
tables for people, JSON for machines, and how problems are printed.

Library code never prints; only the ``run`` functions of command modules write,
and only to the streams of the :class:`CliContext` they are given.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from wbspawner.catalog.instances import load_catalog
from wbspawner.errors import ProfileConfigError
from wbspawner.model import Catalog, Profiles
from wbspawner.profiles.loader import load_profiles

PROFILES_ENV = "WBSPAWNER_PROFILES"
"""Profiles paths, ``os.pathsep``-separated (as the hub reads them)."""
CATALOG_ENV = "WBSPAWNER_CATALOG"
"""Instance catalogue JSON (default: the packaged one)."""
DEFAULT_PROFILES = "profiles"
"""Profiles directory used when neither option nor environment names one."""
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
"""Another AWS endpoint for every service (the AWS SDKs' own variable)."""


@dataclass(frozen=True, slots=True)
class CliContext:
    """What a command may use besides its arguments."""

    environ: Mapping[str, str]
    """The environment (for option defaults)."""
    out: TextIO
    """Results."""
    err: TextIO
    """Problems and notes."""

    def print(self, text: str = "") -> None:
        """Write one line of results."""
        print(text, file=self.out)

    def note(self, text: str) -> None:
        """Write one line to stderr (problems, warnings, notes)."""
        print(text, file=self.err)


Command = Callable[[argparse.Namespace, CliContext], int]
"""A subcommand: ``run(args, ctx) -> exit code``."""


def add_command_group(
    subparsers: Any, name: str, *, help: str, description: str
) -> Any:
    """Add ``wbspawner NAME ACTION ...`` and return its action subparsers.

    ``wbspawner NAME`` without an action prints the group's usage and the
    actions to choose from (exit code 2), like any other usage error.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.
        name: the command (``pools``, ``home``, ``cost``).
        help: one line for ``wbspawner --help``.
        description: the paragraph of ``wbspawner NAME --help``.

    Returns:
        The action subparsers (``add_parser`` per action).
    """
    group = subparsers.add_parser(name, help=help, description=description)
    actions = group.add_subparsers(dest=f"{name}_command", metavar="ACTION")

    def usage(_args: argparse.Namespace, ctx: CliContext) -> int:
        *first, last = list(actions.choices)
        listed = f"{', '.join(first)} or {last}" if first else last
        group.print_usage(ctx.err)
        ctx.note(f"wbspawner {name}: error: choose {listed}")
        return 2

    group.set_defaults(run=usage)
    return actions


def add_profiles_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--profiles PATH`` (repeatable) to a subcommand.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--profiles",
        action="append",
        metavar="PATH",
        help=f"profiles directory or file (repeatable; default: ${PROFILES_ENV} "
        f"or ./{DEFAULT_PROFILES})",
    )


def add_catalog_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--catalog FILE`` to a subcommand.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--catalog",
        metavar="FILE",
        help=f"instance catalogue JSON (default: ${CATALOG_ENV} or the shipped one)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable output) to a subcommand.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of a table"
    )


def add_endpoint_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--endpoint-url URL`` (another AWS endpoint) to a subcommand.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help=f"another AWS endpoint, such as a local moto (default: ${ENDPOINT_ENV})",
    )


def endpoint_url(args: argparse.Namespace, ctx: CliContext) -> str | None:
    """Return the AWS endpoint a command should use (``None``: AWS itself).

    Args:
        args: parsed arguments (``endpoint_url`` from :func:`add_endpoint_option`).
        ctx: the command context (environment).

    Returns:
        ``--endpoint-url``, else ``$AWS_ENDPOINT_URL``, else ``None``.
    """
    given = getattr(args, "endpoint_url", None) or ctx.environ.get(ENDPOINT_ENV, "")
    return given.strip() or None


def profiles_paths(args: argparse.Namespace, ctx: CliContext) -> tuple[list[str], bool]:
    """Return the profiles paths a command should read.

    Args:
        args: parsed arguments (``profiles`` from :func:`add_profiles_option`).
        ctx: the command context (environment).

    Returns:
        The paths and whether they were named explicitly (option or environment)
        rather than being the ``./profiles`` fallback.
    """
    given: Sequence[str] | None = getattr(args, "profiles", None)
    if given:
        return list(given), True
    env = ctx.environ.get(PROFILES_ENV, "").strip()
    if env:
        return [p for p in env.split(os.pathsep) if p.strip()], True
    return [DEFAULT_PROFILES], False


def catalog_from_args(args: argparse.Namespace, ctx: CliContext) -> Catalog:
    """Load the catalogue named by ``--catalog`` or the environment.

    Args:
        args: parsed arguments (``catalog`` from :func:`add_catalog_option`).
        ctx: the command context.

    Returns:
        The catalogue.

    Raises:
        ProfileConfigError: when the catalogue file is invalid.
    """
    path = getattr(args, "catalog", None) or ctx.environ.get(CATALOG_ENV) or None
    return load_catalog(path)


def profiles_from_args(
    args: argparse.Namespace, ctx: CliContext
) -> tuple[Profiles, Catalog]:
    """Load the profiles (and catalogue) a command was pointed at.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        The validated profiles and the catalogue they were checked against.

    Raises:
        ProfileConfigError: listing every problem of invalid profiles.
    """
    catalog = catalog_from_args(args, ctx)
    paths, _ = profiles_paths(args, ctx)
    return load_profiles(paths, catalog), catalog


def print_problems(err: ProfileConfigError, stream: TextIO) -> None:
    """Print every problem as ``file: $.path: message``, then a count.

    Args:
        err: the error.
        stream: where to write (stderr).
    """
    for problem in err.problems:
        print(str(problem), file=stream)
    count = len(err.problems)
    print(f"{count} problem{'s' if count != 1 else ''} found", file=stream)


def print_json(ctx: CliContext, data: Any) -> None:
    """Print data as indented JSON.

    Args:
        ctx: the command context.
        data: JSON-ready data.
    """
    ctx.print(json.dumps(data, indent=2, sort_keys=False))


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> list[str]:
    """Return lines of an aligned text table.

    Args:
        headers: column titles.
        rows: cells, as strings.
        right: indexes of right-aligned (numeric) columns.

    Returns:
        The header line, then one line per row, columns separated by two spaces
        and trailing blanks removed.
    """
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i])
            for i, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def gib(mib: int) -> str:
    """Format MiB as GiB with two decimals, e.g. ``61.04 GiB``.

    Args:
        mib: an amount of memory in MiB.

    Returns:
        The text.
    """
    return f"{mib / 1024:.2f} GiB"


def exists(paths: Sequence[str]) -> bool:
    """Return whether every path exists.

    Args:
        paths: file system paths.

    Returns:
        ``True`` when all exist.
    """
    return all(Path(p).exists() for p in paths)
