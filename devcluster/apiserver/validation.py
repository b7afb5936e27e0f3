"""Object validation on every write: schema (strict), names, labels, quantities.

Structure is checked against the Kubernetes 1.33 JSON schemas shipped with
``kubernetes-validate`` (strict: unknown fields are errors). The schemas are
loaded once per process and the compiled validators are cached per kind,
because loading them costs about a second. On top of that come the checks the
schemas cannot express and the apiserver makes: DNS-1123 / DNS-1035 names,
label syntax, quantity syntax and a few pod rules. Any failure is a 422
``Invalid`` with one cause per problem, worded like the apiserver's.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources as importlib_resources
from typing import Any

import jsonschema
import referencing

from devcluster.apiserver.resources import Resource
from devcluster.errors import bad_request, invalid

SCHEMA_VERSION = "1.33.0"

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_NUMBER = r"(\d+(\.\d*)?|\.\d+)"
_QUANTITY = rf"^[+-]?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?{_NUMBER}))?$"

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character "
    "(e.g. 'example.com', regex used for validation is "
    f"'{_DNS1123_SUBDOMAIN}')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
    "or '-', and must start and end with an alphanumeric character (e.g. 'my-name', "
    f"or '123-abc', regex used for validation is '{_DNS1123_LABEL}')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character "
    f"(e.g. 'my-name', or 'abc-123', regex used for validation is '{_DNS1035_LABEL}')"
)
_QUANTITY_MSG = "must match the regex " + _QUANTITY.strip("^$")

Cause = dict[str, str]


def _schema_dir() -> Any:
    root = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"
    return root / f"v{SCHEMA_VERSION}-local-strict"


@functools.lru_cache(maxsize=1)
def _definitions_document() -> dict[str, Any]:
    return dict(json.loads((_schema_dir() / "_definitions.json").read_text()))


def definitions() -> Mapping[str, Any]:
    """Return the named JSON schemas every kind's schema refers to (``$defs``).

    The same definitions back the OpenAPI documents and server-side apply's
    list types. Shared and cached: never mutate what this returns.
    """
    defs: Mapping[str, Any] = _definitions_document()["$defs"]
    return defs


@functools.lru_cache(maxsize=1)
def _registry() -> referencing.Registry:
    resource = referencing.Resource.from_contents(
        _definitions_document(),
        default_specification=referencing.jsonschema.DRAFT202012,
    )
    return resource @ referencing.Registry()


@functools.lru_cache(maxsize=64)
def schema_validator(kind: str, api_version: str) -> jsonschema.Validator | None:
    """Return the cached strict schema validator of a kind, or None if unknown."""
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_dir() / f"{kind.lower()}-{group}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.Draft202012Validator
    return cls(schema, registry=_registry())


_CUSTOM_VALIDATORS: dict[tuple[str, str], jsonschema.Validator] = {}
"""Validators of custom resources by (kind, apiVersion), from their CRDs."""


def set_custom_schema(
    kind: str, api_version: str, schema: Mapping[str, Any] | None
) -> None:
    """Validate ``kind`` of ``api_version`` with a CRD's ``openAPIV3Schema``.

    The apiserver validates custom resources with the served version's
    ``openAPIV3Schema`` (types, enums, required fields, patterns); unknown
    fields are not errors there (they are pruned, or kept under
    ``x-kubernetes-preserve-unknown-fields``), so this adds no strictness.
    ``None`` forgets the schema (the definition is gone).
    """
    if schema is None:
        _CUSTOM_VALIDATORS.pop((kind, api_version), None)
        return
    cls = jsonschema.validators.Draft4Validator
    _CUSTOM_VALIDATORS[(kind, api_version)] = cls(dict(schema))


def warm_up() -> None:
    """Load the schemas of every served kind now (takes about a second)."""
    from devcluster.apiserver.resources import RESOURCES

    for res in RESOURCES.values():
        schema_validator(res.kind, res.api_version)


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(
        ".[", "["
    )


Unknown = tuple[tuple[Any, ...], tuple[str, ...], Cause]
"""An object with unknown fields: its path, the unknown names, the 422 cause."""


def _schema_causes(
    obj: Mapping[str, Any], res: Resource
) -> tuple[list[Cause], list[Unknown]]:
    """Return the schema problems and, apart, the objects with unknown fields."""
    validator = _CUSTOM_VALIDATORS.get((res.kind, res.api_version)) or schema_validator(
        res.kind, res.api_version
    )
    if validator is None:
        return [], []
    causes: list[Cause] = []
    unknown: list[Unknown] = []
    for err in validator.iter_errors(obj):
        cause = {
            "reason": "FieldValueInvalid",
            "message": err.message,
            "field": _dotted(err.absolute_path),
        }
        if (
            err.validator == "additionalProperties"
            and err.validator_value is False
            and isinstance(err.instance, dict)
        ):
            schema = err.schema if isinstance(err.schema, Mapping) else {}
            known = schema.get("properties") or {}
            names = tuple(str(k) for k in err.instance if k not in known)
            unknown.append((tuple(err.absolute_path), names, cause))
        else:
            causes.append(cause)
    return causes, unknown


def _prune(obj: dict[str, Any], unknown: list[Unknown]) -> None:
    """Drop unknown fields in place, as the apiserver's decoder does."""
    for path, names, _ in unknown:
        node: Any = obj
        for part in path:
            node = node[part]
        for name in names:
            node.pop(name, None)


