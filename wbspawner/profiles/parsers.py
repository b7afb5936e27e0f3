"""Parsers of profile values that the checks and the model builder share.

This module owns the meaning of the few YAML values that are more than a schema
type: weekly time windows (days such as ``mon-fri`` or ``weekends``, times
``"HH:MM"`` up to ``24:00``) and the ``sizing`` section (node overheads and
measured node capacities, applied over the catalogue). Every function accepts any
parsed YAML and raises nothing but ``ValueError``, so the checks can run them on
input the schema rejected.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from wbspawner.model import Catalog, InstanceType, SizingSettings

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day abbreviations in ISO order (Monday is day 1)."""
_FULL_DAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_DAY_NUMBERS = {
    name: number
    for names in (DAY_NAMES, _FULL_DAY_NAMES)
    for number, name in enumerate(names, start=1)
}
_DAY_ALIASES = {
    "daily": frozenset(range(1, 8)),
    "weekdays": frozenset(range(1, 6)),
    "weekends": frozenset({6, 7}),
}
_TIME = re.compile(r"^(\d\d):(\d\d)$")
_SIZING_INTS = (
    "daemonset_cpu_m",
    "daemonset_memory_mib",
    "gpu_daemonset_cpu_m",
    "gpu_daemonset_memory_mib",
    "eviction_hard_mib",
)


def parse_time(value: object) -> int:
    """Parse ``"HH:MM"`` (``00:00`` … ``24:00``) into minutes after midnight.

    Args:
        value: the YAML value.

    Returns:
        Minutes, 0 … 1440.

    Raises:
        ValueError: when the value is not such a time.
    """
    match = _TIME.match(value) if isinstance(value, str) else None
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if (hours < 24 and minutes < 60) or (hours == 24 and minutes == 0):
            return hours * 60 + minutes
    raise ValueError(f"{value!r} is not a time 'HH:MM' between 00:00 and 24:00")


def _day(name: str) -> int:
    key = name.strip().lower()
    if key in _DAY_NUMBERS:
        return _DAY_NUMBERS[key]
    raise ValueError(
        f"unknown day '{name}' (use mon, tue, wed, thu, fri, sat, sun, "
        "a range such as mon-fri, daily, weekdays or weekends)"
    )


def parse_days(value: object) -> frozenset[int]:
    """Parse days: ``"mon"``, ``"mon-fri"``, ``"weekdays"`` or a list of those.

    A range may wrap (``fri-mon`` is Friday to Monday).

    Args:
        value: the YAML value.

    Returns:
        ISO weekdays, 1 (Monday) … 7 (Sunday).

    Raises:
        ValueError: when a part is not a day, range or alias.
    """
    parts = value if isinstance(value, list) else [value]
    if not parts:
        raise ValueError("no days given")
    days: set[int] = set()
    for part in parts:
        if not isinstance(part, str) or not part.strip():
            raise ValueError(f"{part!r} is not a day")
        key = part.strip().lower()
        if key in _DAY_ALIASES:
            days |= _DAY_ALIASES[key]
        elif "-" in key:
            first, _, last = key.partition("-")
            start, end = _day(first), _day(last)
            span = (end - start) % 7
            days |= {(start - 1 + i) % 7 + 1 for i in range(span + 1)}
        else:
            days.add(_day(key))
    return frozenset(days)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def sizing_settings(raw: object) -> SizingSettings:
    """Return the sizing settings of a ``sizing`` section, ignoring invalid values.

    Args:
        raw: the section as parsed (any value; wrong types are skipped, the schema
            reports them).

    Returns:
        The settings, with defaults for absent or invalid keys.
    """
    data = raw if isinstance(raw, dict) else {}
    kwargs: dict[str, Any] = {
        key: data[key]
        for key in _SIZING_INTS
        if _is_int(data.get(key)) and data[key] >= 0
    }
    if _is_int(data.get("max_pods")) and data["max_pods"] >= 1:
        kwargs["max_pods"] = data["max_pods"]
    measured = measured_capacities(data)
    if measured:
        kwargs["measured_capacity_mib"] = MappingProxyType(measured)
    return SizingSettings(**kwargs)


def measured_capacities(raw: object) -> dict[str, int]:
    """Return the valid ``measured_capacity_mib`` overrides of a ``sizing`` section.

    Args:
        raw: the section as parsed.

    Returns:
        MiB by instance type name (positive whole numbers only).
    """
    data = raw.get("measured_capacity_mib") if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if _is_int(v) and v > 0}


def with_measured(catalog: Catalog, measured: Mapping[str, int]) -> Catalog:
    """Return the catalogue with measured node capacities applied.

    Args:
        catalog: the shipped (or refreshed) catalogue.
        measured: kernel-visible memory in MiB by type; unknown types are ignored.

    Returns:
        A new catalogue (the input is unchanged).
    """
    if not measured:
        return catalog
    types: dict[str, InstanceType] = dict(catalog.types)
    for name, mib in measured.items():
        if name in types:
            types[name] = dataclasses.replace(types[name], measured_capacity_mib=mib)
    return dataclasses.replace(catalog, types=MappingProxyType(types))
