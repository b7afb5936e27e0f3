"""Building the frozen profiles model from the merged, checked YAML.

This module owns the translation of validated YAML into :mod:`wbspawner.model`
dataclasses: defaults are the dataclasses' own field defaults (a key absent from
the YAML is simply not passed), lists become tuples, mappings become read-only
``MappingProxyType`` objects, and each pool's full-node request and price are computed
from the catalogue (:mod:`wbspawner.catalog.sizing`, :mod:`wbspawner.catalog.pricing`).

:func:`build_profiles` assumes that the schema and
:func:`wbspawner.profiles.checks.check_profiles` found no problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from wbspawner.catalog import pricing, sizing
from wbspawner.model import (
    CAPACITY_TYPES,
    Catalog,
    CostItem,
    CostSettings,
    CullSettings,
    DaskLimits,
    DaskSettings,
    DaskWorkerSize,
    DataSettings,
    GroupBudget,
    GroupData,
    HomeSettings,
    ImageChoice,
    InstanceType,
    Pool,
    Profiles,
    S3Grant,
    SharedVolume,
    Size,
    SizingSettings,
    TimeWindow,
    VolumeKind,
    WarmSchedule,
    WarmSettings,
)
from wbspawner.profiles.checks.data import canonical_prefix
from wbspawner.profiles.merge import Merged
from wbspawner.profiles.parsers import parse_days, parse_time


def _kwargs(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """Pick the present keys; lists become tuples, mappings read-only."""
    out: dict[str, Any] = {}
    for key in keys:
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = MappingProxyType(dict(value))
        out[key] = value
    return out


def pool_display_name(t: InstanceType) -> str:
    """Return the default display name of a pool of this shape, e.g. ``64 GiB``.

    Args:
        t: the pool's first instance type.

    Returns:
        Memory, with the GPUs when there are any.
    """
    memory = f"{t.memory_mib / 1024:g} GiB"
    if t.gpu_count:
        return f"{t.gpu_count}× {t.gpu_kind or 'GPU'}, {memory}"
    return memory


def build_pool(
    name: str, data: Mapping[str, Any], catalog: Catalog, settings: SizingSettings
) -> Pool:
    """Return one pool, with its full-node request and price.

    Args:
        name: the pool name.
        data: the pool's checked YAML.
        catalog: the catalogue (with measured capacities applied).
        settings: node overheads.

    Returns:
        The pool.
    """
    types = [catalog.types[t] for t in data["instance_types"]]
    first = types[0]
    return Pool(
        name=name,
        display_name=data.get("display_name") or pool_display_name(first),
        capacity_types=tuple(data.get("capacity_types", CAPACITY_TYPES)),
        request=sizing.full_node_request(types, settings),
        price_per_hour=pricing.on_demand_price(types),
        gpu_count=first.gpu_count,
        gpu_kind=first.gpu_kind,
        vcpu=first.vcpu,
        memory_mib=first.memory_mib,
        **_kwargs(
            data,
            "instance_types",
            "zones",
            "min_nodes",
            "max_nodes",
            "root_volume_gib",
            "purpose",
            "labels",
        ),
    )


def build_size(data: Mapping[str, Any]) -> Size:
    """Return one size from its checked YAML.

    Args:
        data: the size's YAML.

    Returns:
        The size.
    """
    images = tuple(
        ImageChoice(
            **_kwargs(img, "slug", "display_name", "image", "default", "allowed_groups")
        )
        for img in data["images"]
    )
    return Size(
        description=data.get("description", ""),
        images=images,
        **_kwargs(
            data,
            "slug",
            "display_name",
            "pool",
            "default",
            "allowed_groups",
            "environment",
            "home_size_gib",
            "home_size_by_group",
        ),
    )


def _limits(data: Mapping[str, Any]) -> DaskLimits:
    keys = ("max_clusters", "max_workers", "max_cores", "max_memory_gib", "max_gpus")
    return DaskLimits(**_kwargs(data, *keys))


def build_dask(data: Mapping[str, Any]) -> DaskSettings:
    """Return the Dask settings from the checked ``dask`` section.

    Args:
        data: the section (``{}`` when absent).

    Returns:
        The settings.
    """
    workers = tuple(
        DaskWorkerSize(
            display_name=w.get("display_name") or w["name"],
            workers_per_node=w.get("workers_per_node", 1),
            **_kwargs(w, "name", "pool", "allowed_groups"),
        )
        for w in data.get("worker_sizes", ())
    )
    default = data.get("default_worker_size") or (workers[0].name if workers else None)
    return DaskSettings(
        scheduler_pool=data.get("scheduler_pool"),
        worker_sizes=workers,
        default_worker_size=default,
        limits=_limits(data.get("limits", {})),
        group_limits=MappingProxyType(
            {g: _limits(v) for g, v in data.get("group_limits", {}).items()}
        ),
        user_limits=MappingProxyType(
            {u: _limits(v) for u, v in data.get("user_limits", {}).items()}
        ),
        **_kwargs(
            data,
            "scheduler_cores",
            "scheduler_memory_gib",
            "max_workers_per_cluster",
            "idle_timeout_s",
        ),
    )


def build_warm(data: Mapping[str, Any]) -> WarmSettings:
    """Return the warmer settings from the checked ``warm`` section.

    Args:
        data: the section (``{}`` when absent).

    Returns:
        The settings.
    """
    schedules = tuple(
        WarmSchedule(
            windows=tuple(
                TimeWindow(
                    days=parse_days(w["days"]),
                    start_minute=parse_time(w["start"]),
                    end_minute=parse_time(w["end"]),
                )
                for w in s["windows"]
            ),
            nodes_per_zone=s.get("nodes_per_zone", 1),
            **_kwargs(s, "name", "pool", "zones", "capacity_fallback"),
        )
        for s in data.get("schedules", ())
    )
    return WarmSettings(
        schedules=schedules,
        **_kwargs(
            data,
            "timezone",
            "mode",
            "budget_per_hour",
            "demand_window_s",
            "habit_days",
            "habit_margin_min",
        ),
    )


def build_cost(data: Mapping[str, Any]) -> CostSettings:
    """Return the cost settings from the checked ``cost`` section.

    Args:
        data: the section (``{}`` when absent).

    Returns:
        The settings.
    """
    base = tuple(
        CostItem(**_kwargs(item, "name", "per_hour", "per_month", "count"))
        for item in data.get("base", ())
    )
    return CostSettings(
        base=base,
        **_kwargs(
            data,
            "region",
            "currency",
            "spot_discount",
            "ebs_gb_month",
            "snapshot_gb_month",
        ),
    )


def build_culling(data: Mapping[str, Any]) -> CullSettings:
    """Return the culler's settings from the checked ``culling`` section.

    Args:
        data: the section (empty: the defaults).

    Returns:
        The settings; ``sizes`` becomes :attr:`CullSettings.size_timeouts_s`.
    """
    sizes = data.get("sizes") or {}
    timeouts = {slug: int(v["idle_timeout_s"]) for slug, v in sizes.items()}
    return CullSettings(
        size_timeouts_s=MappingProxyType(timeouts),
        **_kwargs(
            data,
            "enabled",
            "idle_timeout_s",
            "warn_before_s",
            "max_busy_age_s",
            "orphan_grace_s",
        ),
    )


def _volume(data: Mapping[str, Any]) -> SharedVolume:
    efs, nfs = data.get("efs") or {}, data.get("nfs") or {}
    kind: VolumeKind = "efs" if "efs" in data else "nfs" if "nfs" in data else "claim"
    return SharedVolume(
        name=data["name"],
        mount_path=data["mount_path"],
        read_only=data.get("read_only", True),
        kind=kind,
        file_system_id=efs.get("file_system_id"),
        access_point=efs.get("access_point"),
        server=nfs.get("server"),
        path=nfs.get("path"),
        claim=data.get("claim"),
    )


def build_data(data: Mapping[str, Any]) -> DataSettings:
    """Return the data access per group from the checked ``data`` section.

    Args:
        data: the section (``{}`` when absent).

    Returns:
        The settings; prefixes end with ``/`` (or are empty).
    """
    groups = {
        str(group): GroupData(
            s3=tuple(
                S3Grant(
                    bucket=g["bucket"],
                    prefix=canonical_prefix(g.get("prefix", "")),
                    access=g.get("access", "read"),
                )
                for g in (raw or {}).get("s3", ())
            ),
            volumes=tuple(_volume(v) for v in (raw or {}).get("volumes", ())),
        )
        for group, raw in (data.get("groups") or {}).items()
    }
    return DataSettings(groups=MappingProxyType(groups))


def _section(merged: Merged, name: str) -> Mapping[str, Any]:
    item = merged.section(name)
    return item.value if item is not None and isinstance(item.value, dict) else {}


def build_profiles(
    merged: Merged,
    catalog: Catalog,
    settings: SizingSettings,
    *,
    sources: tuple[str, ...],
    digest: str,
) -> Profiles:
    """Return the profiles model of a merged view that passed every check.

    Args:
        merged: the merged YAML.
        catalog: the instance catalogue, with the measured capacities applied
            (it becomes :attr:`Profiles.catalog`).
        settings: the node overheads of the ``sizing`` section.
        sources: the files read, in merge order.
        digest: hash of the files' names and contents.

    Returns:
        The frozen profiles.
    """
    groups = _section(merged, "groups")
    return Profiles(
        pools=MappingProxyType(
            {
                name: build_pool(name, item.value, catalog, settings)
                for name, item in merged.pools.items()
            }
        ),
        sizes=tuple(build_size(item.value) for item in merged.sizes),
        dask=build_dask(_section(merged, "dask")),
        warm=build_warm(_section(merged, "warm")),
        cost=build_cost(_section(merged, "cost")),
        budgets=tuple(
            GroupBudget(
                **_kwargs(b.value, "group", "monthly", "warn_fraction", "free_sizes")
            )
            for b in merged.budgets
        ),
        homes=HomeSettings(
            **_kwargs(
                _section(merged, "homes"),
                "storage_class",
                "default_zone",
                "mount_path",
                "auto_move",
                "retention_days",
            )
        ),
        culling=build_culling(_section(merged, "culling")),
        data=build_data(_section(merged, "data")),
        sizing=settings,
        catalog=catalog,
        sources=sources,
        digest=digest,
        **_kwargs(groups, "admin_groups", "user_groups"),
    )
