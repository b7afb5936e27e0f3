"""Plan: the difference between the desired and the observed node pools.

This module owns the decision of *what to change*: it compares a
:class:`~wbspawner.pools.desired.DesiredState` with an :class:`ObservedState`
and returns an ordered :class:`Plan` of actions, each carrying the exact API
parameters to send and the human-readable changes behind it. Order: launch
templates (create, new version, default version) before the groups that use
them; groups (create, update, tags); deletions last.

Safety rules decided here: nothing is ever deleted unless ``allow_delete`` is
given (without it, deletions appear in the plan as *blocked*); a group's desired
capacity is never touched after creation (Cluster Autoscaler owns it); tags wbspawner
does not own are left alone.

Pure: no I/O. Tables and JSON of a plan are in :mod:`wbspawner.pools.report`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from wbspawner.pools import PoolsError
from wbspawner.pools.desired import (
    DesiredState,
    GroupSpec,
    JsonDict,
    LaunchTemplateSpec,
)
from wbspawner.pools.nodes import is_managed_tag
from wbspawner.pools.observed import (
    Change,
    ObservedAsg,
    ObservedLaunchTemplate,
    ObservedState,
    contains,
    data_changes,
    mip_summary,
    short,
)

ActionKind = Literal[
    "create-launch-template",
    "create-launch-template-version",
    "set-default-version",
    "create-asg",
    "update-asg",
    "update-tags",
    "delete-tags",
    "delete-asg",
    "delete-launch-template",
]
ACTION_ORDER: tuple[ActionKind, ...] = get_args(ActionKind)
"""The order in which actions run (a group needs its template first)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One step of a plan: an API call and why it is made."""

    kind: ActionKind
    target: str
    """Name of the launch template or group."""
    params: Mapping[str, Any]
    """Parameters of the API call (see :mod:`wbspawner.pools.apply`)."""
    changes: tuple[Change, ...] = ()
    blocked: str | None = None
    """Why the action will not run (a deletion without ``allow_delete``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """An ordered list of actions for one cluster."""

    cluster: str
    actions: tuple[Action, ...]

    @property
    def runnable(self) -> tuple[Action, ...]:
        """The actions that will run, in order."""
        return tuple(a for a in self.actions if a.blocked is None)

    @property
    def blocked(self) -> tuple[Action, ...]:
        """The actions that will not run, and why."""
        return tuple(a for a in self.actions if a.blocked is not None)

    @property
    def is_empty(self) -> bool:
        """Whether applying the plan would change nothing."""
        return not self.runnable


def _lt_tag_spec(spec: LaunchTemplateSpec) -> list[JsonDict]:
    tags = [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())]
    return [{"ResourceType": "launch-template", "Tags": tags}]


def _lt_actions(
    spec: LaunchTemplateSpec, seen: ObservedLaunchTemplate | None
) -> list[Action]:
    data = dict(spec.data)
    params: JsonDict
    if seen is None:
        params = {
            "LaunchTemplateName": spec.name,
            "LaunchTemplateData": data,
            "TagSpecifications": _lt_tag_spec(spec),
        }
        summary = Change("template", "—", f"{data['InstanceType']}, {data['ImageId']}")
        return [
            Action(
                kind="create-launch-template",
                target=spec.name,
                params=params,
                changes=(summary,),
            )
        ]
    if contains(seen.default_data, data):
        return []
    changes = data_changes(seen.default_data, data)
    set_default: ActionKind = "set-default-version"
    if seen.latest_version != seen.default_version and contains(seen.latest_data, data):
        # A previous run created the version but stopped before making it default.
        version = str(seen.latest_version)
        params = {"LaunchTemplateName": spec.name, "DefaultVersion": version}
        return [
            Action(kind=set_default, target=spec.name, params=params, changes=changes)
        ]
    create = Action(
        kind="create-launch-template-version",
        target=spec.name,
        params={"LaunchTemplateName": spec.name, "LaunchTemplateData": data},
        changes=changes,
    )
    # DefaultVersion None: the version the previous action created (the newest).
    params = {"LaunchTemplateName": spec.name, "DefaultVersion": None}
    return [create, Action(kind=set_default, target=spec.name, params=params)]


# ------------------------------------------------------------------------ groups


