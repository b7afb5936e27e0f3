"""The ``data`` subcommands of ``wbspawner``: plan and apply data access.

``data plan`` shows every grant that changes per group (added, widened,
narrowed, removed) and the IAM and Kubernetes actions that make it so; ``data
apply`` shows the same and runs them (:mod:`wbspawner.data`). Both read the
roles of the cluster in IAM and wbspawner's ServiceAccounts, volumes and claims
in the hub's namespace (``--namespace``, else ``$WBSPAWNER_NAMESPACE``, else
the kubeconfig context's, else ``jupyterhub``) and the Dask namespace
(``--dask-namespace``, else ``$WBSPAWNER_DASK_NAMESPACE``; none: Dask pods
run in the hub's namespace). The account comes from STS and the OIDC issuer
from EKS unless given.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from wbspawner.adapters.aws import make_clients
from wbspawner.cli import kubeargs
from wbspawner.cli.util import (
    CliContext,
    add_catalog_option,
    add_command_group,
    add_endpoint_option,
    add_json_option,
    add_profiles_option,
    endpoint_url,
    format_table,
    print_json,
    profiles_from_args,
)
from wbspawner.data import DataAccessError
from wbspawner.data.apply import ActionResult, apply_plan
from wbspawner.data.observe import check_oidc_provider, find_target, observe
from wbspawner.data.plan import DataPlan, plan
from wbspawner.data.state import Target
from wbspawner.model import Profiles

CLUSTER_ENV = "WBSPAWNER_CLUSTER"
DASK_NAMESPACE_ENV = "WBSPAWNER_DASK_NAMESPACE"
RBAC_HINT = (
    "the account in use needs get/list/create/patch/delete on serviceaccounts, "
    "persistentvolumeclaims (both namespaces) and persistentvolumes"
)


def register(subparsers: Any) -> None:
    """Add ``data plan | apply`` to the command line.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.
    """
    sub = add_command_group(
        subparsers,
        "data",
        help="plan/apply data access: IAM roles, ServiceAccounts, EFS volumes",
        description="S3 buckets and shared volumes per group, from the profiles' "
        "data section: one IAM role and ServiceAccount per distinct set of "
        "grants (IRSA), static volumes for EFS shares.",
    )
    p = sub.add_parser("plan", help="show the grants that change and the actions")
    _common(p)
    p.set_defaults(run=run_plan)
    p = sub.add_parser("apply", help="make roles, policies and ServiceAccounts so")
    _common(p)
    p.set_defaults(run=run_apply)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", help=f"EKS cluster name (default ${CLUSTER_ENV})")
    p.add_argument("--oidc-issuer", help="OIDC issuer URL (default: from EKS)")
    p.add_argument("--account-id", help="AWS account (default: from STS)")
    kubeargs.add_kube_options(p, "the hub's pods")
    p.add_argument(
        "--dask-namespace",
        help=f"namespace of Dask pods, when not the hub's (default "
        f"${DASK_NAMESPACE_ENV})",
    )
    add_endpoint_option(p)
    add_profiles_option(p)
    add_catalog_option(p)
    add_json_option(p)


def _namespaces(args: argparse.Namespace, ctx: CliContext) -> tuple[str, ...]:
    hub = kubeargs.namespace(args, ctx)
    dask = args.dask_namespace or ctx.environ.get(DASK_NAMESPACE_ENV)
    return (hub,) if not dask or dask == hub else (hub, dask)


def _target(
    args: argparse.Namespace, ctx: CliContext, profiles: Profiles
) -> tuple[Target, dict[str, Any]]:
    cluster = args.cluster or ctx.environ.get(CLUSTER_ENV)
    if not cluster:
        raise DataAccessError(f"name the EKS cluster: --cluster or ${CLUSTER_ENV}")
    region = kubeargs.region(args, ctx, profiles)
    clients = make_clients(("sts", "eks", "iam"), region, endpoint_url(args, ctx))
    target = find_target(
        clients,
        cluster,
        _namespaces(args, ctx),
        account=args.account_id,
        issuer=args.oidc_issuer,
    )
    return target, clients


async def _plan(
    args: argparse.Namespace, ctx: CliContext, *, run: bool
) -> tuple[DataPlan, Target, list[ActionResult] | None, str | None]:
    profiles, _ = profiles_from_args(args, ctx)
    target, clients = _target(args, ctx, profiles)
    oidc = await asyncio.to_thread(check_oidc_provider, clients["iam"], target)
    async with kubeargs.connect(args, ctx, RBAC_HINT) as kube:
        the_plan = plan(
            profiles.data, target, await observe(clients["iam"], kube, target)
        )
        if not run or the_plan.empty:
            return the_plan, target, None, oidc
        if oidc is not None:
            raise DataAccessError(oidc)
        report = await apply_plan(the_plan, clients["iam"], kube)
        return the_plan, target, list(report.results), oidc


def plan_lines(the_plan: DataPlan, target: Target) -> list[str]:
    """Return a plan as text: grant changes per group, then the actions.

    Args:
        the_plan: the plan.
        target: where it applies.

    Returns:
        Lines of text.
    """
    where = f"cluster {target.cluster}, namespaces {', '.join(target.namespaces)}"
    if the_plan.empty:
        sets = len(the_plan.sets)
        return [f"data access is up to date ({where}): {sets} access sets; no change"]
    lines = [f"data access plan ({where})", ""]
    if the_plan.changes:
        rows = [
            [
                c.group,
                c.where,
                c.kind.upper() if c.kind == "widened" else c.kind,
                c.before or "-",
                c.after or "-",
            ]
            for c in the_plan.changes
        ]
        lines += ["grants that change:"]
        lines += [
            "  " + r
            for r in format_table(["GROUP", "S3", "CHANGE", "BEFORE", "AFTER"], rows)
        ]
        lines.append("")
    lines += ["actions:"]
    lines += [
        "  " + r
        for r in format_table(
            ["ACTION", "OBJECT", "DETAIL"],
            [[a.kind, a.target, a.detail] for a in the_plan.actions],
        )
    ]
    return lines


def plan_as_dict(the_plan: DataPlan) -> dict[str, Any]:
    """Return a plan as JSON-ready data (``--json``)."""
    return {
        "grant_changes": [
            {
                "group": c.group,
                "s3": c.where,
                "change": c.kind,
                "before": c.before,
                "after": c.after,
            }
            for c in the_plan.changes
        ],
        "actions": [
            {"kind": a.kind, "target": a.target, "detail": a.detail}
            for a in the_plan.actions
        ],
        "access_sets": [
            {
                "key": s.key,
                "groups": list(s.groups),
                "grants": [
                    {"bucket": g.bucket, "prefix": g.prefix, "access": g.access}
                    for g in s.grants
                ],
            }
            for s in the_plan.sets
        ],
    }


def _notes(ctx: CliContext, the_plan: DataPlan, oidc: str | None) -> None:
    widened = [c for c in the_plan.changes if c.kind in ("added", "widened")]
    if widened:
        ctx.note(f"note: {len(widened)} grant(s) give groups more access")
    if oidc is not None:
        ctx.note(f"warning: {oidc}")


def run_plan(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the data access plan."""
    the_plan, target, _, oidc = asyncio.run(_plan(args, ctx, run=False))
    if args.json:
        print_json(ctx, plan_as_dict(the_plan))
    else:
        for line in plan_lines(the_plan, target):
            ctx.print(line)
    _notes(ctx, the_plan, oidc)
    return 0


def run_apply(args: argparse.Namespace, ctx: CliContext) -> int:
    """Show the plan, run it, and print each action's outcome."""
    the_plan, target, results, oidc = asyncio.run(_plan(args, ctx, run=True))
    if args.json:
        data = plan_as_dict(the_plan)
        data["results"] = [
            {
                "kind": r.action.kind,
                "target": r.action.target,
                "status": r.status,
                "detail": r.detail,
            }
            for r in results or []
        ]
        print_json(ctx, data)
    else:
        for line in plan_lines(the_plan, target):
            ctx.print(line)
        if results:
            ctx.print("")
            for r in results:
                extra = f": {r.detail}" if r.detail else ""
                ctx.print(f"{r.status:>12}  {r.action.kind} {r.action.target}{extra}")
    _notes(ctx, the_plan, oidc)
    failed = next((r for r in results or [] if r.status == "failed"), None)
    if failed is not None:
        ctx.note(f"error: {failed.action.kind} {failed.action.target}: {failed.detail}")
        ctx.note("fix the cause and run `wbspawner data apply` again (it is safe)")
        return 1
    return 0
