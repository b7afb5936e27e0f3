"""Label and field selectors: parsing and matching, as the apiserver does them.

Label selectors support ``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` and
``!key``. Field selectors support ``=``, ``==`` and ``!=`` on the fields the real
apiserver allows for each resource; any other field is a 400 Bad Request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devcluster.errors import ApiError

_COMMON = ("metadata.name", "metadata.namespace")

FIELDS: dict[str, tuple[str, ...]] = {
    "pods": _COMMON
    + (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "nodes": _COMMON + ("spec.unschedulable",),
    "events": _COMMON
    + (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": _COMMON + ("type",),
    "namespaces": _COMMON + ("status.phase",),
    "persistentvolumeclaims": _COMMON,
    "persistentvolumes": _COMMON,
}
"""Field-selector fields by resource (others only have the metadata ones)."""

_LABEL_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_LABEL_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(
    rf"^\s*({_LABEL_KEY})\s+(in|notin)\s*\(\s*([^()]*)\)\s*$", re.IGNORECASE
)
_OP_RE = re.compile(rf"^\s*({_LABEL_KEY})\s*(==|!=|=)\s*({_LABEL_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_LABEL_KEY})\s*$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One parsed label requirement."""

    key: str
    op: str
    """One of ``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!exists``."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether a label map satisfies this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects without the label, like the apiserver.
        return not present or value not in self.values


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a label selector string.

    Raises:
        ApiError: 400 when the selector does not parse.
    """
    reqs: list[Requirement] = []
    for part in _split_top(text or ""):
        if m := _SET_RE.match(part):
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2).lower(), values))
        elif m := _OP_RE.match(part):
            op = "=" if m.group(2) in ("=", "==") else "!="
            reqs.append(Requirement(m.group(1), op, frozenset([m.group(3)])))
        elif m := _EXISTS_RE.match(part):
            op = "!exists" if m.group(1) else "exists"
            reqs.append(Requirement(m.group(2), op))
        else:
            raise ApiError(
                400,
                "BadRequest",
                f"unable to parse requirement: {part.strip()!r}",
            )
    return tuple(reqs)


def _split_fields(text: str) -> list[str]:
    """Split a field selector on unescaped commas."""
    return [p for p in re.split(r"(?<!\\),", text or "") if p.strip()]


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    """Return a field's value as the apiserver's field set renders it."""
    if path == "source":
        src = obj.get("source") or {}
        return str(src.get("component", "") or obj.get("reportingComponent", ""))
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(plural: str, text: str) -> tuple[tuple[str, str, str], ...]:
    """Parse a field selector for one resource into ``(field, op, value)`` triples.

    Raises:
        ApiError: 400 for a field the apiserver does not index for this resource.
    """
    allowed = FIELDS.get(plural, _COMMON)
    reqs: list[tuple[str, str, str]] = []
    for part in _split_fields(text):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {part!r}")
        field, op, value = m.group(1), m.group(2), m.group(3).replace("\\,", ",")
        if field not in allowed:
            raise ApiError(
                400,
                "BadRequest",
                f"field label not supported: {field}",
            )
        reqs.append((field, "!=" if op == "!=" else "=", value))
    return tuple(reqs)


Matcher = Callable[[Mapping[str, Any]], bool]


def make_matcher(plural: str, label_selector: str, field_selector: str) -> Matcher:
    """Build one predicate for both selectors (parsing errors raise ApiError 400)."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(plural, field_selector)
    if not labels and not fields:
        return _match_all

    def match(obj: Mapping[str, Any]) -> bool:
        obj_labels = (obj.get("metadata") or {}).get("labels") or {}
        if not all(r.matches(obj_labels) for r in labels):
            return False
        for field, op, value in fields:
            if (_field_value(obj, field) == value) != (op == "="):
                return False
        return True

    return match


def _match_all(obj: Mapping[str, Any]) -> bool:
    return True


_OPERATORS = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!exists",
}


def selector_requirements(selector: Mapping[str, Any]) -> tuple[Requirement, ...]:
    """Return the requirements of a ``metav1.LabelSelector`` object.

    ``matchLabels`` and ``matchExpressions`` are ANDed; an empty selector has
    no requirements (it matches everything, as workload selectors do).
    """
    reqs = [
        Requirement(str(k), "=", frozenset([str(v)]))
        for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        op = _OPERATORS.get(str(expr.get("operator")))
        if op is None:
            raise ApiError(
                400, "BadRequest", f"{expr.get('operator')!r} is not a valid operator"
            )
        values = frozenset(str(v) for v in expr.get("values") or [])
        reqs.append(Requirement(str(expr.get("key", "")), op, values))
    return tuple(reqs)


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Tell whether labels satisfy a ``metav1.LabelSelector`` object."""
    return all(r.matches(labels) for r in selector_requirements(selector))


def format_selector(selector: Mapping[str, Any]) -> str:
    """Return a ``metav1.LabelSelector`` as a selector string (``a=b,c in (d)``)."""
    parts = []
    for req in selector_requirements(selector):
        if req.op == "=":
            parts.append(f"{req.key}={next(iter(req.values))}")
        elif req.op in ("in", "notin"):
            parts.append(f"{req.key} {req.op} ({','.join(sorted(req.values))})")
        elif req.op == "exists":
            parts.append(req.key)
        else:
            parts.append(f"!{req.key}")
    return ",".join(parts)