def _name_causes(res: Resource, name: str) -> Iterator[Cause]:
    if res.plural == "namespaces":
        pattern, message, limit = _DNS1123_LABEL, _LABEL_MSG, 63
    elif res.plural == "services":
        pattern, message, limit = _DNS1035_LABEL, _DNS1035_MSG, 63
    else:
        pattern, message, limit = _DNS1123_SUBDOMAIN, _SUBDOMAIN_MSG, 253
    yield from _check_name("metadata.name", name, pattern, message, limit)


def _check_name(
    field: str, value: str, pattern: str, message: str, limit: int
) -> Iterator[Cause]:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        yield _bad(field, value, message)
    elif len(value) > limit:
        yield _bad(field, value, f"must be no more than {limit} characters")


def _bad(field: str, value: Any, message: str) -> Cause:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {json.dumps(value)}: {message}",
        "field": field,
    }


def _qualified_name_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.fullmatch(_DNS1123_SUBDOMAIN, prefix)):
        return False
    return len(name) <= 63 and bool(re.fullmatch(_QUALIFIED, name))


def _meta_causes(meta: Mapping[str, Any]) -> Iterator[Cause]:
    for key, value in (meta.get("labels") or {}).items():
        if not _qualified_name_ok(str(key)):
            yield _bad(
                "metadata.labels",
                key,
                "name part must consist of alphanumeric characters, '-', '_' or "
                "'.', and must start and end with an alphanumeric character",
            )
        if (
            not isinstance(value, str)
            or len(value) > 63
            or not re.fullmatch(_LABEL_VALUE, value)
        ):
            yield _bad(
                "metadata.labels",
                value,
                "a valid label must be an empty string or consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character",
            )
    for key in meta.get("annotations") or {}:
        if not _qualified_name_ok(str(key)):
            yield _bad(
                "metadata.annotations",
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.'",
            )


def _quantity_causes(field: str, values: Any) -> Iterator[Cause]:
    if not isinstance(values, Mapping):
        return
    for key, value in values.items():
        if not isinstance(value, int | float) and not re.fullmatch(
            _QUANTITY, str(value)
        ):
            yield _bad(f"{field}[{key}]", value, _QUANTITY_MSG)


def _container_causes(
    path: str, container: Mapping[str, Any], volumes: set[str]
) -> Iterator[Cause]:
    yield from _check_name(
        f"{path}.name", container.get("name", ""), _DNS1123_LABEL, _LABEL_MSG, 63
    )
    res = container.get("resources") or {}
    yield from _quantity_causes(f"{path}.resources.requests", res.get("requests"))
    yield from _quantity_causes(f"{path}.resources.limits", res.get("limits"))
    for n, port in enumerate(container.get("ports") or []):
        pname = port.get("name")
        if pname is not None and (
            len(pname) > 15
            or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", pname)
            or not re.search("[a-z]", pname)
        ):
            yield _bad(
                f"{path}.ports[{n}].name",
                pname,
                "must contain only alpha-numeric characters (a-z, 0-9), and "
                "hyphens (-) and be no more than 15 characters",
            )
    for n, mount in enumerate(container.get("volumeMounts") or []):
        if mount.get("name") not in volumes:
            yield {
                "reason": "FieldValueNotFound",
                "message": f"Not found: {json.dumps(mount.get('name'))}",
                "field": f"{path}.volumeMounts[{n}].name",
            }


