"""JSON Schema validation of one profiles file, reported in an admin's words.

This module owns the shipped schema (``wbspawner/profiles/profiles.schema.json``)
and the translation of every ``jsonschema`` error into a :class:`Problem` located
by JSONPath: an unknown key is reported at the key itself with the allowed keys
and a likely spelling, a wrong type names what was expected and what was found.

Pure apart from reading the packaged schema once; it never raises for bad input.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from wbspawner.errors import Problem
from wbspawner.profiles.merge import jsonpath

_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@lru_cache(maxsize=1)
def profiles_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of one profiles file, as shipped in the package.

    Returns:
        The parsed schema (do not modify it).
    """
    text = (
        resources.files("wbspawner.profiles")
        .joinpath("profiles.schema.json")
        .read_text(encoding="utf-8")
    )
    schema: Mapping[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(profiles_schema())


def schema_problems(file: str, data: object) -> list[Problem]:
    """Validate one parsed profiles file against the schema.

    Args:
        file: the file name used in the problems.
        data: the parsed YAML document.

    Returns:
        Every problem, one per unknown or missing key and per invalid value.
    """
    problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        problems.extend(_problems_for(file, error))
    return problems


def describe(value: object) -> str:
    """Describe a parsed YAML value for a message, e.g. ``a string ('16')``.

    Args:
        value: the value.

    Returns:
        Its kind and, for scalars, a short rendering.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ('{shown}')"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for a close choice, else ``""``.

    Args:
        word: what was written.
        choices: what is allowed.

    Returns:
        The hint, with a leading space, or an empty string.
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".")


def _schema_of(error: ValidationError) -> Mapping[str, Any]:
    schema = error.schema
    return schema if isinstance(schema, Mapping) else {}


def _as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _problems_for(file: str, error: ValidationError) -> list[Problem]:
    parts: list[str | int] = [p for p in error.absolute_path]
    validator = error.validator
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(_schema_of(error).get("properties", {}))
        return [
            Problem(
                file,
                jsonpath([*parts, str(key)]),
                f"unknown key '{key}'{did_you_mean(str(key), allowed)}; "
                f"allowed: {', '.join(allowed)}",
            )
            for key in error.instance
            if key not in allowed
        ]
    if validator == "required" and isinstance(error.instance, dict):
        return [
            Problem(file, jsonpath(parts), f"missing required key '{key}'")
            for key in _as_list(error.validator_value)
            if key not in error.instance
        ]
    if "propertyNames" in error.schema_path:
        name = str(error.instance)
        message = f"invalid key '{name}': {_value_message(error)}"
        return [Problem(file, jsonpath([*parts, name]), message)]
    if validator in ("anyOf", "oneOf") and error.context:
        inner = best_match(error.context)
        return [Problem(file, jsonpath(parts), _value_message(inner))]
    return [Problem(file, jsonpath(parts), _value_message(error))]


def _value_message(error: ValidationError) -> str:
    validator = error.validator
    expected: Any = error.validator_value
    value = error.instance
    if validator == "type":
        types: Sequence[str] = [expected] if isinstance(expected, str) else expected
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return f"must be {words}, not {describe(value)}"
    if validator == "enum":
        choices = ", ".join(f"'{c}'" for c in expected)
        hint = did_you_mean(str(value), [str(c) for c in expected])
        return f"must be one of {choices}, not {describe(value)}{hint}"
    bounds = {
        "minimum": "at least",
        "exclusiveMinimum": "greater than",
        "maximum": "at most",
        "exclusiveMaximum": "less than",
    }
    if validator in bounds:
        return f"must be {bounds[str(validator)]} {expected}, not {value}"
    if validator == "minItems":
        return "must not be empty" if expected == 1 else f"needs {expected} items"
    if validator == "uniqueItems" and isinstance(value, list):
        seen: list[object] = []
        dups: list[str] = []
        for v in value:
            if v in seen and str(v) not in dups:
                dups.append(str(v))
            seen.append(v)
        return "lists " + ", ".join(f"'{d}'" for d in dups) + " more than once"
    if validator == "minLength":
        return "must not be empty" if expected == 1 else f"needs {expected} characters"
    if validator == "maxLength":
        return f"must be at most {expected} characters long"
    if validator == "pattern":
        what = _first_sentence(str(_schema_of(error).get("description", "")))
        hint = f" ({what})" if what else f" (pattern {expected})"
        return f"'{value}' is not valid{hint}"
    return error.message
