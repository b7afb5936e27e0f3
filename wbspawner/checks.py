"""Semantic checks over the merged profiles: what a schema cannot see.

This module owns :func:`check_profiles`, the one entry point of the checks that
need the whole merged view (references between sections, uniqueness, the
catalogue, who sees which default). The pool and size checks are here;
:mod:`wbspawner.section_checks` has those of the Dask, warm, cost, budget, home
and sizing sections. Every problem is located at the file
and JSONPath where the offending item was written.

The checks run even when the schema found problems, so an admin sees everything
at once: every value is read defensively and a value of the wrong type is
skipped (the schema has reported it). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wbspawner import access, section_checks, sizing
from wbspawner.check_context import (
    PROFILES,
    Context,
    as_dict,
    as_int,
    as_list,
    in_region,
    make_context,
    strings,
)
from wbspawner.errors import Problem
from wbspawner.merge import Item, Merged
from wbspawner.model import LABEL_PREFIX, Catalog, InstanceType
from wbspawner.schema_problems import did_you_mean

_RESERVED_LABEL_SUFFIXES = ("kubernetes.io", "k8s.io")


def check_profiles(merged: Merged, catalog: Catalog) -> list[Problem]:
    """Run every semantic check over the merged profiles.

    Args:
        merged: the merged profiles (possibly with schema problems).
        catalog: the instance catalogue.

    Returns:
        Every problem found.
    """
    ctx = make_context(merged, catalog)
    problems: list[Problem] = []
    for check in (
        _check_required,
        _check_pools,
        _check_sizes,
        _check_default_size,
        _check_images_visible,
        *section_checks.CHECKS,
    ):
        problems.extend(check(ctx))
    return problems


def _check_required(ctx: Context) -> Iterator[Problem]:
    if not ctx.merged.pools:
        yield Problem(PROFILES, "$.pools", "no pools are defined in any file")
    if not ctx.merged.sizes:
        yield Problem(PROFILES, "$.sizes", "no sizes are defined in any file")


def _check_pools(ctx: Context) -> Iterator[Problem]:
    for info in ctx.pools.values():
        item, raw = info.item, as_dict(info.item.value)
        known: list[InstanceType] = []
        for i, type_name in strings(raw.get("instance_types")):
            t = ctx.catalog.types.get(type_name)
            if t is None:
                hint = did_you_mean(type_name, ctx.catalog.types)
                yield item.problem(
                    f"unknown instance type '{type_name}'{hint}: not in the "
                    f"catalogue ({ctx.catalog.region}, {ctx.catalog.date})",
                    "instance_types",
                    i,
                )
            else:
                known.append(t)
        mismatch = sizing.shape_mismatch(known)
        if mismatch:
            yield item.problem(
                f"{mismatch}; a pool's types must have the same vCPU, memory, "
                "GPUs and architecture",
                "instance_types",
            )
        for i, zone in strings(raw.get("zones")):
            if not in_region(zone, ctx.region):
                yield item.problem(
                    f"zone '{zone}' is not in region {ctx.region} (cost.region)",
                    "zones",
                    i,
                )
        low, high = as_int(raw.get("min_nodes")), as_int(raw.get("max_nodes", 10))
        if low is not None and high is not None and low > high:
            yield item.problem(
                f"min_nodes ({low}) is greater than max_nodes ({high})", "min_nodes"
            )
        yield from _check_labels(item, as_dict(raw.get("labels")))
        if info.request is not None and (
            info.request.memory_mib <= 0 or info.request.cpu_m <= 0
        ):
            yield item.problem(_no_room(ctx, known), "instance_types")


def _no_room(ctx: Context, types: Sequence[InstanceType]) -> str:
    settings = ctx.settings
    t = min(types, key=lambda t: sizing.node_request(t, settings).memory_mib)
    alloc = sizing.allocatable(t, settings)
    gpu = t.gpu_count > 0
    ds_mem = settings.daemonset_memory_mib + (
        settings.gpu_daemonset_memory_mib if gpu else 0
    )
    ds_cpu = settings.daemonset_cpu_m + (settings.gpu_daemonset_cpu_m if gpu else 0)
    return (
        f"a node of {t.name} leaves no room for a server: allocatable "
        f"{alloc.memory_mib} MiB and {alloc.cpu_m}m CPU, minus DaemonSets "
        f"{ds_mem} MiB and {ds_cpu}m CPU (sizing), is not positive; "
        "check the sizing section or use a larger type"
    )


def _check_labels(item: Item, labels: dict[str, Any]) -> Iterator[Problem]:
    for key in labels:
        prefix, _, _ = str(key).rpartition("/")
        if prefix == LABEL_PREFIX:
            yield item.problem(
                f"label '{key}' is reserved: wbspawner sets the {LABEL_PREFIX}/ "
                "labels itself",
                "labels",
                key,
            )
        elif prefix.endswith(_RESERVED_LABEL_SUFFIXES):
            yield item.problem(
                f"label '{key}' is reserved for Kubernetes (the kubelet may not "
                "set it)",
                "labels",
                key,
            )


def _check_sizes(ctx: Context) -> Iterator[Problem]:
    first: dict[str, Item] = {}
    for item in ctx.merged.sizes:
        raw = as_dict(item.value)
        slug = raw.get("slug")
        if isinstance(slug, str):
            if slug in first:
                other = first[slug]
                yield item.problem(
                    f"duplicate size slug '{slug}' (also at {other.file}: "
                    f"{other.path})",
                    "slug",
                )
            else:
                first[slug] = item
        yield from ctx.pool_ref(item, raw.get("pool"), "user", "pool")
        yield from ctx.unknown_groups(
            item, strings(raw.get("allowed_groups")), "allowed_groups"
        )
        by_group = as_dict(raw.get("home_size_by_group"))
        yield from ctx.unknown_groups(
            item, ((g, g) for g in by_group), "home_size_by_group"
        )
        yield from _check_images(ctx, item, as_list(raw.get("images")))


def _check_images(ctx: Context, item: Item, images: list[Any]) -> Iterator[Problem]:
    slugs: dict[str, int] = {}
    default: int | None = None
    for i, image in enumerate(images):
        raw = as_dict(image)
        slug = raw.get("slug")
        if isinstance(slug, str):
            if slug in slugs:
                yield item.problem(
                    f"duplicate image slug '{slug}' in this size (also at "
                    f"{item.at('images', slugs[slug])})",
                    "images",
                    i,
                    "slug",
                )
            else:
                slugs[slug] = i
        if raw.get("default") is True:
            if default is not None:
                yield item.problem(
                    f"second default image; {item.at('images', default)} is "
                    "already the default (mark at most one)",
                    "images",
                    i,
                    "default",
                )
            else:
                default = i
        yield from ctx.unknown_groups(
            item, strings(raw.get("allowed_groups")), "images", i, "allowed_groups"
        )


def _audience(groups: Iterable[str]) -> str:
    names = sorted(groups)
    return f"members of {', '.join(names)}" if names else "users in no group"


def _user_audiences(ctx: Context) -> list[frozenset[str]]:
    """Minimal group sets of users who may log in without being admins."""
    if not ctx.user_groups:
        return [frozenset()]
    return [frozenset({g}) for g in ctx.user_groups if g not in ctx.admin_groups]


def _check_default_size(ctx: Context) -> Iterator[Problem]:
    """Every user-visible list of sizes must hold exactly one default.

    Admins see every size, so their list allows exactly one default in the whole
    set; every other list is a subset of it, so it then has at most one, and it
    has one when the default size is visible to it. Visibility only grows with
    more groups, so checking the smallest audiences (one user group each, or no
    group when everyone may log in) covers every combination of groups.
    """
    sizes = [(item, as_dict(item.value)) for item in ctx.merged.sizes]
    defaults = [(item, raw) for item, raw in sizes if raw.get("default") is True]
    unclear = any(not isinstance(raw.get("default", False), bool) for _, raw in sizes)
    if not defaults:
        if sizes and not unclear:  # a non-boolean default is a schema problem
            yield sizes[0][0].problem(
                "no size is marked 'default: true'; every user must see exactly "
                "one default size (admins see every size, so mark exactly one)"
            )
        return
    first = defaults[0][0]
    for item, _ in defaults[1:]:
        yield item.problem(
            f"second default size: {first.file}: {first.path} is already the "
            "default; admins see every size, so exactly one may be default",
            "default",
        )
    if len(defaults) == 1:
        yield from _check_default_visible(ctx, sizes, defaults[0])


def _check_default_visible(
    ctx: Context,
    sizes: Sequence[tuple[Item, dict[str, Any]]],
    default: tuple[Item, dict[str, Any]],
) -> Iterator[Problem]:
    item, raw = default

    def groups_of(size: dict[str, Any]) -> list[str]:
        return [g for _, g in strings(size.get("allowed_groups"))]

    for audience in _user_audiences(ctx):
        if access.allowed(groups_of(raw), audience, False):
            continue
        visible = [
            str(r.get("slug"))
            for _, r in sizes
            if access.allowed(groups_of(r), audience, False)
        ]
        what = (
            f"they see {', '.join(visible)} but no default"
            if visible
            else "they may log in but may use no size"
        )
        yield item.problem(
            f"{_audience(audience)} do not see the default size "
            f"'{raw.get('slug')}': {what}; allow the default size for them",
            "allowed_groups",
        )


def _check_images_visible(ctx: Context) -> Iterator[Problem]:
    for item in ctx.merged.sizes:
        raw = as_dict(item.value)
        images = [as_dict(i) for i in as_list(raw.get("images"))]
        if not images:
            continue
        allowed = [g for _, g in strings(raw.get("allowed_groups"))]
        audiences = (
            [frozenset({g}) for g in allowed if g in ctx.groups]
            if allowed
            else _user_audiences(ctx)
        )
        for audience in audiences:
            if audience & ctx.admin_groups:
                continue
            if not any(
                access.allowed(
                    [g for _, g in strings(i.get("allowed_groups"))], audience, False
                )
                for i in images
            ):
                yield item.problem(
                    f"{_audience(audience)} may use size '{raw.get('slug')}' but "
                    "none of its images (each image's allowed_groups excludes them)",
                    "images",
                )
