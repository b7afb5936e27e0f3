"""Checks of the ``warm`` section: time zone, windows, pools and zones.

This module owns the checks of the warm schedules: a known time zone, valid days and
times in each window, a pool that exists, zones of that pool, and no more nodes per
zone than the pool may have. The time zone check reads the installed tz database.

The time zone check reads the installed tz database.

Pure: every value is read defensively (the schema reports wrong types).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from typing import Any

from wbspawner.errors import Problem
from wbspawner.profiles.checks.context import (
    Context,
    as_dict,
    as_int,
    as_list,
    strings,
)
from wbspawner.profiles.merge import Item
from wbspawner.profiles.parsers import parse_days, parse_time


def check_warm(ctx: Context) -> Iterator[Problem]:
    """Report warm schedules with a bad time zone, window, pool or zone."""
    item = ctx.merged.section("warm")
    if item is None:
        return
    raw = as_dict(item.value)
    tz = raw.get("timezone")
    if isinstance(tz, str) and tz:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            yield item.problem(
                f"unknown time zone '{tz}' (use an IANA name such as "
                "America/New_York or UTC)",
                "timezone",
            )
    names: dict[str, int] = {}
    for i, schedule in enumerate(as_list(raw.get("schedules"))):
        s = as_dict(schedule)
        name = s.get("name")
        if isinstance(name, str):
            if name in names:
                yield item.problem(
                    f"duplicate schedule name '{name}' (also at "
                    f"{item.at('schedules', names[name])})",
                    "schedules",
                    i,
                    "name",
                )
            names.setdefault(name, i)
        yield from ctx.pool_ref(item, s.get("pool"), None, "schedules", i, "pool")
        for j, window in enumerate(as_list(s.get("windows"))):
            yield from _check_window(
                item, as_dict(window), "schedules", i, "windows", j
            )
        yield from _check_schedule_pool(ctx, item, s, i)


def _check_window(item: Item, w: dict[str, Any], *at: str | int) -> Iterator[Problem]:
    if "days" in w and w["days"] != []:  # the schema reports an empty list
        try:
            parse_days(w["days"])
        except ValueError as err:
            yield item.problem(str(err), *at, "days")
    times: dict[str, int] = {}
    for key in ("start", "end"):
        if key in w and isinstance(w[key], str):
            try:
                times[key] = parse_time(w[key])
            except ValueError as err:
                yield item.problem(str(err), *at, key)
    if times.get("start") == 24 * 60:
        yield item.problem("a window cannot start at 24:00", *at, "start")
    if len(times) == 2 and times["start"] == times["end"]:
        yield item.problem(
            f"start and end are both {w['start']}: the window is empty (for a "
            "whole day use start 00:00 and end 24:00)",
            *at,
        )


def _check_schedule_pool(
    ctx: Context, item: Item, s: dict[str, Any], i: int
) -> Iterator[Problem]:
    pool = s.get("pool")
    info = ctx.pools.get(pool) if isinstance(pool, str) else None
    if info is None:
        return
    for j, zone in strings(s.get("zones")):
        if zone not in info.zones:
            yield item.problem(
                f"zone '{zone}' is not a zone of pool '{pool}' "
                f"({', '.join(sorted(info.zones))})",
                "schedules",
                i,
                "zones",
                j,
            )
    nodes = as_int(s.get("nodes_per_zone", 1))
    high = as_int(as_dict(info.item.value).get("max_nodes", 10))
    if nodes is not None and high is not None and nodes > high:
        yield item.problem(
            f"nodes_per_zone {nodes} is more than pool '{pool}' may have per zone "
            f"(max_nodes {high})",
            "schedules",
            i,
            "nodes_per_zone",
        )
