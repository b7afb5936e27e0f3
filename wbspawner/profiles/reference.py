"""The admin reference of the profiles YAML, rendered from the JSON Schema.

This module owns turning the schema's descriptions (the single source of the
admin documentation) into Markdown: one section per object, one table row per
key with its type, default and description. ``wbspawner schema`` prints it.

Pure: reads the packaged schema through :func:`profiles_schema`, returns lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wbspawner.profiles.schema import profiles_schema


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Mapping[str, Any] = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _type(node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for k in kinds:
        if k == "array":
            item = _resolve(node.get("items", {}), root)
            words.append(f"list of {_type(item, root) or 'values'}")
        elif k == "object" and "properties" not in node:
            value = node.get("additionalProperties", {})
            inner = _resolve(value, root) if isinstance(value, Mapping) else {}
            words.append(f"map of {_type(inner, root) or 'values'}")
        elif k:
            words.append(str(k))
    return " or ".join(words)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(
    title: str, node: Mapping[str, Any], root: Mapping[str, Any], seen: set[str]
) -> list[str]:
    lines = [f"### `{title}`", "", _cell(str(node.get("description", ""))), ""]
    prefix = "" if node is root else f"{title}."
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, Mapping[str, Any]]] = []
    required = set(node.get("required", ()))
    for key, raw in node.get("properties", {}).items():
        prop = _resolve(raw, root)
        default = json.dumps(prop["default"]) if "default" in prop else ""
        name = f"`{key}`" + (" (required)" if key in required else "")
        lines.append(
            f"| {name} | {_type(prop, root)} | {_cell(default)} | "
            f"{_cell(str(prop.get('description', '')))} |"
        )
        path = f"{prefix}{key}"
        items = _resolve(prop.get("items", {}), root)
        for child, where in ((prop, path), (items, f"{path}[]")):
            if "properties" in child:
                nested.append((where, child))
            extra = child.get("additionalProperties")
            if isinstance(extra, Mapping) and "properties" in _resolve(extra, root):
                nested.append((f"{where}.<name>", _resolve(extra, root)))
    lines.append("")
    for sub_title, sub in nested:
        marker = json.dumps(sub, sort_keys=True)
        if marker not in seen:
            seen.add(marker)
            lines += _section(sub_title, sub, root, seen)
    return lines


def schema_reference() -> list[str]:
    """Return the Markdown reference of every key of a profiles file.

    Returns:
        Lines of Markdown: a title, then one table per object, top-level first.
    """
    root = profiles_schema()
    return ["## Profiles reference", "", *_section("top level", root, root, set())]
