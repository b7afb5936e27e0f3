"""The ``wbspawner pools plan | apply | render`` subcommands.

This module owns how an admin drives the node pools from the shell: gather the
cluster's facts (EKS endpoint and CA, node subnets, EKS AMIs from SSM or pinned
with ``--ami``), compute the desired state from the profiles, observe AWS (both
narrowed to some groups with ``--pool``/``--zone``), and print the plan and the
subnet check as tables (or JSON); ``apply`` refuses small
subnets unless ``--force``, then runs the plan; ``render`` writes the eksctl,
Karpenter or Cluster Autoscaler configuration of the same pools, no AWS needed.

The decisions live in :mod:`wbspawner.pools`; this module only wires and prints.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wbspawner.adapters.aws import make_clients
from wbspawner.cli.progress import Steps
from wbspawner.cli.tables import fitted
from wbspawner.cli.terminal import write_text
from wbspawner.cli.util import (
    CliContext,
    add_catalog_option,
    add_command_group,
    add_endpoint_option,
    add_json_option,
    add_profiles_option,
    endpoint_url,
    print_json,
    profiles_from_args,
)
from wbspawner.model import Catalog, Profiles
from wbspawner.pools import PoolsError
from wbspawner.pools.apply import (
    ActionResult,
    Adapters,
    ApplyReport,
    apply_steps,
    ensure_subnets,
    observe,
)
from wbspawner.pools.autoscaler_values import render_values
from wbspawner.pools.aws import AsgPools, Ec2Pools
from wbspawner.pools.aws_cluster import EksClusters, SsmAmis
from wbspawner.pools.desired import ClusterSpec, DesiredState, desired_state
from wbspawner.pools.nodes import required_ami_parameters
from wbspawner.pools.plan import Plan, make_plan, only_groups
from wbspawner.pools.render import eksctl_config, karpenter_manifests, to_yaml
from wbspawner.pools.report import (
    plan_table,
    plan_to_json,
    report_table,
    result_line,
)
from wbspawner.pools.subnets import (
    CniModel,
    SubnetInfo,
    SubnetReport,
    check_subnets,
    subnet_report_json,
    subnet_table,
)

CLUSTER_ENV = "WBSPAWNER_CLUSTER"
"""Default of ``--cluster``."""
DEFAULT_CLUSTER = "wbspawner"
DEFAULT_K8S = "1.33"
FORMATS = ("eksctl", "karpenter", "autoscaler")
POOL_SERVICES = ("ec2", "autoscaling", "ssm", "eks")
"""The AWS services ``pools plan`` and ``pools apply`` call."""


def _common(p: argparse.ArgumentParser) -> None:
    add_profiles_option(p)
    add_catalog_option(p)
    p.add_argument(
        "--cluster",
        help=f"EKS cluster name (default: ${CLUSTER_ENV} or {DEFAULT_CLUSTER})",
    )
    p.add_argument(
        "--k8s-version",
        default=DEFAULT_K8S,
        metavar="X.Y",
        help=f"Kubernetes minor (default {DEFAULT_K8S})",
    )


_AWS_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--region", {"help": "AWS region (default: the profiles' cost.region)"}),
    (
        "--pool",
        {
            "action": "append",
            "metavar": "NAME",
            "help": "only this pool's groups (repeatable; others are left alone)",
        },
    ),
    (
        "--zone",
        {
            "action": "append",
            "metavar": "ZONE",
            "help": "only the groups in this zone (repeatable)",
        },
    ),
    (
        "--allow-delete",
        {
            "action": "store_true",
            "help": "delete groups and "
            "templates no longer in the profiles, even groups with nodes",
        },
    ),
    (
        "--instance-profile",
        {
            "metavar": "NAME|ARN",
            "help": "IAM instance profile "
            "of the nodes (default wbspawner-<cluster>-node)",
        },
    ),
    (
        "--subnet",
        {
            "action": "append",
            "metavar": "ID",
            "help": "node subnet "
            "(repeatable; default: those tagged kubernetes.io/cluster/<cluster>)",
        },
    ),
    (
        "--security-group",
        {
            "action": "append",
            "metavar": "ID",
            "help": "extra "
            "node security group (repeatable; the cluster's is always used)",
        },
    ),
    (
        "--ami",
        {
            "action": "append",
            "metavar": "KIND=AMI",
            "help": "pin an AMI "
            "instead of SSM: standard=ami-…, nvidia=ami-…, or <SSM parameter>=ami-…",
        },
    ),
    (
        "--api-endpoint",
        {
            "metavar": "URL",
            "help": "API server URL (no "
            "eks:DescribeCluster; needs --certificate-authority)",
        },
    ),
    ("--certificate-authority", {"metavar": "BASE64", "help": "cluster CA"}),
    ("--service-cidr", {"default": "10.100.0.0/16", "help": "with --api-endpoint"}),
    (
        "--cni-warm-eni-target",
        {
            "type": int,
            "default": 1,
            "metavar": "N",
            "help": "the VPC CNI's WARM_ENI_TARGET, for the subnet check",
        },
    ),
    ("--cni-warm-ip-target", {"type": int, "metavar": "N", "help": "WARM_IP_TARGET"}),
    (
        "--cni-minimum-ip-target",
        {"type": int, "metavar": "N", "help": "MINIMUM_IP_TARGET"},
    ),
)


def _aws_options(p: argparse.ArgumentParser) -> None:
    _common(p)
    add_json_option(p)
    add_endpoint_option(p)
    for flag, options in _AWS_OPTIONS:
        p.add_argument(flag, **options)


def register(subparsers: Any) -> None:
    """Add ``pools plan``, ``pools apply`` and ``pools render``.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.
    """
    sub = add_command_group(
        subparsers,
        "pools",
        help="plan/apply node pools on AWS; render eksctl, Karpenter, autoscaler",
        description="Launch templates and Auto Scaling groups per pool × zone × "
        "capacity type, from the profiles.",
    )
    p = sub.add_parser("plan", help="show what apply would change")
    _aws_options(p)
    p.set_defaults(run=run_plan)
    p = sub.add_parser("apply", help="create or update the pools' groups")
    _aws_options(p)
    p.add_argument("--dry-run", action="store_true", help="change nothing")
    p.add_argument(
        "--force", action="store_true", help="apply even when the subnet check fails"
    )
    p.set_defaults(run=run_apply)
    p = sub.add_parser("render", help="eksctl, Karpenter or autoscaler config")
    _common(p)
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--node-role", help="Karpenter node IAM role")
    p.add_argument(
        "--ami-alias",
        default="al2023@latest",
        help="Karpenter AMI alias (pin e.g. al2023@v20260801)",
    )
    p.set_defaults(run=run_render)


def _cluster_name(args: argparse.Namespace, ctx: CliContext) -> str:
    return str(args.cluster or ctx.environ.get(CLUSTER_ENV) or DEFAULT_CLUSTER)


# ----------------------------------------------------------------------- gathering


@dataclass(frozen=True, slots=True)
class _World:
    profiles: Profiles
    desired: DesiredState
    plan: Plan
    subnets: SubnetReport
    adapters: Adapters
    asg: AsgPools


def _pinned_amis(args: argparse.Namespace, needed: tuple[str, ...]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for item in args.ami or []:
        kind, sep, ami = item.partition("=")
        if not sep or not ami:
            raise PoolsError(f"--ami {item}: expected KIND=AMI, e.g. nvidia=ami-0abc")
        matches = [n for n in needed if n == kind or f"/{kind}/recommended/" in n]
        if not matches:
            raise PoolsError(f"--ami {item}: no pool needs a '{kind}' AMI")
        pinned.update(dict.fromkeys(matches, ami))
    return pinned


def _cluster(
    args: argparse.Namespace,
    name: str,
    region: str,
    clients: dict[str, Any],
    subnets: list[SubnetInfo],
    amis: dict[str, str],
) -> ClusterSpec:
    groups = list(args.security_group or [])
    if args.api_endpoint:
        if not args.certificate_authority:
            raise PoolsError("--api-endpoint needs --certificate-authority")
        endpoint, ca, cidr = (
            args.api_endpoint,
            args.certificate_authority,
            args.service_cidr,
        )
    else:
        info = EksClusters(clients["eks"]).describe(name)
        endpoint, ca, cidr = (
            info.endpoint,
            info.certificate_authority,
            info.service_cidr,
        )
        groups = [*info.security_group_ids, *groups]
    by_zone: dict[str, list[str]] = {}
    for s in subnets:
        by_zone.setdefault(s.zone, []).append(s.id)
    return ClusterSpec(
        name=name,
        region=region,
        k8s_version=args.k8s_version,
        endpoint=endpoint,
        certificate_authority=ca,
        service_cidr=cidr,
        subnets={z: tuple(ids) for z, ids in by_zone.items()},
        security_group_ids=tuple(dict.fromkeys(groups)),
        instance_profile=args.instance_profile or f"wbspawner-{name}-node",
        amis=amis,
    )


def _gather(args: argparse.Namespace, ctx: CliContext, steps: Steps) -> _World:
    with steps.phase("Reading the profiles"):
        profiles, catalog = profiles_from_args(args, ctx)
    name = _cluster_name(args, ctx)
    region = args.region or profiles.cost.region
    clients = make_clients(POOL_SERVICES, region, endpoint_url(args, ctx))
    ec2, asg = Ec2Pools(clients["ec2"]), AsgPools(clients["autoscaling"])
    with steps.phase(f"Finding the node subnets of cluster {name} in {region}"):
        subnets = (
            ec2.subnets(ids=args.subnet) if args.subnet else ec2.subnets(cluster=name)
        )
    if not subnets:
        raise PoolsError(
            f"no node subnets for cluster {name}: tag them "
            f"kubernetes.io/cluster/{name}=shared or pass --subnet"
        )
    needed = required_ami_parameters(profiles, catalog, args.k8s_version)
    amis = _pinned_amis(args, needed)
    missing = [n for n in needed if n not in amis]
    with steps.phase("Looking up the EKS AMIs and the cluster"):
        amis.update(SsmAmis(clients["ssm"], region).resolve(missing))
        cluster = _cluster(args, name, region, clients, subnets, amis)
    adapters = Adapters(ec2=ec2, asg=asg)
    with steps.phase("Reading the launch templates and groups there are"):
        observed_all = observe(adapters, name)
    desired, observed = only_groups(
        desired_state(profiles, catalog, cluster),
        observed_all,
        pools=args.pool or (),
        zones=args.zone or (),
    )
    plan = make_plan(desired, observed, allow_delete=args.allow_delete)
    model = CniModel(
        warm_eni_target=args.cni_warm_eni_target,
        warm_ip_target=args.cni_warm_ip_target,
        minimum_ip_target=args.cni_minimum_ip_target,
    )
    current = {n: a.instances for n, a in observed.asgs.items()}
    report = check_subnets(desired, profiles, catalog, subnets, current, model)
    return _World(profiles, desired, plan, report, adapters, asg)


def _run_with_progress(world: _World, steps: Steps, *, dry_run: bool) -> ApplyReport:
    """Apply the plan, showing each action's outcome as it comes."""
    actions = world.plan.actions
    results: list[ActionResult] = []
    if not actions:
        return ApplyReport(results=(), dry_run=dry_run)
    verb = "Checking" if dry_run else "Applying"
    title = f"{verb} {len(actions)} action(s) on cluster {world.plan.cluster}"
    with steps.bar(title, len(actions)) as bar:
        for result in apply_steps(world.plan, world.adapters, dry_run=dry_run):
            results.append(result)
            following = actions[len(results)] if len(results) < len(actions) else None
            bar.done(
                result_line(result),
                failed=result.status == "failed",
                now=f"{following.kind} {following.target}" if following else "",
            )
    return ApplyReport(results=tuple(results), dry_run=dry_run)


