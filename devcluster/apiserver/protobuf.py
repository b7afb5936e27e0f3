"""Kubernetes protobuf request bodies, decoded for the kinds clients send that way.

client-go's typed clients (kubectl's and helm's) send built-in objects as
``application/vnd.kubernetes.protobuf``: the magic ``k8s\\0`` and a
``runtime.Unknown`` envelope (type meta, raw message). The wire carries field
numbers, not names, so decoding needs each message's field table; devcluster
knows the messages its clients send in protobuf (helm's release Secrets, the
access reviews of ``kubectl auth can-i``, ConfigMaps, Namespaces, evictions and
DeleteOptions), with the field numbers of k8s.io/api's ``generated.proto``.
Any other kind is a 415 asking for JSON. Decoded objects are the JSON objects
the same request would have carried (``bytes`` base64, times RFC 3339).
Pure functions.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from typing import Any

from devcluster.errors import ApiError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

Field = tuple[str, str, bool]
"""(JSON name, type, repeated); a type is a scalar name below or a message."""

_STRING, _BYTES, _INT, _BOOL = "string", "bytes", "int", "bool"
_MAP_STRING, _MAP_BYTES, _TIME = "map<string>", "map<bytes>", "time"

_MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta", False),
        2: ("raw", _BYTES, False),
        3: ("contentEncoding", _STRING, False),
        4: ("contentType", _STRING, False),
    },
    "TypeMeta": {1: ("apiVersion", _STRING, False), 2: ("kind", _STRING, False)},
    "ObjectMeta": {
        1: ("name", _STRING, False),
        2: ("generateName", _STRING, False),
        3: ("namespace", _STRING, False),
        5: ("uid", _STRING, False),
        6: ("resourceVersion", _STRING, False),
        7: ("generation", _INT, False),
        8: ("creationTimestamp", _TIME, False),
        9: ("deletionTimestamp", _TIME, False),
        10: ("deletionGracePeriodSeconds", _INT, False),
        11: ("labels", _MAP_STRING, False),
        12: ("annotations", _MAP_STRING, False),
        13: ("ownerReferences", "OwnerReference", True),
        14: ("finalizers", _STRING, True),
    },
    "OwnerReference": {
        1: ("kind", _STRING, False),
        3: ("name", _STRING, False),
        4: ("uid", _STRING, False),
        5: ("apiVersion", _STRING, False),
        6: ("controller", _BOOL, False),
        7: ("blockOwnerDeletion", _BOOL, False),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", _MAP_BYTES, False),
        3: ("type", _STRING, False),
        4: ("stringData", _MAP_STRING, False),
        5: ("immutable", _BOOL, False),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", _MAP_STRING, False),
        3: ("binaryData", _MAP_BYTES, False),
        4: ("immutable", _BOOL, False),
    },
    "Namespace": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "NamespaceSpec", False),
    },
    "NamespaceSpec": {1: ("finalizers", _STRING, True)},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", _INT, False),
        2: ("preconditions", "Preconditions", False),
        3: ("orphanDependents", _BOOL, False),
        4: ("propagationPolicy", _STRING, False),
        5: ("dryRun", _STRING, True),
    },
    "Preconditions": {
        1: ("uid", _STRING, False),
        2: ("resourceVersion", _STRING, False),
    },
    "Eviction": {
        1: ("metadata", "ObjectMeta", False),
        2: ("deleteOptions", "DeleteOptions", False),
    },
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "SubjectAccessReviewSpec", False),
    },
    "SubjectAccessReview": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "SubjectAccessReviewSpec", False),
    },
    "LocalSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "SubjectAccessReviewSpec", False),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", False),
        2: ("nonResourceAttributes", "NonResourceAttributes", False),
        3: ("user", _STRING, False),
        4: ("groups", _STRING, True),
        6: ("uid", _STRING, False),
    },
    "ResourceAttributes": {
        1: ("namespace", _STRING, False),
        2: ("verb", _STRING, False),
        3: ("group", _STRING, False),
        4: ("version", _STRING, False),
        5: ("resource", _STRING, False),
        6: ("subresource", _STRING, False),
        7: ("name", _STRING, False),
    },
    "NonResourceAttributes": {1: ("path", _STRING, False), 2: ("verb", _STRING, False)},
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "SelfSubjectRulesReviewSpec", False),
    },
    "SelfSubjectRulesReviewSpec": {1: ("namespace", _STRING, False)},
    "Time": {1: ("seconds", _INT, False), 2: ("nanos", _INT, False)},
}
"""Field tables (from k8s.io/api and apimachinery ``generated.proto``)."""

KINDS = frozenset(
    {
        "Secret",
        "ConfigMap",
        "Namespace",
        "DeleteOptions",
        "Eviction",
        "SelfSubjectAccessReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
    }
)
"""The kinds devcluster accepts in protobuf."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, varint value or length-delimited bytes)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4  # fixed-width numbers: none we decode
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(raw: bytes, binary: bool) -> tuple[str, str]:
    key, value = "", b""
    for number, item in _fields(raw):
        if number == 1 and isinstance(item, bytes):
            key = item.decode()
        elif number == 2 and isinstance(item, bytes):
            value = item
    return key, base64.b64encode(value).decode() if binary else value.decode()


def _time(raw: bytes) -> str:
    seconds = int(decode_message("Time", raw).get("seconds", 0))
    stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == _INT and isinstance(value, int):
        return _signed(value)
    if kind == _BOOL and isinstance(value, int):
        return bool(value)
    if kind == _STRING and isinstance(value, bytes):
        return value.decode()
    if kind == _BYTES and isinstance(value, bytes):
        return value
    if kind == _TIME and isinstance(value, bytes):
        return _time(value)
    if kind in _MESSAGES and isinstance(value, bytes):
        return decode_message(kind, value)
    raise ValueError(f"wire type does not fit a {kind}")


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    """Decode one message of a known type into its JSON form.

    Raises:
        ValueError: malformed data.
    """
    table = _MESSAGES[name]
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        field = table.get(number)
        if field is None:
            continue  # a field devcluster does not read
        json_name, kind, repeated = field
        if kind in (_MAP_STRING, _MAP_BYTES) and isinstance(value, bytes):
            key, item = _map_entry(value, kind == _MAP_BYTES)
            out.setdefault(json_name, {})[key] = item
        elif repeated:
            out.setdefault(json_name, []).append(_scalar(kind, value))
        else:
            out[json_name] = _scalar(kind, value)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf request body into the JSON object it stands for.

    Raises:
        ApiError: 415 for a kind devcluster does not decode, 400 when malformed.
    """
    if not body.startswith(_MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s magic prefix")
    try:
        envelope = decode_message("Unknown", body[len(_MAGIC) :])
        meta = envelope.get("typeMeta") or {}
        kind = str(meta.get("kind", ""))
        if kind not in KINDS:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"devcluster decodes {MEDIA_TYPE} only for "
                f"{', '.join(sorted(KINDS))}; send {kind or 'this object'} as "
                "application/json",
            )
        obj = decode_message(kind, bytes(envelope.get("raw", b"")))
    except ValueError as exc:
        raise ApiError(
            400, "BadRequest", f"the protobuf body could not be decoded: {exc}"
        ) from exc
    obj.update(kind=kind)
    if meta.get("apiVersion"):
        obj["apiVersion"] = meta["apiVersion"]
    return obj
