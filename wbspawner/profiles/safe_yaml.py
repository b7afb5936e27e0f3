"""Reading one profiles file as plain YAML data, safely and as admins mean it.

This module owns how profiles YAML is parsed: ``yaml.SafeLoader`` (no tag can
build a Python object; such a tag is reported, never executed), YAML 1.2 numbers
(YAML 1.1 reads ``18:00`` as the number 1080 and ``010`` as 8; admins mean a
time and ten), and duplicate keys reported instead of silently overwritten.
Syntax errors become problems with their line and column.

Pure: parses text, never opens files.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from wbspawner.errors import Problem

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NOT_JSON = ("binary", "omap", "pairs", "set", "timestamp")
"""YAML 1.1 types with no JSON equivalent: their tags are refused."""

MAX_DEPTH = 40
"""Deepest nesting accepted (profiles need about 8 levels)."""
MAX_VALUES = 100_000
"""Most values accepted in one document (aliases count each time they are used)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars and string keys; records duplicate keys.

    YAML 1.1 reads ``18:00`` as the number 1080 (base 60), ``010`` as 8 and
    ``2026-07-20`` as a date; admins mean a time, ten and a string. Only the 1.2
    core-schema numbers are resolved, and keys are always the text written (a
    group named ``2024`` stays ``"2024"``).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                continue
            if key_node.tag == "!" or key_node.tag.startswith("!"):
                continue  # an explicit local tag: refused when constructed
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                self.duplicates.append(
                    f"line {line}, column {key_node.start_mark.column + 1}: "
                    f"duplicate key '{key_node.value}' (first at line "
                    f"{seen[key_node.value]}); the later value would win silently"
                )
            seen.setdefault(key_node.value, line)
            key_node.tag = _STR
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.yaml_constructors = {
    tag: constructor
    for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
    if tag is None or tag.rpartition(":")[2] not in _NOT_JSON
}
_Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*\.[0-9_]*)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml(file: str, text: str) -> tuple[object, list[Problem]]:
    """Parse one profiles file safely.

    Args:
        file: the file name used in problems.
        text: its contents.

    Returns:
        The document (``{}`` for an empty file; ``None`` when it does not parse)
        and its problems (syntax errors, forbidden tags, duplicate keys).
    """
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        return None, [Problem(file, "$", _yaml_message(err))]
    except yaml.YAMLError as err:  # errors without a position
        return None, [Problem(file, "$", f"invalid YAML: {err}")]
    except RecursionError:
        return None, [Problem(file, "$", "invalid YAML: nested too deeply")]
    finally:
        loader.dispose()
    too_big = _too_big(data)
    if too_big:
        return None, [Problem(file, "$", too_big)]
    problems = [Problem(file, "$", d) for d in loader.duplicates]
    return ({} if data is None else data), problems


def _too_big(data: object) -> str | None:
    """Explain why a document is too deep or too large to be profiles, if it is.

    Iterative, and bounded by the limits, so that recursive aliases and alias
    bombs are refused quickly instead of hanging or recursing later.
    """
    stack: list[tuple[object, int]] = [(data, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep (recursive alias?)"
        if count > MAX_VALUES:
            return f"more than {MAX_VALUES} values (an alias used too often?)"
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return None


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = err.problem or "invalid YAML"
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        return (
            f"{where}the YAML tag '{tag.group(1)}' is not allowed: profiles are "
            "plain data (mappings, lists, strings, numbers, booleans)"
        )
    context = f" ({err.context})" if err.context else ""
    return f"{where}invalid YAML: {problem}{context}"
