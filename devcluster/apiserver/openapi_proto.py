"""OpenAPI v2 as protobuf: gnostic's ``openapi.v2.Document`` wire encoding.

client-go fetches ``/openapi/v2`` with ``Accept: ...proto-openapi.spec.v2...`` and
only parses protobuf there (``discovery.OpenAPISchema``), and kubectl and helm
load that document before validating a manifest. This module encodes the JSON
document ``devcluster.apiserver.openapi`` builds into that message, writing the
protobuf wire format by hand for the fields the document uses. The field
numbers are those of gnostic's ``openapiv2/OpenAPIv2.proto``; vendor extensions
are ``NamedAny`` with the value as YAML text (JSON is YAML), as gnostic stores
them. Pure and stateless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# Field numbers of the messages used (gnostic openapiv2/OpenAPIv2.proto).
_DOC_SWAGGER, _DOC_INFO, _DOC_PATHS, _DOC_DEFINITIONS = 1, 2, 8, 9
_INFO_TITLE, _INFO_VERSION = 1, 2
_PATHS_PATH = 2
_PATH_ITEM = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}
_PATH_PARAMETERS, _PATH_EXTENSIONS = 9, 10
_OP = {"operationId": 5, "produces": 6, "consumes": 7}
_OP_PARAMETERS, _OP_RESPONSES, _OP_EXTENSIONS = 8, 9, 13
_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4}
_SCHEMA_REQUIRED, _SCHEMA_ENUM, _SCHEMA_ADDITIONAL = 19, 20, 21
_SCHEMA_TYPE, _SCHEMA_ITEMS, _SCHEMA_ALL_OF, _SCHEMA_PROPERTIES = 22, 23, 24, 25
_SCHEMA_EXTENSIONS = 31


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """Encode a length-delimited field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _field(number, text.encode()) if text else b""


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _any(value: Any) -> bytes:
    """Encode an ``Any`` message holding ``value`` as YAML (field 2)."""
    return _string(2, json.dumps(value, separators=(",", ":")))


def _extensions(number: int, node: Mapping[str, Any]) -> bytes:
    out = b""
    for key, value in node.items():
        if key.startswith("x-"):
            named = _string(1, key) + _field(2, _any(value))
            out += _field(number, named)
    return out


def encode_schema(schema: Mapping[str, Any]) -> bytes:
    """Encode one Swagger 2.0 schema as an ``openapi.v2.Schema`` message."""
    out = b""
    for key, number in _SCHEMA_STRINGS.items():
        if isinstance(schema.get(key), str):
            out += _string(number, schema[key])
    for name in schema.get("required") or []:
        out += _string(_SCHEMA_REQUIRED, str(name))
    for value in schema.get("enum") or []:
        out += _field(_SCHEMA_ENUM, _any(value))
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        out += _field(_SCHEMA_ADDITIONAL, _field(1, encode_schema(additional)))
    elif isinstance(additional, bool):
        out += _field(_SCHEMA_ADDITIONAL, _varint(2 << 3) + _varint(int(additional)))
    kind = schema.get("type")
    if kind:
        kinds = kind if isinstance(kind, list) else [kind]
        out += _field(_SCHEMA_TYPE, b"".join(_string(1, str(k)) for k in kinds))
    items = schema.get("items")
    if isinstance(items, Mapping):
        out += _field(_SCHEMA_ITEMS, _field(1, encode_schema(items)))
    for part in schema.get("allOf") or []:
        out += _field(_SCHEMA_ALL_OF, encode_schema(part))
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        out += _field(_SCHEMA_PROPERTIES, _named_schemas(1, properties))
    return out + _extensions(_SCHEMA_EXTENSIONS, schema)


def _named_schemas(number: int, schemas: Mapping[str, Any]) -> bytes:
    return b"".join(
        _field(number, _string(1, name) + _field(2, encode_schema(schema)))
        for name, schema in schemas.items()
    )


def _parameter(param: Mapping[str, Any]) -> bytes:
    """Encode a ``ParametersItem`` (body, query or path parameter)."""
    if param.get("in") == "body":
        body = (
            _string(2, param["name"])
            + _string(3, "body")
            + _bool(4, bool(param.get("required")))
            + _field(5, encode_schema(param.get("schema") or {}))
        )
        parameter = _field(1, body)
    else:
        where = str(param.get("in"))
        sub = (
            _bool(1, bool(param.get("required")))
            + _string(2, where)
            + _string(4, str(param.get("name")))
        )
        # QueryParameterSubSchema: type 6, uniqueItems 20;
        # PathParameterSubSchema: type 5, uniqueItems 19.
        if where == "query":
            sub += _string(6, str(param.get("type", "string")))
            sub += _bool(20, bool(param.get("uniqueItems")))
            non_body = _field(3, sub)
        else:
            sub += _string(5, str(param.get("type", "string")))
            sub += _bool(19, bool(param.get("uniqueItems")))
            non_body = _field(4, sub)
        parameter = _field(2, non_body)
    return _field(1, parameter)


def _parameters(number: int, params: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(_field(number, _parameter(p)) for p in params)


def _responses(responses: Mapping[str, Any]) -> bytes:
    out = b""
    for code, response in responses.items():
        body = _string(1, str(response.get("description", "")))
        if "schema" in response:
            body += _field(2, _field(1, encode_schema(response["schema"])))
        named = _string(1, code) + _field(2, _field(1, body))
        out += _field(1, named)
    return out


def _operation(op: Mapping[str, Any]) -> bytes:
    out = _string(_OP["operationId"], str(op.get("operationId", "")))
    for key in ("produces", "consumes"):
        for media in op.get(key) or []:
            out += _string(_OP[key], media)
    out += _parameters(_OP_PARAMETERS, op.get("parameters") or [])
    out += _field(_OP_RESPONSES, _responses(op.get("responses") or {}))
    return out + _extensions(_OP_EXTENSIONS, op)


def _path_item(item: Mapping[str, Any]) -> bytes:
    out = b""
    for method, number in _PATH_ITEM.items():
        if method in item:
            out += _field(number, _operation(item[method]))
    out += _parameters(_PATH_PARAMETERS, item.get("parameters") or [])
    return out + _extensions(_PATH_EXTENSIONS, item)


def encode_document(doc: Mapping[str, Any]) -> bytes:
    """Encode a Swagger 2.0 document as an ``openapi.v2.Document`` message."""
    info = doc.get("info") or {}
    out = _string(_DOC_SWAGGER, str(doc.get("swagger", "2.0")))
    out += _field(
        _DOC_INFO,
        _string(_INFO_TITLE, str(info.get("title", "")))
        + _string(_INFO_VERSION, str(info.get("version", ""))),
    )
    paths = b"".join(
        _field(_PATHS_PATH, _string(1, path) + _field(2, _path_item(item)))
        for path, item in (doc.get("paths") or {}).items()
    )
    out += _field(_DOC_PATHS, paths)
    out += _field(_DOC_DEFINITIONS, _named_schemas(1, doc.get("definitions") or {}))
    return out