def asg_tag(name: str, key: str, value: str, propagate: bool) -> JsonDict:
    """Return one ASG tag in the form the Auto Scaling API takes.

    Args:
        name: group name.
        key: tag key.
        value: tag value.
        propagate: whether instances get the tag.

    Returns:
        The tag dict.
    """
    return {
        "ResourceId": name,
        "ResourceType": "auto-scaling-group",
        "Key": key,
        "Value": value,
        "PropagateAtLaunch": propagate,
    }


def _create_asg(group: GroupSpec) -> Action:
    asg = group.asg
    tags = [
        asg_tag(asg.name, k, v, k in asg.propagate_at_launch)
        for k, v in sorted(asg.tags.items())
    ]
    params = {
        "AutoScalingGroupName": asg.name,
        "MinSize": asg.min_size,
        "MaxSize": asg.max_size,
        "DesiredCapacity": asg.min_size,
        "VPCZoneIdentifier": ",".join(asg.subnets),
        "MixedInstancesPolicy": dict(asg.mixed_instances_policy),
        "CapacityRebalance": asg.capacity_rebalance,
        "Tags": tags,
    }
    summary = Change(
        "group",
        "—",
        f"{group.zone} {group.capacity}, {asg.min_size}..{asg.max_size} nodes, "
        + ",".join(group.instance_types),
    )
    return Action(kind="create-asg", target=asg.name, params=params, changes=(summary,))


def _update_asg(group: GroupSpec, seen: ObservedAsg) -> list[Action]:
    asg = group.asg
    mip = dict(asg.mixed_instances_policy)
    old_mip = seen.mixed_instances_policy
    checks: list[tuple[str, Any, Any, bool]] = [
        ("MinSize", seen.min_size, asg.min_size, seen.min_size == asg.min_size),
        ("MaxSize", seen.max_size, asg.max_size, seen.max_size == asg.max_size),
        (
            "VPCZoneIdentifier",
            ",".join(seen.subnets),
            ",".join(asg.subnets),
            sorted(seen.subnets) == list(asg.subnets),
        ),
        (
            "CapacityRebalance",
            seen.capacity_rebalance,
            asg.capacity_rebalance,
            seen.capacity_rebalance == asg.capacity_rebalance,
        ),
        (
            "MixedInstancesPolicy",
            old_mip,
            mip,
            old_mip is not None and contains(old_mip, mip),
        ),
    ]
    differ = [(key, old, new) for key, old, new, same in checks if not same]
    if not differ:
        return []
    show = {"MixedInstancesPolicy": mip_summary}
    changes = tuple(
        Change(k, show.get(k, short)(old), show.get(k, short)(new))
        for k, old, new in differ
    )
    params = {"AutoScalingGroupName": asg.name, **{k: new for k, _, new in differ}}
    # The whole policy always goes along: idempotent on AWS, and an update that
    # leaves it out makes some implementations (moto) drop it.
    params["MixedInstancesPolicy"] = mip
    return [Action(kind="update-asg", target=asg.name, params=params, changes=changes)]


def _tag_actions(group: GroupSpec, seen: ObservedAsg) -> list[Action]:
    asg = group.asg
    put: list[JsonDict] = []
    changes: list[Change] = []
    for key, value in sorted(asg.tags.items()):
        propagate = key in asg.propagate_at_launch
        if seen.tags.get(key) == value and (
            (key in seen.propagate_at_launch) == propagate
        ):
            continue
        put.append(asg_tag(asg.name, key, value, propagate))
        changes.append(Change(key, seen.tags.get(key, "—"), value))
    gone = sorted(k for k in seen.tags if is_managed_tag(k) and k not in asg.tags)
    out: list[Action] = []
    if put:
        out.append(
            Action(
                kind="update-tags",
                target=asg.name,
                params={"Tags": put},
                changes=tuple(changes),
            )
        )
    if gone:
        tags = [asg_tag(asg.name, k, seen.tags[k], False) for k in gone]
        for t in tags:
            del t["PropagateAtLaunch"]
        changes = [Change(k, seen.tags[k], "—") for k in gone]
        out.append(
            Action(
                kind="delete-tags",
                target=asg.name,
                params={"Tags": tags},
                changes=tuple(changes),
            )
        )
    return out


# ---------------------------------------------------------------------- deletion


