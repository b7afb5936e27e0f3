"""The context the semantic profile checks share, and defensive accessors.

This module owns :class:`Context`: the merged view plus what every check derives
from it once (configured groups, region, per-pool facts such as purposes, zones
and full-node request), and the
accessors that read parsed YAML without trusting its types, so that the checks
can run even where the schema found problems.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from wbspawner.catalog import sizing
from wbspawner.errors import Problem
from wbspawner.model import CAPACITY_TYPES, Catalog, Resources, SizingSettings
from wbspawner.profiles.merge import Item, Merged
from wbspawner.profiles.schema import did_you_mean

PROFILES = "<profiles>"
"""File name of problems that belong to no single file."""


def as_dict(value: object) -> dict[str, Any]:
    """Return ``value`` if it is a mapping, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """Return ``value`` if it is a list, else an empty list."""
    return value if isinstance(value, list) else []


def as_int(value: object) -> int | None:
    """Return ``value`` if it is a whole number (not a boolean), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$")


def in_region(zone: str, region: str) -> bool:
    """Return whether a zone is in a region (malformed zones count as in it).

    Args:
        zone: availability zone, e.g. ``us-east-1a``.
        region: region, e.g. ``us-east-1``.

    Returns:
        ``False`` only for a well-formed zone of another region (the schema
        reports malformed zones).
    """
    if not _ZONE.match(zone):
        return True
    return zone.startswith(region) and len(zone) == len(region) + 1


def strings(value: object) -> list[tuple[int, str]]:
    """Return the string items of a list with their indexes."""
    return [(i, v) for i, v in enumerate(as_list(value)) if isinstance(v, str)]


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """What other checks need to know about one pool."""

    item: Item
    purposes: frozenset[str] | None
    """``None`` when the purpose list is invalid (not checked against)."""
    zones: frozenset[str]
    gpu_count: int
    request: Resources | None
    """The full-node request when every type is known and of one shape."""
    on_demand: bool = True
    """Whether the pool may start on-demand nodes (``capacity_types``)."""


@dataclass(frozen=True, slots=True)
class Context:
    """The merged view plus what the checks derive from it once."""

    merged: Merged
    catalog: Catalog
    """The catalogue with the measured capacities of ``sizing`` applied."""
    settings: SizingSettings
    """Node overheads of the ``sizing`` section."""
    region: str
    admin_groups: frozenset[str]
    user_groups: tuple[str, ...]
    pools: dict[str, PoolInfo]

    @property
    def groups(self) -> frozenset[str]:
        """Every group that may be named: admin and user groups."""
        return self.admin_groups | frozenset(self.user_groups)

    def section(self, name: str) -> dict[str, Any]:
        """Return a single section's mapping (empty when absent or invalid)."""
        item = self.merged.section(name)
        return as_dict(item.value) if item is not None else {}

    def unknown_groups(
        self, item: Item, names: Iterable[tuple[int | str, str]], *parts: str | int
    ) -> Iterator[Problem]:
        """Yield a problem for each group name that is not configured."""
        for key, group in names:
            if group not in self.groups:
                yield item.problem(
                    f"unknown group '{group}'{did_you_mean(group, self.groups)}; "
                    "list it in groups.user_groups or groups.admin_groups",
                    *parts,
                    key,
                )

    def pool_ref(
        self, item: Item, name: object, purpose: str | None, *parts: str | int
    ) -> Iterator[Problem]:
        """Yield a problem when ``name`` is not a pool (with ``purpose``, if given)."""
        if not isinstance(name, str):
            return
        info = self.pools.get(name)
        if info is None:
            known = ", ".join(sorted(self.pools)) or "none"
            yield item.problem(
                f"unknown pool '{name}'{did_you_mean(name, self.pools)}; "
                f"pools: {known}",
                *parts,
            )
        elif (
            purpose is not None
            and info.purposes is not None
            and purpose not in info.purposes
        ):
            yield item.problem(
                f"pool '{name}' is not for {_PURPOSE_WORDS[purpose]} (its purpose is "
                f"{', '.join(sorted(info.purposes))}); add '{purpose}' to "
                f"pools.{name}.purpose or use another pool",
                *parts,
            )


_PURPOSE_WORDS = {"user": "user servers", "dask": "Dask"}


def _section(merged: Merged, name: str) -> dict[str, Any]:
    item = merged.section(name)
    return as_dict(item.value) if item is not None else {}


def _purposes(value: object) -> frozenset[str] | None:
    """Return a pool's purposes, or ``None`` when the schema rejects the list."""
    found = [p for _, p in strings(value)]
    if not isinstance(value, list) or len(found) != len(value):
        return None
    if not set(found) <= {"user", "dask"}:
        return None
    return frozenset(found)


def _pool_info(item: Item, catalog: Catalog, settings: SizingSettings) -> PoolInfo:
    raw = as_dict(item.value)
    types = [catalog.types.get(n) for _, n in strings(raw.get("instance_types"))]
    known = [t for t in types if t is not None]
    purpose = raw.get("purpose", ["user"])
    request = None
    if known and len(known) == len(types) and sizing.same_shape(known):
        request = sizing.full_node_request(known, settings)
    return PoolInfo(
        item=item,
        purposes=_purposes(purpose),
        zones=frozenset(z for _, z in strings(raw.get("zones"))),
        gpu_count=known[0].gpu_count if known else 0,
        request=request,
        on_demand="on-demand"
        in [c for _, c in strings(raw.get("capacity_types", list(CAPACITY_TYPES)))],
    )


def make_context(merged: Merged, catalog: Catalog, settings: SizingSettings) -> Context:
    """Derive the check context from the merged view.

    Args:
        merged: the merged profiles.
        catalog: the instance catalogue, with the measured capacities applied.
        settings: the node overheads of the ``sizing`` section.

    Returns:
        The context (groups, region, pool facts).
    """
    groups = _section(merged, "groups")
    region = _section(merged, "cost").get("region")
    admin = groups.get("admin_groups", ["jupyter-admins"])
    return Context(
        merged=merged,
        catalog=catalog,
        settings=settings,
        region=region if isinstance(region, str) else "us-east-1",
        admin_groups=frozenset(g for _, g in strings(admin)),
        user_groups=tuple(g for _, g in strings(groups.get("user_groups"))),
        pools={
            name: _pool_info(item, catalog, settings)
            for name, item in merged.pools.items()
        },
    )