def _print_plan(ctx: CliContext, world: _World) -> None:
    layout = fitted(ctx)
    write_text(ctx, plan_table(world.plan, layout))
    ctx.print()
    write_text(ctx, subnet_table(world.subnets, layout))


# ------------------------------------------------------------------------ commands


def run_plan(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the plan and the subnet check.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0 (a plan is a report, whatever it says).
    """
    world = _gather(args, ctx, Steps(ctx.err, ctx.environ))
    if args.json:
        print_json(
            ctx,
            {
                "plan": plan_to_json(world.plan),
                "subnets": subnet_report_json(world.subnets),
            },
        )
        return 0
    _print_plan(ctx, world)
    return 0


def run_apply(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the plan and subnet check, then apply the plan.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0 when every action is done, 1 when one failed (or subnets are short).
    """
    steps = Steps(ctx.err, ctx.environ)
    world = _gather(args, ctx, steps)
    if not args.json:
        _print_plan(ctx, world)
        ctx.print()
    ensure_subnets(world.subnets, force=args.force)
    report = _run_with_progress(world, steps, dry_run=args.dry_run)
    warnings: list[str] = []
    if not args.dry_run:
        touched = {r.action.target for r in report.results if r.status == "done"}
        starting = [
            g.asg.name
            for g in world.desired.groups
            if g.asg.name in touched and g.asg.min_size > 0
        ]
        warnings = world.asg.scaling_failures(starting)
    if args.json:
        results = [
            {
                "kind": r.action.kind,
                "target": r.action.target,
                "status": r.status,
                "detail": r.detail,
            }
            for r in report.results
        ]
        print_json(
            ctx,
            {
                "plan": plan_to_json(world.plan),
                "subnets": subnet_report_json(world.subnets),
                "results": results,
                "warnings": warnings,
            },
        )
    else:
        write_text(ctx, report_table(report))
        for w in warnings:
            ctx.note(f"warning: {w}")
    return 0 if report.ok else 1


def render_text(
    fmt: str,
    profiles: Profiles,
    catalog: Catalog,
    args: argparse.Namespace,
    cluster: str,
) -> str:
    """Return the ``render`` output for a format.

    Args:
        fmt: ``eksctl``, ``karpenter`` or ``autoscaler``.
        profiles: the profiles.
        catalog: the instance catalogue.
        args: parsed arguments (``k8s_version``, ``node_role``, ``ami_alias``).
        cluster: cluster name.

    Returns:
        YAML text.
    """
    if fmt == "eksctl":
        return to_yaml([eksctl_config(profiles, cluster, args.k8s_version)])
    if fmt == "karpenter":
        return to_yaml(
            karpenter_manifests(
                profiles,
                catalog,
                cluster,
                role=args.node_role,
                ami_alias=args.ami_alias,
            )
        )
    return render_values(profiles, cluster, args.k8s_version)


def run_render(args: argparse.Namespace, ctx: CliContext) -> int:
    """Write the eksctl, Karpenter or Cluster Autoscaler configuration.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0.
    """
    profiles, catalog = profiles_from_args(args, ctx)
    text = render_text(args.format, profiles, catalog, args, _cluster_name(args, ctx))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        ctx.note(f"wrote {args.output}")
    else:
        ctx.out.write(text)
    return 0
