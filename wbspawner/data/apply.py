"""Carry out a data plan: IAM calls and Kubernetes requests, in the plan's order.

This module owns the writing half of ``wbspawner data apply``: each action of a
:class:`~wbspawner.data.plan.DataPlan` becomes one or two calls (a role's
deletion first deletes its inline policies). An object a lost answer already
made (or removed) counts as done, so a re-run after a failure converges; the
first failure stops the run, because later actions may need earlier ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from wbspawner.adapters.aws import AlreadyExistsError, NotFoundError, call, paginate
from wbspawner.adapters.kube import Kube, api_path
from wbspawner.data.plan import DataPlan
from wbspawner.data.state import Action
from wbspawner.errors import AwsError, KubeError

Status = Literal["done", "already done", "failed", "not run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What happened to one action."""

    action: Action
    status: Status
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyReport:
    """One result per action of the plan."""

    results: tuple[ActionResult, ...]

    @property
    def failed(self) -> ActionResult | None:
        """The action that failed, if one did."""
        return next((r for r in self.results if r.status == "failed"), None)


def _iam(iam_client: Any, action: Action) -> bool:
    """Run one IAM action; return ``False`` when it was already done."""
    p, name = action.params, action.target
    try:
        if action.kind == "create-role":
            call(iam_client, "create_role", about=name, **p)
        elif action.kind == "put-role-policy":
            call(iam_client, "put_role_policy", about=name, **p)
        elif action.kind == "update-trust":
            call(iam_client, "update_assume_role_policy", about=name, **p)
        elif action.kind == "tag-role":
            call(iam_client, "tag_role", about=name, RoleName=name, Tags=p["Tags"])
            if p.get("Untag"):
                call(
                    iam_client,
                    "untag_role",
                    about=name,
                    RoleName=name,
                    TagKeys=p["Untag"],
                )
        elif action.kind == "delete-role":
            for policy in list(
                paginate(
                    iam_client,
                    "list_role_policies",
                    "PolicyNames",
                    about=name,
                    RoleName=name,
                )
            ):
                call(
                    iam_client,
                    "delete_role_policy",
                    about=name,
                    RoleName=name,
                    PolicyName=policy,
                )
            call(iam_client, "delete_role", about=name, RoleName=name)
    except (AlreadyExistsError, NotFoundError):
        return False
    return True


async def _kube(kube: Kube, action: Action) -> bool:
    """Run one Kubernetes action; return ``False`` when it was already done."""
    namespace, _, name = action.target.rpartition("/")
    ns = namespace or None
    resource = {
        "service-account": "serviceaccounts",
        "claim": "persistentvolumeclaims",
        "volume": "persistentvolumes",
    }[action.kind.split("-", 1)[1]]
    if action.kind.startswith("create-"):
        try:
            await kube.create(api_path(resource, ns), dict(action.params))
        except KubeError as err:
            if err.status == 409:
                return False
            raise
        return True
    if action.kind.startswith("update-"):
        await kube.patch(api_path(resource, ns, name), dict(action.params))
        return True
    return await kube.delete(api_path(resource, ns, name))


def is_iam(action: Action) -> bool:
    """Return whether an action is an IAM call (else a Kubernetes request)."""
    return action.kind.endswith("-role") or action.kind in (
        "put-role-policy",
        "update-trust",
    )


async def apply_plan(
    plan: DataPlan,
    iam_client: Any,
    kube: Kube,
    progress: Callable[[ActionResult], None] | None = None,
) -> ApplyReport:
    """Run a plan's actions in order; stop at the first failure.

    Args:
        plan: the plan.
        iam_client: a boto3 IAM client.
        kube: the Kubernetes adapter.
        progress: told each result as it comes.

    Returns:
        The report: ``done``/``already done`` up to a ``failed`` one, then
        ``not run``.
    """
    results: list[ActionResult] = []
    failed = False
    for action in plan.actions:
        if failed:
            result = ActionResult(action=action, status="not run")
        else:
            try:
                if is_iam(action):
                    ran = await asyncio.to_thread(_iam, iam_client, action)
                else:
                    ran = await _kube(kube, action)
                result = ActionResult(
                    action=action, status="done" if ran else "already done"
                )
            except (AwsError, KubeError) as err:
                failed = True
                message = getattr(err, "message", None) or str(err)
                result = ActionResult(action=action, status="failed", detail=message)
        results.append(result)
        if progress is not None:
            progress(result)
    return ApplyReport(results=tuple(results))
