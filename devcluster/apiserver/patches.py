"""Patch application: JSON merge patch, strategic merge patch and JSON patch.

Pure functions over JSON-like data; they never mutate their inputs. Strategic
merge knows the list merge keys of the core types that clients actually patch
(containers, env, volumes, volumeMounts, ports, conditions, ...); other lists
are replaced, as the apiserver does for lists without a patch strategy.
"""

from __future__ import annotations

from typing import Any

from devcluster.errors import ApiError

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
"""List fields merged by key; ``ports`` is special-cased (containerPort or port)."""

_SET_LISTS = frozenset({"finalizers"})
"""Primitive lists with the ``merge`` strategy (union)."""


def clone(value: Any) -> Any:
    """Deep-copy JSON-like data (dicts, lists, scalars) quickly."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch and return the result."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _merge_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if field in _SET_LISTS:
        out = list(target)
        out.extend(v for v in patch if v not in out)
        return out
    key = _merge_key(field, patch or target)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [_strip(clone(i)) for i in patch]
    if any(i.get("$patch") == "replace" for i in patch):
        return [_strip(clone(i)) for i in patch if i.get("$patch") != "replace"]
    out = [clone(i) for i in target]
    for item in patch:
        ident = item.get(key)
        index = next(
            (
                n
                for n, cur in enumerate(out)
                if isinstance(cur, dict) and cur.get(key) == ident
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(_strip(clone(item)))
        else:
            out[index] = strategic_merge_patch(out[index], item)
    return out


def _strip(value: Any) -> Any:
    """Remove patch directives from a value being inserted as-is."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (the subset kubectl and clients send)."""
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder, $retainKeys: ordering hints only
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = _strip(clone(value))
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def _op_add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if index > len(parent):
            raise IndexError(last)
        parent.insert(index, value)
    else:
        parent[last] = value
    return doc


def _op_remove(doc: Any, parts: list[str]) -> Any:
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    parts = _pointer(str(op.get("path", "")))
    if kind == "add":
        return _op_add(doc, parts, clone(op.get("value")))
    if kind == "remove":
        return _op_remove(doc, parts)
    if kind == "replace":
        _resolve(doc, parts)  # must exist
        return (
            _op_add(_op_remove(doc, parts), parts, clone(op.get("value")))
            if parts
            else clone(op.get("value"))
        )
    if kind in ("move", "copy"):
        source = _pointer(str(op.get("from", "")))
        value = clone(_resolve(doc, source))
        if kind == "move":
            doc = _op_remove(doc, source)
        return _op_add(doc, parts, value)
    if kind == "test":
        if _resolve(doc, parts) != op.get("value"):
            raise ApiError(422, "Invalid", f"test operation failed at {op.get('path')}")
        return doc
    raise ApiError(400, "BadRequest", f"unknown JSON patch operation {kind!r}")


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch and return the result.

    Raises:
        ApiError: 422 when an operation does not apply, 400 when malformed.
    """
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = clone(target)
    for op in ops:
        if not isinstance(op, dict):
            raise ApiError(400, "BadRequest", "json patch operation must be an object")
        try:
            doc = _apply_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: "
                f"jsonpatch {op.get('op')} operation does not apply: {exc!r}",
            ) from exc
    return doc


def apply_patch(target: Any, patch: Any, patch_type: str) -> Any:
    """Apply a patch of one of the types ``merge``, ``strategic`` or ``json``."""
    if patch_type == "merge":
        return merge_patch(target, patch)
    if patch_type == "strategic":
        return strategic_merge_patch(target, patch)
    if patch_type == "json":
        return json_patch(target, patch)
    raise ApiError(
        415, "UnsupportedMediaType", f"unsupported patch type {patch_type!r}"
    )
