"""Merging the files of a profiles directory into one view that remembers origins.

This module owns the merge rules of the profiles directory: pools are merged by
name (a name defined in two files is a problem, reported at the second file),
sizes and budgets are concatenated in file order, and each other section
(``groups``, ``dask``, ``warm``, ``cost``, ``homes``, ``culling``, ``sizing``,
``data``) may
appear in one file only. Every merged item keeps the file and JSONPath it was
written at, so that later checks report problems where the admin can fix them.

Pure: it reads parsed documents, never files, and never mutates its inputs (the
merged view holds deep copies). It assumes nothing about the documents beyond
their being mappings: values of the wrong type are skipped here and reported by
the schema.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from wbspawner.errors import Problem

MAP_SECTIONS = ("pools",)
"""Top-level sections merged by key."""
LIST_SECTIONS = ("sizes", "budgets")
"""Top-level sections concatenated in file order."""
SINGLE_SECTIONS = (
    "groups",
    "dask",
    "warm",
    "cost",
    "homes",
    "culling",
    "sizing",
    "data",
)
"""Top-level sections that may appear in one file only."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def jsonpath(parts: Iterable[str | int]) -> str:
    """Render a path into a document as JSONPath, e.g. ``$.sizes[2].pool``.

    Keys that are not identifiers use bracket notation: ``$.pools['gpu-t4']``.

    Args:
        parts: keys (``str``) and list indexes (``int``) from the root.

    Returns:
        The JSONPath.
    """
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out += f"['{escaped}']"
    return out


def child(path: str, *parts: str | int) -> str:
    """Extend a rendered JSONPath by keys and indexes.

    Args:
        path: a path from :func:`jsonpath` (starting with ``$``).
        parts: keys and indexes to append.

    Returns:
        The longer path.
    """
    return path + jsonpath(parts)[1:]


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed profiles file."""

    file: str
    """The file name as given to the loader."""
    data: Mapping[str, Any]
    """Its top-level mapping."""


@dataclass(frozen=True, slots=True)
class Item:
    """A value of the merged view, with where it was written."""

    file: str
    """The file it comes from."""
    path: str
    """Its JSONPath in that file, e.g. ``$.sizes[2]``."""
    value: Any
    """The value as parsed (not yet validated)."""

    def at(self, *parts: str | int) -> str:
        """Return the JSONPath of a part of this item.

        Args:
            parts: keys and indexes below the item.

        Returns:
            The JSONPath in the item's file.
        """
        return child(self.path, *parts)

    def problem(self, message: str, *parts: str | int) -> Problem:
        """Return a problem located at a part of this item.

        Args:
            message: what is wrong.
            parts: keys and indexes below the item (none: the item itself).

        Returns:
            The problem.
        """
        return Problem(self.file, self.at(*parts), message)


@dataclass(frozen=True, slots=True)
class Merged:
    """The merged profiles, every item with its origin."""

    pools: Mapping[str, Item] = field(default_factory=lambda: MappingProxyType({}))
    """Pools by name; each item's path is ``$.pools.<name>``."""
    sizes: tuple[Item, ...] = ()
    """Sizes in file order; each item's path is ``$.sizes[i]`` in its file."""
    budgets: tuple[Item, ...] = ()
    """Budgets in file order."""
    sections: Mapping[str, Item] = field(default_factory=lambda: MappingProxyType({}))
    """The single sections (``groups``, ``dask``, …) that are present."""

    def section(self, name: str) -> Item | None:
        """Return a single section, if some file has it.

        Args:
            name: one of :data:`SINGLE_SECTIONS`.

        Returns:
            The section item or ``None``.
        """
        return self.sections.get(name)


def merge_documents(docs: Sequence[Document]) -> tuple[Merged, list[Problem]]:
    """Merge parsed profiles files in order.

    Args:
        docs: the files' documents, in merge order.

    Returns:
        The merged view (deep copies of the inputs) and the merge problems: pools
        defined twice and single sections present in more than one file.
    """
    pools: dict[str, Item] = {}
    lists: dict[str, list[Item]] = {name: [] for name in LIST_SECTIONS}
    sections: dict[str, Item] = {}
    problems: list[Problem] = []
    for doc in docs:
        for key, value in doc.data.items():
            if key in MAP_SECTIONS and isinstance(value, Mapping):
                for name, pool in value.items():
                    path = jsonpath([key, str(name)])
                    first = pools.get(str(name))
                    if first is not None:
                        problems.append(
                            Problem(
                                doc.file,
                                path,
                                f"pool '{name}' is already defined in {first.file}; "
                                "a pool may be defined in one file only",
                            )
                        )
                        continue
                    pools[str(name)] = Item(doc.file, path, copy.deepcopy(pool))
            elif key in LIST_SECTIONS and isinstance(value, list):
                lists[key].extend(
                    Item(doc.file, jsonpath([key, i]), copy.deepcopy(v))
                    for i, v in enumerate(value)
                )
            elif key in SINGLE_SECTIONS:
                first = sections.get(key)
                if first is not None:
                    problems.append(
                        Problem(
                            doc.file,
                            jsonpath([key]),
                            f"section '{key}' is already defined in {first.file}; "
                            "it may appear in one file only",
                        )
                    )
                    continue
                sections[key] = Item(doc.file, jsonpath([key]), copy.deepcopy(value))
    merged = Merged(
        pools=MappingProxyType(pools),
        sizes=tuple(lists["sizes"]),
        budgets=tuple(lists["budgets"]),
        sections=MappingProxyType(sections),
    )
    return merged, problems
