"""Checks of the pools: one shape of instance types, zones, node counts, labels.

This module owns the checks of each pool: its instance types exist in the catalogue
and share one shape (vCPU, memory, GPUs, architecture), its zones are in the region,
min_nodes is at most max_nodes, its labels are not reserved, and a node leaves room
for a server once the DaemonSets are counted.

Pure: every value is read defensively (the schema reports wrong types).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from wbspawner.catalog import sizing
from wbspawner.errors import Problem
from wbspawner.model import LABEL_PREFIX, InstanceType
from wbspawner.profiles.checks.context import (
    Context,
    as_dict,
    as_int,
    in_region,
    strings,
)
from wbspawner.profiles.merge import Item
from wbspawner.profiles.schema import did_you_mean

_RESERVED_LABEL_SUFFIXES = ("kubernetes.io", "k8s.io")


def check_pools(ctx: Context) -> Iterator[Problem]:
    """Report unknown or mixed instance types, foreign zones, node counts, labels."""
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