def _deletions(
    desired: DesiredState, observed: ObservedState, allow_delete: bool
) -> list[Action]:
    wanted = {g.asg.name for g in desired.groups}
    wanted_lts = {g.launch_template.name for g in desired.groups}
    out: list[Action] = []
    for name, seen in sorted(observed.asgs.items()):
        if name in wanted:
            continue
        blocked = None
        if not allow_delete:
            nodes = f"has {seen.instances} node(s); " if seen.instances else ""
            blocked = f"not in the profiles; {nodes}pass --allow-delete to delete"
        params = {"AutoScalingGroupName": name, "ForceDelete": seen.instances > 0}
        change = Change("nodes", str(seen.instances), "0")
        out.append(
            Action(
                kind="delete-asg",
                target=name,
                params=params,
                changes=(change,),
                blocked=blocked,
            )
        )
    still_used = {
        a.launch_template
        for n, a in observed.asgs.items()
        if n in wanted or not allow_delete
    }
    for name in sorted(observed.launch_templates):
        if name in wanted_lts:
            continue
        blocked = None
        if not allow_delete:
            blocked = "not in the profiles; pass --allow-delete to delete"
        elif name in still_used:
            blocked = "still used by a group that stays"
        params = {"LaunchTemplateName": name}
        out.append(
            Action(
                kind="delete-launch-template",
                target=name,
                params=params,
                blocked=blocked,
            )
        )
    return out


def make_plan(
    desired: DesiredState, observed: ObservedState, *, allow_delete: bool = False
) -> Plan:
    """Return the actions that turn the observed pools into the desired ones.

    Args:
        desired: what the profiles ask for.
        observed: what exists (only objects tagged with this cluster).
        allow_delete: let the plan delete groups and templates the profiles no
            longer have, including groups that still have nodes.

    Returns:
        The plan, actions in :data:`ACTION_ORDER`, then by target name.
    """
    actions: list[Action] = []
    for group in desired.groups:
        lt = group.launch_template
        actions += _lt_actions(lt, observed.launch_templates.get(lt.name))
        seen = observed.asgs.get(group.asg.name)
        if seen is None:
            actions.append(_create_asg(group))
        else:
            actions += _update_asg(group, seen)
            actions += _tag_actions(group, seen)
    actions += _deletions(desired, observed, allow_delete)
    rank = {kind: i for i, kind in enumerate(ACTION_ORDER)}
    # Stable sort: a template's new version stays before making it the default.
    ordered = sorted(actions, key=lambda a: (rank[a.kind], a.target))
    return Plan(cluster=desired.cluster, actions=tuple(ordered))


def only_groups(
    desired: DesiredState,
    observed: ObservedState,
    *,
    pools: Collection[str] = (),
    zones: Collection[str] = (),
) -> tuple[DesiredState, ObservedState]:
    """Narrow a plan to the groups of some pools and zones (empty: no narrowing).

    The groups of other pools or zones are left out on both sides, so that a plan
    made from the result neither creates, changes nor deletes them; neither does
    it delete groups the profiles no longer have.

    Args:
        desired: what the profiles ask for.
        observed: what exists.
        pools: pool names to keep (empty: every pool).
        zones: zones to keep (empty: every zone).

    Returns:
        The narrowed desired and observed states.

    Raises:
        PoolsError: a named pool is not in the profiles, or a named zone has no
            group of the kept pools.
    """
    if not pools and not zones:
        return desired, observed
    known = sorted({g.pool for g in desired.groups})
    unknown = sorted(set(pools) - set(known))
    if unknown:
        raise PoolsError(
            f"no pool {', '.join(unknown)} in the profiles (pools: {', '.join(known)})"
        )
    kept_pools = [g for g in desired.groups if not pools or g.pool in pools]
    used = sorted({g.zone for g in kept_pools})
    idle = sorted(set(zones) - set(used))
    if idle:
        raise PoolsError(
            f"no group of these pools in zone {', '.join(idle)} "
            f"(their zones: {', '.join(used)})"
        )
    groups = tuple(g for g in kept_pools if not zones or g.zone in zones)
    names = {g.asg.name for g in groups} | {g.launch_template.name for g in groups}
    narrowed = ObservedState(
        launch_templates={
            n: t for n, t in observed.launch_templates.items() if n in names
        },
        asgs={n: a for n, a in observed.asgs.items() if n in names},
    )
    return replace(desired, groups=groups), narrowed
