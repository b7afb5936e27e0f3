"""The instance catalogue: EC2 facts and prices, shipped as data.

This module owns reading, checking and writing the catalogue file
(``wbspawner/catalog/catalog.json`` by default) and the rows the ``catalog`` command
shows. Refreshing the catalogue from AWS is :mod:`wbspawner.catalog.refresh`.

Pure apart from :func:`load_catalog`, which reads one file: nothing here reaches
the network, so the hub, the CLI and the tests all read the shipped data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from wbspawner.catalog import sizing
from wbspawner.errors import Problem, ProfileConfigError
from wbspawner.model import Catalog, InstanceType, SizingSettings

PACKAGED_CATALOG = "wbspawner/catalog/catalog.json"
"""How the packaged catalogue is named in messages."""

_REQUIRED_INT = ("vcpu", "memory_mib", "enis", "ipv4_per_eni")
_OPTIONAL_INT = ("gpu_count", "gpu_memory_mib")
_FIELDS = frozenset(
    (*_REQUIRED_INT, *_OPTIONAL_INT)
    + ("price_per_hour", "gpu_kind", "arch", "measured_capacity_mib")
)
_ARCHES = ("x86_64", "arm64")


class CatalogError(ProfileConfigError):
    """The catalogue (or a refresh of it) is invalid; ``problems`` says where."""


# ----------------------------------------------------------------------- parsing


def type_path(name: str, field: str | None = None) -> str:
    """Return the JSONPath of a type entry (or of one of its fields) in a catalogue.

    Args:
        name: the instance type name.
        field: a field of the entry, or ``None`` for the entry itself.

    Returns:
        E.g. ``$.types["r5.large"].vcpu``.
    """
    base = f"$.types[{json.dumps(name)}]"
    return f"{base}.{field}" if field else base


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_numbers(name: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    errs: list[tuple[str, str]] = []
    for f in _REQUIRED_INT:
        if f not in data:
            errs.append((f, "is required"))
        elif not _is_int(data[f]) or data[f] <= 0:
            errs.append((f, f"must be a positive integer, not {data[f]!r}"))
    for f in _OPTIONAL_INT:
        if f in data and (not _is_int(data[f]) or data[f] < 0):
            errs.append((f, f"must be a non-negative integer, not {data[f]!r}"))
    price = data.get("price_per_hour")
    if "price_per_hour" not in data:
        errs.append(("price_per_hour", "is required"))
    elif (
        not isinstance(price, int | float)
        or isinstance(price, bool)
        or not math.isfinite(price)
        or price <= 0
    ):
        errs.append(("price_per_hour", f"must be a positive number, not {price!r}"))
    measured = data.get("measured_capacity_mib")
    if measured is not None and (not _is_int(measured) or measured <= 0):
        errs.append(
            ("measured_capacity_mib", f"must be a positive integer, not {measured!r}")
        )
    elif measured is not None and _is_int(data.get("memory_mib")):
        if measured > data["memory_mib"]:
            errs.append(("measured_capacity_mib", "cannot be larger than memory_mib"))
    return errs


def _check_gpu_and_arch(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    errs: list[tuple[str, str]] = []
    kind = data.get("gpu_kind")
    if kind is not None and (not isinstance(kind, str) or not kind):
        errs.append(("gpu_kind", f"must be a GPU model name or null, not {kind!r}"))
    count = data.get("gpu_count", 0)
    if _is_int(count) and count > 0 and kind is None:
        errs.append(("gpu_kind", "is required when gpu_count is above 0"))
    if _is_int(count) and count == 0 and kind is not None:
        errs.append(("gpu_count", f"must be above 0 for a {kind} GPU type"))
    arch = data.get("arch", "x86_64")
    if arch not in _ARCHES:
        errs.append(("arch", f"must be one of {', '.join(_ARCHES)}, not {arch!r}"))
    return errs


def parse_instance_type(
    name: str, data: object, file: str = PACKAGED_CATALOG
) -> InstanceType:
    """Check one catalogue entry and build its :class:`InstanceType`.

    Args:
        name: the EC2 name (the key in ``types``).
        data: the entry, as read from JSON.
        file: the file name used in problems.

    Returns:
        The instance type.

    Raises:
        CatalogError: listing every problem of the entry.
    """
    if not isinstance(data, Mapping):
        raise CatalogError([Problem(file, type_path(name), "must be an object")])
    errs = [(f, "is not a known field") for f in sorted(set(data) - _FIELDS)]
    errs += _check_numbers(name, data) + _check_gpu_and_arch(data)
    if errs:
        raise CatalogError([Problem(file, type_path(name, f), m) for f, m in errs])
    return InstanceType(
        name=name,
        vcpu=data["vcpu"],
        memory_mib=data["memory_mib"],
        enis=data["enis"],
        ipv4_per_eni=data["ipv4_per_eni"],
        price_per_hour=float(data["price_per_hour"]),
        gpu_count=data.get("gpu_count", 0),
        gpu_kind=data.get("gpu_kind"),
        gpu_memory_mib=data.get("gpu_memory_mib", 0),
        arch=data.get("arch", "x86_64"),
        measured_capacity_mib=data.get("measured_capacity_mib"),
    )


def _header_problems(data: Mapping[str, Any], file: str) -> list[Problem]:
    problems = [
        Problem(file, f"$.{key}", "is not a known field")
        for key in sorted(set(data) - {"region", "source", "date", "types"})
    ]
    for key in ("region", "source", "date"):
        if not isinstance(data.get(key), str) or not data[key]:
            problems.append(Problem(file, f"$.{key}", "must be a non-empty string"))
    if isinstance(data.get("date"), str):
        try:
            date.fromisoformat(data["date"])
        except ValueError:
            problems.append(Problem(file, "$.date", "must be an ISO date YYYY-MM-DD"))
    return problems


def parse_catalog(data: object, file: str = PACKAGED_CATALOG) -> Catalog:
    """Check a catalogue document and build the :class:`Catalog`.

    Args:
        data: the document, as read from JSON.
        file: the file name used in problems.

    Returns:
        The catalogue, its types in file order.

    Raises:
        CatalogError: listing every problem found.
    """
    if not isinstance(data, Mapping):
        raise CatalogError([Problem(file, "$", "must be a JSON object")])
    problems = _header_problems(data, file)
    raw_types = data.get("types")
    types: dict[str, InstanceType] = {}
    if not isinstance(raw_types, Mapping) or not raw_types:
        problems.append(Problem(file, "$.types", "must be a non-empty object"))
        raw_types = {}
    for name, entry in raw_types.items():
        try:
            types[name] = parse_instance_type(name, entry, file)
        except CatalogError as err:
            problems.extend(err.problems)
    if problems:
        raise CatalogError(problems)
    return Catalog(
        region=data["region"],
        source=data["source"],
        date=data["date"],
        types=MappingProxyType(types),
    )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and check a catalogue file.

    Args:
        path: a catalogue JSON file; ``None`` reads the packaged catalogue.

    Returns:
        The catalogue.

    Raises:
        CatalogError: when the file cannot be read, is not JSON or is invalid.
    """
    if path is None:
        file = PACKAGED_CATALOG
        source = resources.files("wbspawner.catalog").joinpath("catalog.json")
    else:
        file = str(path)
        source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise CatalogError([Problem(file, "$", f"cannot read: {err}")]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
        raise CatalogError([Problem(file, "$", msg)]) from None
    return parse_catalog(data, file)


def catalog_to_dict(c: Catalog) -> dict[str, Any]:
    """Return the catalogue as the JSON document :func:`parse_catalog` reads.

    Args:
        c: the catalogue.

    Returns:
        A JSON-ready dict (``json.dumps`` it to write a catalogue file).
    """
    types = {
        name: {
            "vcpu": t.vcpu,
            "memory_mib": t.memory_mib,
            "enis": t.enis,
            "ipv4_per_eni": t.ipv4_per_eni,
            "price_per_hour": t.price_per_hour,
            "gpu_count": t.gpu_count,
            "gpu_kind": t.gpu_kind,
            "gpu_memory_mib": t.gpu_memory_mib,
            "arch": t.arch,
            "measured_capacity_mib": t.measured_capacity_mib,
        }
        for name, t in c.types.items()
    }
    return {"region": c.region, "source": c.source, "date": c.date, "types": types}


def dump_catalog(c: Catalog) -> str:
    """Return the catalogue as JSON text, as the shipped file is written.

    Args:
        c: the catalogue.

    Returns:
        Indented JSON ending in a newline.
    """
    return json.dumps(catalog_to_dict(c), indent=2) + "\n"


def catalog_rows(catalog: Catalog, settings: SizingSettings) -> list[dict[str, Any]]:
    """Return one row per type for the ``catalog`` command (table or JSON).

    Args:
        catalog: the catalogue.
        settings: node overheads used for allocatable and the full-node request.

    Returns:
        Rows in catalogue order with keys ``name, vcpu, memory_gib, gpus, gpu_kind,
        arch, max_pods, capacity_mib, capacity_source (measured|estimated),
        allocatable_mib, request_memory_mib, request_cpu_m, price_per_hour``.
    """
    rows: list[dict[str, Any]] = []
    for t in catalog.types.values():
        alloc = sizing.allocatable(t, settings)
        request = sizing.full_node_request([t], settings)
        rows.append(
            {
                "name": t.name,
                "vcpu": t.vcpu,
                "memory_gib": round(t.memory_mib / 1024, 2),
                "gpus": t.gpu_count,
                "gpu_kind": t.gpu_kind,
                "arch": t.arch,
                "max_pods": sizing.max_pods(t, settings.max_pods),
                "capacity_mib": sizing.capacity_mib(t),
                "capacity_source": "measured"
                if t.measured_capacity_mib is not None
                else "estimated",
                "allocatable_mib": alloc.memory_mib,
                "request_memory_mib": request.memory_mib,
                "request_cpu_m": request.cpu_m,
                "price_per_hour": t.price_per_hour,
            }
        )
    return rows
