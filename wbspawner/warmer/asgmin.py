"""The warmer's ``asg-min`` mode: keep nodes by raising Auto Scaling group minimums.

This module owns the alternative to placeholder pods: each group's MinSize is
set to the nodes its users hold plus the warm nodes the plan wants (the policy
computes it), so Cluster Autoscaler, which never goes below MinSize, keeps them.
Setting desired capacity directly would fight the autoscaler's scale-down after
``scale-down-unneeded-time``. AWS is called through
:mod:`wbspawner.adapters.aws` (botocore's retries, errors as advice) in a worker
thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from wbspawner.adapters.aws import call, paginate
from wbspawner.naming import group_name
from wbspawner.warmer.actuator import Action, ActionError, ApplyResult, run_by_pool
from wbspawner.warmer.policy import AsgMinTarget, WarmPlan


def min_size_changes(
    wanted: Mapping[str, AsgMinTarget], groups: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Action], list[ActionError]]:
    """Return the MinSize changes from the groups as they are to the targets.

    Args:
        wanted: targets by group name.
        groups: ``describe_auto_scaling_groups`` entries by group name.

    Returns:
        The changes (the desired capacity is raised with the minimum when it is
        below) and the groups that are missing although warm nodes are wanted.
    """
    actions: list[Action] = []
    errors: list[ActionError] = []
    for name, t in sorted(wanted.items()):
        group = groups.get(name)
        if group is None:
            if t.min_size > 0:
                errors.append(
                    ActionError(pool=t.pool, action="find", message=f"no group {name}")
                )
            continue
        if int(group.get("MinSize", 0)) != t.min_size:
            body = {"min": t.min_size, "desired": int(group.get("DesiredCapacity", 0))}
            detail = f"{group.get('MinSize')} -> {t.min_size}: {t.reason}"
            actions.append(
                Action(verb="set-min", pool=t.pool, name=name, detail=detail, body=body)
            )
    return actions, errors


class AsgMinActuator:
    """``asg-min`` mode: sets each group's MinSize (and raises desired to it).

    Args:
        autoscaling: an ``autoscaling`` client from
            :func:`~wbspawner.adapters.aws.make_client` (called in a worker thread).
        cluster: cluster name in the group names.
        region: region of the zones.
    """

    def __init__(self, autoscaling: Any, cluster: str, region: str) -> None:
        self.autoscaling = autoscaling
        self.cluster = cluster
        self.region = region

    def _groups(self, names: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for i in range(0, len(names), 50):
            for group in paginate(
                self.autoscaling,
                "describe_auto_scaling_groups",
                "AutoScalingGroups",
                AutoScalingGroupNames=list(names[i : i + 50]),
            ):
                found[str(group["AutoScalingGroupName"])] = group
        return found

    async def apply(self, plan: WarmPlan, *, dry_run: bool = False) -> ApplyResult:
        """Set the MinSize of every group the plan names.

        Args:
            plan: the plan (its ``asg_min`` targets).
            dry_run: decide and report, change nothing.

        Returns:
            What was planned, done and what failed.
        """
        wanted = {
            group_name(self.cluster, t.pool, t.zone, self.region, t.capacity_type): t
            for t in plan.asg_min
        }
        try:
            groups = await asyncio.to_thread(self._groups, sorted(wanted))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            return ApplyResult(
                errors=(ActionError(pool="*", action="describe", message=str(err)),),
                dry_run=dry_run,
            )
        actions, errors = min_size_changes(wanted, groups)

        async def run(action: Action) -> None:
            assert action.body is not None
            params: dict[str, Any] = {
                "AutoScalingGroupName": action.name,
                "MinSize": action.body["min"],
            }
            if action.body["desired"] < action.body["min"]:
                params["DesiredCapacity"] = action.body["min"]
            await asyncio.to_thread(
                call,
                self.autoscaling,
                "update_auto_scaling_group",
                about=action.name,
                **params,
            )

        done, failures = await run_by_pool(actions, run, dry_run)
        return ApplyResult(
            planned=tuple(actions),
            done=tuple(done),
            errors=tuple(errors + failures),
            dry_run=dry_run,
        )