def _pod_causes(spec: Mapping[str, Any]) -> Iterator[Cause]:
    volumes: set[str] = set()
    for n, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name", "")
        yield from _check_name(
            f"spec.volumes[{n}].name", name, _DNS1123_LABEL, _LABEL_MSG, 63
        )
        if name in volumes:
            yield {
                "reason": "FieldValueDuplicate",
                "message": f"Duplicate value: {json.dumps(name)}",
                "field": f"spec.volumes[{n}].name",
            }
        volumes.add(name)
    seen: set[str] = set()
    for field in ("initContainers", "containers"):
        for n, container in enumerate(spec.get(field) or []):
            yield from _container_causes(f"spec.{field}[{n}]", container, volumes)
            if container.get("name") in seen:
                yield {
                    "reason": "FieldValueDuplicate",
                    "message": f"Duplicate value: {json.dumps(container.get('name'))}",
                    "field": f"spec.{field}[{n}].name",
                }
            seen.add(container.get("name"))
    if not spec.get("containers"):
        yield {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.containers",
        }


def semantic_causes(res: Resource, obj: Mapping[str, Any]) -> list[Cause]:
    """Return the apiserver-style problems the JSON schema cannot express."""
    meta = obj.get("metadata") or {}
    causes = list(_name_causes(res, str(meta.get("name", ""))))
    causes.extend(_meta_causes(meta))
    spec = obj.get("spec") or {}
    if res.plural == "pods":
        causes.extend(_pod_causes(spec))
    elif res.plural == "persistentvolumeclaims":
        causes.extend(
            _quantity_causes(
                "spec.resources.requests", (spec.get("resources") or {}).get("requests")
            )
        )
    elif res.plural == "persistentvolumes":
        causes.extend(_quantity_causes("spec.capacity", spec.get("capacity")))
    elif res.plural == "nodes":
        status = obj.get("status") or {}
        causes.extend(_quantity_causes("status.capacity", status.get("capacity")))
        causes.extend(_quantity_causes("status.allocatable", status.get("allocatable")))
    return causes


FIELD_VALIDATION = ("", "Ignore", "Warn", "Strict")
"""Values of the ``fieldValidation`` parameter; "" is devcluster's default."""


def validate(res: Resource, obj: dict[str, Any], field_validation: str = "") -> None:
    """Check an object about to be stored (the Store's ``validator`` hook).

    Unknown fields depend on ``field_validation``, the request's
    ``fieldValidation`` parameter: ``Strict`` rejects them with the
    apiserver's strict-decoding 400 (what kubectl sends by default),
    ``Ignore`` and ``Warn`` drop them from ``obj`` as the apiserver's decoder
    does (devcluster sends no Warning header). Without the parameter
    devcluster stays stricter than the apiserver (which then warns): an
    unknown field is one more 422 cause, so a typo in the product fails.

    Raises:
        ApiError: 422 Invalid with a cause per problem; 400 for unknown
            fields under ``Strict``.
    """
    if field_validation not in FIELD_VALIDATION:
        raise bad_request(
            f"fieldValidation {json.dumps(field_validation)} is invalid: must be "
            "one of Ignore, Warn, Strict"
        )
    causes, unknown = _schema_causes(obj, res)
    if unknown and field_validation in ("Ignore", "Warn"):
        _prune(obj, unknown)
    elif unknown and field_validation == "Strict":
        fields = ", ".join(
            f"unknown field {json.dumps(_dotted((*path, name)))}"
            for path, names, _ in unknown
            for name in names
        )
        raise bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a '
            f"{res.kind}: strict decoding error: {fields}"
        )
    elif unknown:
        causes += [cause for _, _, cause in unknown]
    causes += semantic_causes(res, obj)
    if causes:
        name = str((obj.get("metadata") or {}).get("name", ""))
        raise invalid(res.kind, name, causes, res.group)
