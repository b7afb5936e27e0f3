"""Semantic checks of the Dask, warm, cost, budget, home and sizing sections.

This module owns the checks of the single sections and budgets: pool and group
references, Dask worker packing (one worker per GPU at most, a useful share of a
node per worker, a scheduler that fits its pool), warm schedules (time zone,
days, times, zones of the pool), base cost items, budgets and measured node
capacities. :func:`wbspawner.checks.check_profiles` runs them with the pool and
size checks; each takes the shared :class:`~wbspawner.check_context.Context`.

Pure: no I/O (the time zone check reads the installed tz database).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

from wbspawner.check_context import (
    Context,
    as_dict,
    as_int,
    as_list,
    in_region,
    strings,
)
from wbspawner.errors import Problem
from wbspawner.merge import Item
from wbspawner.parsers import parse_days, parse_time

MIN_WORKER_MEMORY_MIB = 512
"""Smallest useful memory share of one Dask worker."""
MIN_WORKER_CPU_M = 100
"""Smallest useful CPU share of one Dask worker."""


def _check_dask(ctx: Context) -> Iterator[Problem]:
    item = ctx.merged.section("dask")
    if item is None:
        return
    raw = as_dict(item.value)
    yield from ctx.pool_ref(item, raw.get("scheduler_pool"), "dask", "scheduler_pool")
    yield from _check_scheduler_fits(ctx, item, raw)
    names: dict[str, int] = {}
    for i, worker in enumerate(as_list(raw.get("worker_sizes"))):
        w = as_dict(worker)
        name = w.get("name")
        if isinstance(name, str):
            if name in names:
                yield item.problem(
                    f"duplicate worker size '{name}' (also at "
                    f"{item.at('worker_sizes', names[name])})",
                    "worker_sizes",
                    i,
                    "name",
                )
            names.setdefault(name, i)
        yield from ctx.pool_ref(item, w.get("pool"), "dask", "worker_sizes", i, "pool")
        yield from ctx.unknown_groups(
            item, strings(w.get("allowed_groups")), "worker_sizes", i, "allowed_groups"
        )
        yield from _check_packing(ctx, item, w, i)
    default = raw.get("default_worker_size")
    if isinstance(default, str) and default not in names:
        yield item.problem(
            f"unknown worker size '{default}'; worker sizes: "
            f"{', '.join(names) or 'none'}",
            "default_worker_size",
        )
    group_limits = as_dict(raw.get("group_limits"))
    yield from ctx.unknown_groups(item, ((g, g) for g in group_limits), "group_limits")


def _check_scheduler_fits(
    ctx: Context, item: Item, raw: dict[str, Any]
) -> Iterator[Problem]:
    pool = raw.get("scheduler_pool")
    info = ctx.pools.get(pool) if isinstance(pool, str) else None
    if info is None or info.request is None:
        return
    cores, gib = raw.get("scheduler_cores", 1.0), raw.get("scheduler_memory_gib", 2.0)
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (cores, gib)
    ):
        return
    request = info.request
    if cores * 1000 > request.cpu_m or gib * 1024 > request.memory_mib:
        yield item.problem(
            f"a scheduler ({cores:g} cores, {gib:g} GiB) does not fit a node of pool "
            f"'{pool}' ({request.cpu_m / 1000:g} cores, "
            f"{request.memory_mib / 1024:.1f} GiB available)",
            "scheduler_pool",
        )


def _check_packing(
    ctx: Context, item: Item, w: dict[str, Any], i: int
) -> Iterator[Problem]:
    pool = w.get("pool")
    per_node = as_int(w.get("workers_per_node", 1))
    info = ctx.pools.get(pool) if isinstance(pool, str) else None
    if info is None or per_node is None or per_node < 1:
        return
    if info.gpu_count and per_node > info.gpu_count:
        yield item.problem(
            f"workers_per_node {per_node} is more than the {info.gpu_count} GPU(s) "
            f"of a node of pool '{pool}'; GPU workers get one GPU each at least",
            "worker_sizes",
            i,
            "workers_per_node",
        )
    elif info.request is not None and info.request.memory_mib > 0:
        memory = info.request.memory_mib // per_node
        cpu = info.request.cpu_m // per_node
        if memory < MIN_WORKER_MEMORY_MIB or cpu < MIN_WORKER_CPU_M:
            yield item.problem(
                f"{per_node} workers per node of pool '{pool}' leave each worker "
                f"only {memory} MiB and {cpu}m CPU; use fewer workers per node",
                "worker_sizes",
                i,
                "workers_per_node",
            )


def _check_warm(ctx: Context) -> Iterator[Problem]:
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


def _check_cost(ctx: Context) -> Iterator[Problem]:
    item = ctx.merged.section("cost")
    if item is None:
        return
    for i, entry in enumerate(as_list(as_dict(item.value).get("base"))):
        e = as_dict(entry)
        if e and "per_hour" not in e and "per_month" not in e:
            yield item.problem(
                f"base item '{e.get('name', '')}' has no price: give per_hour or "
                "per_month",
                "base",
                i,
            )


def _check_budgets(ctx: Context) -> Iterator[Problem]:
    seen: dict[str, Item] = {}
    slugs = {as_dict(s.value).get("slug") for s in ctx.merged.sizes}
    for item in ctx.merged.budgets:
        raw = as_dict(item.value)
        group = raw.get("group")
        if isinstance(group, str):
            yield from ctx.unknown_groups(item, [("group", group)])
            if group in seen:
                other = seen[group]
                yield item.problem(
                    f"group '{group}' already has a budget at {other.file}: "
                    f"{other.path}",
                    "group",
                )
            seen.setdefault(group, item)
        for i, slug in strings(raw.get("free_sizes")):
            if slug not in slugs:
                yield item.problem(f"unknown size '{slug}'", "free_sizes", i)


def _check_homes(ctx: Context) -> Iterator[Problem]:
    item = ctx.merged.section("homes")
    zone = as_dict(item.value).get("default_zone") if item is not None else None
    if item is None or not isinstance(zone, str):
        return
    if not in_region(zone, ctx.region):
        yield item.problem(
            f"zone '{zone}' is not in region {ctx.region} (cost.region)",
            "default_zone",
        )
    elif not any(zone in info.zones for info in ctx.pools.values()):
        yield item.problem(f"no pool has zone '{zone}'", "default_zone")


def _check_measured(ctx: Context) -> Iterator[Problem]:
    item = ctx.merged.section("sizing")
    if item is None:
        return
    measured = as_dict(as_dict(item.value).get("measured_capacity_mib"))
    for name, mib in measured.items():
        t = ctx.catalog.types.get(name)
        if t is None:
            yield item.problem(
                f"unknown instance type '{name}': not in the catalogue",
                "measured_capacity_mib",
                name,
            )
        elif as_int(mib) is not None and mib > t.memory_mib:
            yield item.problem(
                f"{mib} MiB is more than the {t.memory_mib} MiB a {name} has; "
                "a node's kernel-visible memory is always below its nominal memory",
                "measured_capacity_mib",
                name,
            )


CHECKS: tuple[Callable[[Context], Iterator[Problem]], ...] = (
    _check_dask,
    _check_warm,
    _check_cost,
    _check_budgets,
    _check_homes,
    _check_measured,
)
"""The checks of this module, in the order they run."""
