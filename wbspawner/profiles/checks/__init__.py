"""Semantic checks of the merged profiles: what a schema cannot see.

This package owns :func:`check_profiles`, the one entry point of the checks that
need the whole merged view (references between sections, uniqueness, the
catalogue, who sees which default), with one module per part of the profiles:

- :mod:`~wbspawner.profiles.checks.pools`: pools and their instance types;
- :mod:`~wbspawner.profiles.checks.sizes`: sizes, images and who sees the defaults;
- :mod:`~wbspawner.profiles.checks.dask`: the Dask section;
- :mod:`~wbspawner.profiles.checks.warm`: the warm schedules;
- :mod:`~wbspawner.profiles.checks.settings`: cost, budgets, homes, culling and sizing;
- :mod:`~wbspawner.profiles.checks.data`: buckets and shared volumes per group;
- :mod:`~wbspawner.profiles.checks.context`: what every check derives once.

Every problem is located at the file and JSONPath where the offending item was
written. The checks run even when the schema found problems, so an admin sees
everything at once: every value is read defensively and a value of the wrong type
is skipped (the schema has reported it). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from wbspawner.errors import Problem
from wbspawner.model import Catalog, SizingSettings
from wbspawner.profiles.checks import dask, data, pools, settings, sizes, warm
from wbspawner.profiles.checks.context import PROFILES, Context, make_context
from wbspawner.profiles.merge import Merged

Check = Callable[[Context], Iterator[Problem]]

CHECKS: tuple[Check, ...] = (
    pools.check_pools,
    sizes.check_sizes,
    sizes.check_default_size,
    sizes.check_images_visible,
    dask.check_dask,
    warm.check_warm,
    settings.check_cost,
    settings.check_budgets,
    settings.check_homes,
    settings.check_culling,
    settings.check_measured,
    data.check_data,
)
"""Every check, in the order problems are listed."""


def check_profiles(
    merged: Merged, catalog: Catalog, settings: SizingSettings
) -> list[Problem]:
    """Run every semantic check over the merged profiles.

    Args:
        merged: the merged profiles (possibly with schema problems).
        catalog: the instance catalogue, with the measured capacities applied.
        settings: the node overheads of the ``sizing`` section.

    Returns:
        Every problem found.
    """
    ctx = make_context(merged, catalog, settings)
    problems = list(_check_required(ctx))
    for check in CHECKS:
        problems.extend(check(ctx))
    return problems


def _check_required(ctx: Context) -> Iterator[Problem]:
    if not ctx.merged.pools:
        yield Problem(PROFILES, "$.pools", "no pools are defined in any file")
    if not ctx.merged.sizes:
        yield Problem(PROFILES, "$.sizes", "no sizes are defined in any file")
