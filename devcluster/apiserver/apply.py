"""Server-side apply and field ownership (``metadata.managedFields``).

An approximation of Kubernetes' structured merge (sigs.k8s.io/structured-merge-diff)
that follows its rules where clients can tell:

* A field set is the set of leaf paths of an object, written in the
  ``FieldsV1`` trie format (``f:<field>``, ``k:<keys as JSON>`` for an item of
  a keyed list, ``v:<value>`` for a set member, ``.`` for the item itself).
* Lists follow the schema devcluster validates with: ``x-kubernetes-list-type``
  ``map`` (keyed by ``x-kubernetes-list-map-keys``) and ``set`` merge item by
  item; a list without a list type but with a ``merge`` patch strategy is keyed
  by its patch merge key, as kube-openapi's schema conversion does; every other
  list, and maps of ``x-kubernetes-map-type: atomic``, are one value.
* Applying merges the applied fields into the live object (maps merge, keyed
  lists merge by key, sets unite, anything else is replaced), removes the
  fields this manager applied before and applies no more (unless another
  manager owns them too), and records the applied set as this manager's
  ``Apply`` entry.
* A field another manager owns with a different value is a conflict: 409 with
  one cause per field, unless ``force``, which takes the fields over.
* Other writes (``Update``) to an object that has managed fields give the
  writer the fields whose values changed, and take them from the others.

Not modelled: defaulting of missing list-map keys, per-version conversion,
ownership of objects never applied (devcluster records ``managedFields`` only
once an object has been applied), and item order (new items go last).
Pure functions; they never mutate their inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from devcluster.apiserver import validation
from devcluster.apiserver.openapi import definition_name
from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import Resource
from devcluster.errors import ApiError
from devcluster.timestamps import now_iso

Path = tuple[str, ...]
Node = Mapping[str, Any]

_IGNORED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
"""Metadata the apiserver never counts as anyone's field."""


# ------------------------------------------------------------------ schema
def _resolve(node: Node) -> Node:
    defs = validation.definitions()
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node and seen < 8:
        node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        seen += 1
    return node if isinstance(node, Mapping) else {}


def _child(node: Node, key: str) -> Node:
    node = _resolve(node)
    props = node.get("properties") or {}
    if key in props:
        found: Node = props[key]
        return found
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else {}


def _list_type(node: Node) -> tuple[str, tuple[str, ...]]:
    """Return ``(map|set|atomic, keys)`` of a list field's schema node."""
    for candidate in (node, _resolve(node)):
        kind = candidate.get("x-kubernetes-list-type")
        if kind == "map":
            return "map", tuple(candidate.get("x-kubernetes-list-map-keys") or ())
        if kind in ("set", "atomic"):
            return str(kind), ()
        strategy = str(candidate.get("x-kubernetes-patch-strategy") or "")
        key = candidate.get("x-kubernetes-patch-merge-key")
        if "merge" in strategy.split(",") and key:
            return "map", (str(key),)
    return "atomic", ()


def _atomic_map(node: Node) -> bool:
    return _resolve(node).get("x-kubernetes-map-type") == "atomic"


def root_schema(res: Resource) -> Node:
    """Return the schema node of a resource's kind (empty when unknown)."""
    name = definition_name(res.group, res.version, res.kind)
    found: Node = validation.definitions().get(name or "", {})
    return found


# -------------------------------------------------------------- field sets
def _item_key(item: Any, keys: tuple[str, ...]) -> str:
    ident = {k: item.get(k) for k in keys if isinstance(item, dict) and k in item}
    return "k:" + json.dumps(ident, sort_keys=True, separators=(",", ":"))


def _value_key(value: Any) -> str:
    return "v:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def _leaves(value: Any, node: Node, prefix: Path) -> Iterator[Path]:
    if isinstance(value, dict) and value and not _atomic_map(node):
        for key, sub in value.items():
            yield from _leaves(sub, _child(node, key), (*prefix, f"f:{key}"))
        return
    if isinstance(value, list) and value:
        kind, keys = _list_type(node)
        items = _resolve(node).get("items") or {}
        if kind == "map":
            for item in value:
                path = (*prefix, _item_key(item, keys))
                yield (*path, ".")
                yield from _leaves(item, items, path)
            return
        if kind == "set":
            for item in value:
                yield (*prefix, _value_key(item))
            return
    yield prefix


