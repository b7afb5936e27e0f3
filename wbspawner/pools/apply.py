"""Apply a pools plan: run its actions in order, idempotently.

This module owns *carrying out* a :class:`~wbspawner.pools.plan.Plan`: each
runnable action becomes one adapter call, in the plan's order (templates before
the groups that use them, deletions last). The first failure stops the run,
because later actions may depend on it; everything done so far stays done, and
running ``plan``/``apply`` again starts from what now exists, so a re-run after
a partial failure converges. An object that a lost response already created (or
deleted) counts as done.

It also owns the two checks made before applying: observe the current state
(:func:`observe`) and refuse a plan whose zones lack subnet addresses unless
forced (:func:`ensure_subnets`). The decisions themselves are in
:mod:`~wbspawner.pools.plan` and :mod:`~wbspawner.pools.subnets`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from wbspawner.adapters.aws import AlreadyExistsError, NotFoundError
from wbspawner.errors import AwsError
from wbspawner.pools import PoolsError
from wbspawner.pools.observed import ObservedAsg, ObservedLaunchTemplate, ObservedState
from wbspawner.pools.plan import Action, Plan
from wbspawner.pools.subnets import SubnetReport

log = logging.getLogger(__name__)

Status = Literal["done", "already done", "would run", "failed", "not run", "blocked"]


class Ec2Port(Protocol):
    """What apply needs from :class:`~wbspawner.pools.aws.Ec2Pools`."""

    def observe_launch_templates(
        self, cluster: str
    ) -> Mapping[str, ObservedLaunchTemplate]:
        """Return the cluster's launch templates by name."""

    def create_launch_template(self, params: Mapping[str, Any]) -> int:
        """Create a launch template."""

    def create_launch_template_version(self, params: Mapping[str, Any]) -> int:
        """Create a launch template version."""

    def set_default_version(self, name: str, version: str | None) -> str:
        """Set a launch template's default version."""

    def delete_launch_template(self, name: str) -> None:
        """Delete a launch template."""


class AsgPort(Protocol):
    """What apply needs from :class:`~wbspawner.pools.aws.AsgPools`."""

    def observe(self, cluster: str) -> Mapping[str, ObservedAsg]:
        """Return the cluster's groups by name."""

    def create(self, params: Mapping[str, Any]) -> None:
        """Create a group."""

    def update(self, params: Mapping[str, Any]) -> None:
        """Update a group."""

    def put_tags(self, tags: Sequence[Mapping[str, Any]]) -> None:
        """Create or update tags."""

    def delete_tags(self, tags: Sequence[Mapping[str, Any]]) -> None:
        """Delete tags."""

    def delete(self, name: str, force: bool) -> None:
        """Delete a group."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Adapters:
    """The AWS adapters apply works through."""

    ec2: Ec2Port
    asg: AsgPort


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What happened to one action."""

    action: Action
    status: Status
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyReport:
    """The outcome of :func:`apply`, one result per action of the plan."""

    results: tuple[ActionResult, ...]
    dry_run: bool = False

    @property
    def failed(self) -> ActionResult | None:
        """The action that failed, if one did."""
        return next((r for r in self.results if r.status == "failed"), None)

    @property
    def ok(self) -> bool:
        """Whether every runnable action is done (or would run, in a dry run)."""
        return self.failed is None

    def count(self, status: Status) -> int:
        """Return how many actions ended with this status."""
        return sum(1 for r in self.results if r.status == status)


def observe(adapters: Adapters, cluster: str) -> ObservedState:
    """Return the launch templates and groups tagged with this cluster.

    Args:
        adapters: the AWS adapters.
        cluster: cluster name.

    Returns:
        The observed state.
    """
    return ObservedState(
        launch_templates=dict(adapters.ec2.observe_launch_templates(cluster)),
        asgs=dict(adapters.asg.observe(cluster)),
    )


