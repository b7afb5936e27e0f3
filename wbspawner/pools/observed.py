"""Observed pools on AWS, and how they differ from the desired state.

This module owns the observed-state dataclasses that
:class:`~wbspawner.pools.aws.Ec2Pools` and :class:`~wbspawner.pools.aws.AsgPools`
fill in and :mod:`wbspawner.pools.plan` reads; :func:`contains`, the one rule for
"AWS already has what we want" (AWS echoes what it was given plus defaults); and
the :class:`Change` records that tell an admin what a plan changes.

Pure: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedLaunchTemplate:
    """A launch template found on AWS (tagged with our cluster)."""

    name: str
    default_version: int
    latest_version: int
    default_data: Mapping[str, Any]
    """``LaunchTemplateData`` of the default version."""
    latest_data: Mapping[str, Any]
    """``LaunchTemplateData`` of the latest version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedAsg:
    """An Auto Scaling group found on AWS (tagged with our cluster)."""

    name: str
    min_size: int
    max_size: int
    desired_capacity: int
    instances: int
    """Instances in the group, whatever their state."""
    subnets: tuple[str, ...]
    mixed_instances_policy: Mapping[str, Any] | None
    capacity_rebalance: bool
    tags: Mapping[str, str]
    propagate_at_launch: frozenset[str]
    launch_template: str | None = None
    """Name of the launch template it uses, if it uses one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedState:
    """What exists on AWS for one cluster."""

    launch_templates: Mapping[str, ObservedLaunchTemplate] = field(default_factory=dict)
    asgs: Mapping[str, ObservedAsg] = field(default_factory=dict)


def _is_tag_specs(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, dict) and "ResourceType" in v and "Tags" in v for v in value
        )
    )


def _normalise(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_normalise(v) for v in value]
        if items and all(isinstance(i, dict) and "Key" in i for i in items):
            items.sort(key=lambda i: str(i["Key"]))
        return items
    return value


def contains(observed: Any, desired: Any) -> bool:
    """Return whether ``observed`` has everything ``desired`` asks for.

    AWS echoes what it was given plus defaults (gp3 IOPS, extra IMDS options), so
    dicts are compared on the desired keys only; lists element by element (tag
    lists sorted by key first); scalars by equality.

    Args:
        observed: a value read from AWS.
        desired: the value wbspawner wants.

    Returns:
        ``True`` when nothing needs to change.
    """
    observed, desired = _normalise(observed), _normalise(desired)
    return _contains(observed, desired)


def _contains(observed: Any, desired: Any) -> bool:
    if _is_tag_specs(desired):
        # Tag specifications are matched by resource type: a stored template may
        # list more types than it was given (moto adds its own launch-template
        # entry), and only the types wbspawner sets are its business.
        if not isinstance(observed, list):
            return False
        by_type = {o.get("ResourceType"): o for o in observed if isinstance(o, dict)}
        return all(_contains(by_type.get(d["ResourceType"]), d) for d in desired)
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(
            k in observed and _contains(observed[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(_contains(o, d) for o, d in zip(observed, desired, strict=True))
        )
    return bool(observed == desired)


@dataclass(frozen=True, slots=True)
class Change:
    """One field that changes, for people to read."""

    field: str
    old: str
    new: str


def short(value: Any, limit: int = 60) -> str:
    """Return a value as text of at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _user_data_changes(old: Any, new: Any) -> list[Change]:
    def lines(v: Any) -> list[str]:
        try:
            return base64.b64decode(str(v)).decode().splitlines()
        except ValueError:
            return [str(v)]

    before, after = lines(old), lines(new)
    out: list[Change] = []
    for flag in ("--node-labels=", "--register-with-taints="):
        # Kubelet flags hold comma-separated lists: show the items that change.
        items = [
            {i for x in side if flag in x for i in x.split(flag, 1)[1].split(",")}
            for side in (before, after)
        ]
        if items[0] != items[1]:
            gone, added = sorted(items[0] - items[1]), sorted(items[1] - items[0])
            name = f"UserData {flag.strip('-=')}"
            out.append(
                Change(
                    name, short(",".join(gone) or "—"), short(",".join(added) or "—")
                )
            )
    rest = [
        [
            x.strip()
            for x in a
            if x not in b
            and "--node-labels=" not in x
            and "--register-with-taints=" not in x
        ]
        for a, b in ((before, after), (after, before))
    ]
    if rest[0] or rest[1]:
        out.append(
            Change(
                "UserData",
                short("; ".join(rest[0]) or "—"),
                short("; ".join(rest[1]) or "—"),
            )
        )
    return out


def _leaf_changes(path: str, old: Any, new: Any) -> list[Change]:
    if isinstance(new, Mapping) and isinstance(old, Mapping):
        return [
            c
            for k, v in new.items()
            for c in _leaf_changes(f"{path}.{k}", old.get(k), v)
        ]
    if isinstance(new, list) and isinstance(old, list) and len(old) == len(new):
        return [
            c
            for n, (o, v) in enumerate(zip(old, new, strict=True))
            for c in _leaf_changes(f"{path}[{n}]", o, v)
        ]
    if contains(old, new):
        return []
    return [Change(path, short("—" if old is None else old), short(new))]


def data_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    """Return what differs in launch template data, field by field.

    Args:
        old: observed data.
        new: desired data.

    Returns:
        One change per differing leaf (e.g. ``BlockDeviceMappings[0].Ebs.VolumeSize``);
        user data as the kubelet labels and taints that change, then other lines.
    """
    out: list[Change] = []
    for key, value in new.items():
        if key in old and contains(old[key], value):
            continue
        if key == "UserData":
            out += _user_data_changes(old.get(key, ""), value)
        else:
            out += _leaf_changes(key, old.get(key), value) or [
                Change(key, short(old.get(key, "—")), short(value))
            ]
    return tuple(out)


# ----------------------------------------------------------- launch templates


def mip_summary(mip: Mapping[str, Any] | None) -> str:
    """Return a MixedInstancesPolicy in one line (types, on-demand share, strategy)."""
    if not mip:
        return "—"
    overrides = mip.get("LaunchTemplate", {}).get("Overrides", [])
    types = ",".join(str(o.get("InstanceType")) for o in overrides)
    dist = mip.get("InstancesDistribution", {})
    od = dist.get("OnDemandPercentageAboveBaseCapacity", "?")
    strategy = dist.get("SpotAllocationStrategy") or dist.get(
        "OnDemandAllocationStrategy", ""
    )
    return f"{types} on-demand {od}% {strategy}"
