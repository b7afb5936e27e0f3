"""Checks of the ``dask`` section: references, worker packing, the scheduler.

This module owns the checks of the Dask section: the pools and groups it names
exist, workers pack their nodes (one worker per GPU at most, a useful share of a
node per worker), and the scheduler fits its pool.

Pure: every value is read defensively (the schema reports wrong types).
"""

from __future__ import annotations

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

MIN_WORKER_MEMORY_MIB = 512
"""Smallest useful memory share of one Dask worker."""

MIN_WORKER_CPU_M = 100
"""Smallest useful CPU share of one Dask worker."""


def check_dask(ctx: Context) -> Iterator[Problem]:
    """Report the Dask section's unknown pools and workers that do not pack."""
    item = ctx.merged.section("dask")
    if item is None:
        return
    raw = as_dict(item.value)
    yield from ctx.pool_ref(item, raw.get("scheduler_pool"), "dask", "scheduler_pool")
    yield from _check_scheduler_fits(ctx, item, raw)
    yield from _check_scheduler_on_demand(ctx, item, raw)
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


def _check_scheduler_on_demand(
    ctx: Context, item: Item, raw: dict[str, Any]
) -> Iterator[Problem]:
    """Schedulers run on on-demand nodes only: their pool must have some."""
    why = "a reclaimed scheduler loses the whole computation"
    pool = raw.get("scheduler_pool")
    if isinstance(pool, str):
        info = ctx.pools.get(pool)
        if info is not None and not info.on_demand:
            yield item.problem(
                f"pool '{pool}' starts spot nodes only, and Dask schedulers run on "
                f"on-demand nodes ({why}); add on-demand to its capacity_types or "
                "name another pool",
                "scheduler_pool",
            )
        return
    for i, worker in enumerate(as_list(raw.get("worker_sizes"))):
        name = as_dict(worker).get("pool")
        info = ctx.pools.get(name) if isinstance(name, str) else None
        if info is not None and not info.on_demand:
            yield item.problem(
                f"without a scheduler_pool, schedulers run in the workers' pool "
                f"'{name}', which starts spot nodes only, and Dask schedulers run on "
                f"on-demand nodes ({why}); set scheduler_pool to a pool with "
                "on-demand capacity",
                "worker_sizes",
                i,
                "pool",
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