def ensure_subnets(report: SubnetReport, *, force: bool = False) -> None:
    """Refuse to apply when a zone's subnets lack addresses, unless forced.

    Args:
        report: the subnet check.
        force: apply anyway.

    Raises:
        PoolsError: a zone is short and ``force`` is false.
    """
    if report.ok or force:
        return
    short = "; ".join(
        f"{z.zone} has {z.free_ips} free addresses but its groups may need {z.needed}"
        for z in report.short
    )
    raise PoolsError(
        f"subnets too small: {short}. Add or enlarge subnets, lower max_nodes, "
        "or pass --force to apply anyway."
    )


def run_action(action: Action, adapters: Adapters) -> str:
    """Make the one adapter call an action stands for.

    Args:
        action: a runnable action.
        adapters: the AWS adapters.

    Returns:
        A short detail for the report (e.g. the version created).
    """
    p = action.params
    ec2, asg = adapters.ec2, adapters.asg
    match action.kind:
        case "create-launch-template":
            return f"version {ec2.create_launch_template(p)}"
        case "create-launch-template-version":
            return f"version {ec2.create_launch_template_version(p)}"
        case "set-default-version":
            version = p.get("DefaultVersion")
            return f"default {ec2.set_default_version(action.target, version)}"
        case "create-asg":
            asg.create(p)
        case "update-asg":
            asg.update(p)
        case "update-tags":
            asg.put_tags(p["Tags"])
        case "delete-tags":
            asg.delete_tags(p["Tags"])
        case "delete-asg":
            asg.delete(action.target, bool(p.get("ForceDelete")))
        case "delete-launch-template":
            ec2.delete_launch_template(action.target)
    return ""


def _run_one(action: Action, adapters: Adapters) -> ActionResult:
    try:
        detail = run_action(action, adapters)
    except AlreadyExistsError:
        # A lost response or an interrupted run created it; the next plan
        # compares its content like any other existing object.
        return ActionResult(action=action, status="already done", detail="exists")
    except NotFoundError as err:
        if action.kind.startswith("delete"):
            return ActionResult(action=action, status="already done", detail="gone")
        return ActionResult(action=action, status="failed", detail=err.message)
    except AwsError as err:
        log.warning("pools: %s %s failed: %s", action.kind, action.target, err.message)
        return ActionResult(action=action, status="failed", detail=err.message)
    log.info("pools: %s %s %s", action.kind, action.target, detail)
    return ActionResult(action=action, status="done", detail=detail)


def apply_steps(
    plan: Plan, adapters: Adapters, *, dry_run: bool = False
) -> Iterator[ActionResult]:
    """Run a plan's actions in order, yielding each result as it is known.

    A shell shows progress from it (one result per action of the plan, in the
    plan's order, each yielded right after its AWS call); :func:`apply` collects
    it. The actions run only as the iterator is consumed.

    Args:
        plan: the plan (from :func:`~wbspawner.pools.plan.make_plan`).
        adapters: the AWS adapters.
        dry_run: call nothing; report what would run.

    Yields:
        One result per action: blocked actions stay ``blocked``; after a failure
        the rest are ``not run``.
    """
    failed = False
    for action in plan.actions:
        if action.blocked is not None:
            yield ActionResult(action=action, status="blocked", detail=action.blocked)
        elif failed:
            yield ActionResult(action=action, status="not run")
        elif dry_run:
            yield ActionResult(action=action, status="would run")
        else:
            result = _run_one(action, adapters)
            failed = result.status == "failed"
            yield result


def apply(plan: Plan, adapters: Adapters, *, dry_run: bool = False) -> ApplyReport:
    """Run a plan's actions in order; stop at the first failure.

    Args:
        plan: the plan (from :func:`~wbspawner.pools.plan.make_plan`).
        adapters: the AWS adapters.
        dry_run: call nothing; report what would run.

    Returns:
        One result per action (see :func:`apply_steps`).
    """
    results = tuple(apply_steps(plan, adapters, dry_run=dry_run))
    return ApplyReport(results=results, dry_run=dry_run)