def field_set(obj: Mapping[str, Any], res: Resource) -> set[Path]:
    """Return the leaf paths of an object a manager can own."""
    root = root_schema(res)
    paths: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status" and res.status):
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _IGNORED_META}
            paths.update(_leaves(meta, _child(root, "metadata"), ("f:metadata",)))
        else:
            paths.update(_leaves(value, _child(root, key), (f"f:{key}",)))
    return {p for p in paths if p != ("f:metadata",)}


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """Return a field set as the ``FieldsV1`` trie."""
    trie: dict[str, Any] = {}
    for path in sorted(paths):
        node = trie
        for part in path:
            node = node.setdefault(part, {})
    return trie


def from_fields_v1(trie: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """Return the leaf paths of a ``FieldsV1`` trie."""
    paths: set[Path] = set()
    for key, sub in trie.items():
        if isinstance(sub, Mapping) and sub:
            paths |= from_fields_v1(sub, (*prefix, key))
        else:
            paths.add((*prefix, key))
    return paths


# ------------------------------------------------------------- navigation
def _step(value: Any, part: str) -> tuple[bool, Any]:
    """Follow one path element; return (found, value)."""
    if part.startswith("f:") and isinstance(value, dict):
        key = part[2:]
        return (key in value), value.get(key)
    if part.startswith("k:") and isinstance(value, list):
        ident = json.loads(part[2:])
        for item in value:
            if isinstance(item, dict) and all(
                item.get(k) == v for k, v in ident.items()
            ):
                return True, item
        return False, None
    if part.startswith("v:") and isinstance(value, list):
        wanted = json.loads(part[2:])
        return (wanted in value), wanted
    return False, None


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    """Return (found, value) at a path (``.`` stands for the item itself)."""
    value = obj
    for part in path:
        if part == ".":
            return True, value
        found, value = _step(value, part)
        if not found:
            return False, None
    return True, value


def _remove(obj: Any, path: Path) -> None:
    """Remove the field (or list item, or set member) at ``path`` in place.

    A map or list left empty by the removal goes too (below the top-level
    fields), as an applier that stops applying the last item of a field no
    longer has that field.
    """
    if path and path[-1] == ".":
        path = path[:-1]
    found, parent = value_at(obj, path[:-1])
    if not found:
        return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        ok, item = _step(parent, last)
        if ok:
            parent.remove(item)
    elif last.startswith("v:") and isinstance(parent, list):
        wanted = json.loads(last[2:])
        if wanted in parent:
            parent.remove(wanted)
    if len(path) > 2 and isinstance(parent, dict | list) and not parent:
        _remove(obj, path[:-1])


# ------------------------------------------------------------------ merge
def merge(live: Any, applied: Any, node: Node) -> Any:
    """Return ``applied`` merged into ``live`` (new data; inputs untouched)."""
    if isinstance(applied, dict) and isinstance(live, dict) and not _atomic_map(node):
        result = clone(live)
        for key, value in applied.items():
            result[key] = merge(live.get(key), value, _child(node, key))
        return result
    if isinstance(applied, list) and isinstance(live, list):
        kind, keys = _list_type(node)
        items = _resolve(node).get("items") or {}
        if kind == "map":
            out = [clone(i) for i in live]
            for item in applied:
                ident = _item_key(item, keys)
                index = next(
                    (n for n, cur in enumerate(out) if _item_key(cur, keys) == ident),
                    None,
                )
                if index is None:
                    out.append(clone(item))
                else:
                    out[index] = merge(out[index], item, items)
            return out
        if kind == "set":
            return [clone(i) for i in live] + [
                clone(i) for i in applied if i not in live
            ]
    return clone(applied)


# --------------------------------------------------------------- managers
def _entries(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = (obj.get("metadata") or {}).get("managedFields") or []
    return [dict(e) for e in found if isinstance(e, dict) and e.get("manager")]


def _entry(
    manager: str, operation: str, res: Resource, paths: set[Path]
) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": res.api_version,
        "time": now_iso(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }


def _same_manager(entry: Mapping[str, Any], manager: str, operation: str) -> bool:
    return (
        entry.get("manager") == manager
        and entry.get("operation") == operation
        and not entry.get("subresource")
    )


def _conflict_error(
    res: Resource, name: str, conflicts: list[tuple[str, Path]]
) -> ApiError:
    def dotted(path: Path) -> str:
        parts = []
        for part in path:
            if part.startswith("f:"):
                parts.append("." + part[2:])
            elif part.startswith(("k:", "v:")):
                parts.append(f"[{part[2:]}]")
        return "".join(parts)

    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{manager}" using {res.api_version}',
            "field": dotted(path),
        }
        for manager, path in conflicts
    ]
    lines = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
    count = len(causes)
    text = f"Apply failed with {count} conflict{'s' if count > 1 else ''}: " + (
        f"{causes[0]['message']}: {causes[0]['field']}"
        if count == 1
        else f"conflicts with other managers:\n{lines}"
    )
    details: dict[str, Any] = {"name": name, "kind": res.plural, "causes": causes}
    if res.group:
        details["group"] = res.group
    return ApiError(409, "Conflict", text, details)


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    res: Resource,
    manager: str,
    force: bool = False,
) -> dict[str, Any]:
    """Return the object after ``manager`` applies ``applied`` to ``live``.

    ``live`` is None when the object does not exist yet (apply creates it).
    The result carries the new ``metadata.managedFields``.

    Raises:
        ApiError: 409 Conflict listing the fields other managers own with
            other values (unless ``force``).
    """
    applied = dict(clone(applied))
    applied.setdefault("metadata", {}).pop("managedFields", None)
    if res.status:
        applied.pop("status", None)  # the main resource ignores status (resetFields)
    mine = field_set(applied, res)
    if live is None:
        result = applied
        result["metadata"]["managedFields"] = [_entry(manager, "Apply", res, mine)]
        return result
    entries = _entries(live)
    before: set[Path] = set()
    conflicts: list[tuple[str, Path]] = []
    others: list[tuple[dict[str, Any], set[Path]]] = []
    for entry in entries:
        owned = from_fields_v1(entry.get("fieldsV1") or {})
        if _same_manager(entry, manager, "Apply"):
            before = owned
            continue
        clashing = {
            p
            for p in owned & mine
            if p[-1] != "." and value_at(live, p) != value_at(applied, p)
        }
        conflicts += [(str(entry["manager"]), p) for p in sorted(clashing)]
        others.append((entry, owned - clashing if force else owned))
    if conflicts and not force:
        raise _conflict_error(res, str(applied["metadata"].get("name", "")), conflicts)
    result = merge(live, applied, root_schema(res))
    still_owned = set().union(*(owned for _, owned in others)) if others else set()
    dropped = before - mine - still_owned
    # Whole items first (their key fields must not go one by one), then
    # the deepest fields first.
    for path in sorted(dropped, key=lambda p: (p[-1] != ".", -len(p))):
        _remove(result, path)
    new_entries: list[dict[str, Any]] = []
    placed = False
    for entry in entries:
        if _same_manager(entry, manager, "Apply"):
            new_entries.append(_entry(manager, "Apply", res, mine))
            placed = True
            continue
        owned = next(o for e, o in others if e is entry)
        if owned:
            new_entries.append({**entry, "fieldsV1": to_fields_v1(owned)})
    if not placed:
        new_entries.append(_entry(manager, "Apply", res, mine))
    result.setdefault("metadata", {})["managedFields"] = new_entries
    return result


def track_update(
    old: Mapping[str, Any], new: Mapping[str, Any], res: Resource, manager: str
) -> list[dict[str, Any]]:
    """Return ``managedFields`` after ``manager`` changed ``old`` into ``new``.

    The writer gets every field whose value changed (an ``Update`` entry);
    other managers lose those fields, and fields gone from the object.
    """
    entries = _entries(old)
    old_paths, new_paths = field_set(old, res), field_set(new, res)
    changed = {
        p for p in new_paths if p[-1] != "." and value_at(old, p) != value_at(new, p)
    } | {p for p in new_paths - old_paths}
    gone = old_paths - new_paths
    out: list[dict[str, Any]] = []
    mine: set[Path] = set(changed)
    for entry in entries:
        owned = from_fields_v1(entry.get("fieldsV1") or {})
        if _same_manager(entry, manager, "Update"):
            mine |= owned - gone
            continue
        left = owned - changed - gone
        if left:
            out.append({**entry, "fieldsV1": to_fields_v1(left)})
    if mine:
        out.append(_entry(manager, "Update", res, mine))
    return out
