"""Checks of the sizes and images: slugs, references, and who sees the defaults.

This module owns the checks of the sizes and their images: unique slugs, known pools
and groups, at most one default image per size, and who sees which default: every
user who may log in sees exactly one default size and at least one image of each
size they may use.

Pure: every value is read defensively (the schema reports wrong types).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wbspawner.errors import Problem
from wbspawner.profiles import access
from wbspawner.profiles.checks.context import (
    Context,
    as_dict,
    as_list,
    strings,
)
from wbspawner.profiles.merge import Item


def check_sizes(ctx: Context) -> Iterator[Problem]:
    """Report duplicate size slugs, unknown pools and groups, and image problems."""
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


def check_default_size(ctx: Context) -> Iterator[Problem]:
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


def check_images_visible(ctx: Context) -> Iterator[Problem]:
    """Report sizes some audience may use without any image it may pick."""
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
