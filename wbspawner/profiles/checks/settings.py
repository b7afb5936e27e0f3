"""Checks of the ``cost``, ``budgets``, ``homes``, ``culling`` and ``sizing`` sections.

This module owns the checks of the small settings sections: each base cost item has
a price, each budget names a known group once and known free sizes, the default home
zone is in the region and of some pool, the culler's per-size timeouts name known
sizes and every idle timeout is longer than the warning before it, and measured
node capacities name known types and stay below nominal memory.

Pure: every value is read defensively (the schema reports wrong types).
"""

from __future__ import annotations

from collections.abc import Iterator

from wbspawner.errors import Problem
from wbspawner.profiles.checks.context import (
    Context,
    as_dict,
    as_int,
    as_list,
    in_region,
    strings,
)
from wbspawner.profiles.merge import Item


def check_cost(ctx: Context) -> Iterator[Problem]:
    """Report base cost items without a price."""
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


def check_budgets(ctx: Context) -> Iterator[Problem]:
    """Report budgets of unknown groups, second budgets and unknown free sizes."""
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


def check_homes(ctx: Context) -> Iterator[Problem]:
    """Report a default home zone outside the region or of no pool."""
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


def check_culling(ctx: Context) -> Iterator[Problem]:
    """Report timeouts of unknown sizes and warnings not shorter than a timeout."""
    item = ctx.merged.section("culling")
    if item is None:
        return
    raw = as_dict(item.value)
    warn = as_int(raw.get("warn_before_s", 600))
    default = as_int(raw.get("idle_timeout_s", 3600))
    if warn is not None and default is not None and warn >= default:
        yield item.problem(
            f"warn_before_s ({warn}) must be less than idle_timeout_s ({default}): "
            "the warning comes before the stop",
            "warn_before_s",
        )
    slugs = {as_dict(s.value).get("slug") for s in ctx.merged.sizes}
    for slug, entry in as_dict(raw.get("sizes")).items():
        if slug not in slugs:
            yield item.problem(f"unknown size '{slug}'", "sizes", slug)
        timeout = as_int(as_dict(entry).get("idle_timeout_s"))
        if warn is not None and timeout is not None and warn >= timeout:
            yield item.problem(
                f"idle_timeout_s ({timeout}) must be more than warn_before_s "
                f"({warn}): the warning comes before the stop",
                "sizes",
                slug,
                "idle_timeout_s",
            )


def check_measured(ctx: Context) -> Iterator[Problem]:
    """Report measured capacities of unknown types or above nominal memory."""
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
