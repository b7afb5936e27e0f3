"""The ``home`` subcommands of ``wbspawner``: list, show, move and gc users' homes.

This module owns how admins see and move homes from a shell:

- ``home list``: every home claim with its PV, EBS volume, zone, size, status and
  last move; a volume EC2 does not know is flagged (never deleted);
- ``home show USER``: one home in detail, with any unfinished move and the old
  volumes kept after moves;
- ``home move USER --zone Z [--dry-run] [--yes]``: move a home to another zone
  (:mod:`wbspawner.homes.move`); run it again to resume an interrupted move;
- ``home gc [--dry-run]``: delete old volumes and snapshots past their retention.

Kubernetes is reached through ``--kubeconfig`` (default ``$KUBECONFIG`` or
``~/.kube/config``, or the pod's service account inside a cluster) with
:class:`wbspawner.adapters.kube.Kube`; the namespace is ``--namespace``, else
``$WBSPAWNER_NAMESPACE``, else the one the kubeconfig's context names (as
``kubectl`` does), else ``jupyterhub``. AWS is reached through the usual
credential chain, ``--region`` and ``--endpoint-url`` (or ``$AWS_ENDPOINT_URL``).
The homes code is async; each command runs it with :func:`asyncio.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from wbspawner.adapters.aws import make_client
from wbspawner.cli import kubeargs
from wbspawner.cli.progress import Steps
from wbspawner.cli.tables import print_table
from wbspawner.cli.util import (
    CliContext,
    add_catalog_option,
    add_command_group,
    add_endpoint_option,
    add_json_option,
    add_profiles_option,
    endpoint_url,
    exists,
    print_json,
    profiles_from_args,
    profiles_paths,
)
from wbspawner.errors import AwsError
from wbspawner.homes import MoveRefusedError
from wbspawner.homes.context import STEPS, MoveRequest, StepReport
from wbspawner.homes.gc import GcItem, gc_expired
from wbspawner.homes.move import HomeMover
from wbspawner.homes.policy import zone_of_pv
from wbspawner.homes.records import (
    annotations_of,
    claim_volume_name,
    phase_of,
    volume_handle,
)
from wbspawner.homes.views import (
    CLAIM_PREFIX,
    MovePlan,
    describe,
    describe_volume,
    home_rows,
    kept_volumes,
    plan_move,
)
from wbspawner.homes.volumes import Volumes
from wbspawner.model import HomeSettings, Profiles
from wbspawner.spawn.manifests import HOME_PVC_TEMPLATE

RBAC_HINT = (
    "the account in use needs get/list/create/patch/delete on persistentvolumes "
    "and persistentvolumeclaims and list on pods"
)
"""Added to the message when the Kubernetes API refuses a request (401/403)."""


def register(subparsers: Any) -> None:
    """Add ``home list | show | move | gc`` to the command line.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.
    """
    sub = add_command_group(
        subparsers,
        "home",
        help="list, show and move users' home volumes",
        description="Users' homes are EBS volumes in one availability zone. List "
        "them, show one, move one to another zone, delete old copies.",
    )
    p = sub.add_parser("list", help="list every home with its volume and zone")
    _common(p)
    add_json_option(p)
    p.set_defaults(run=run_list)
    p = sub.add_parser("show", help="show one user's home")
    p.add_argument("user", help="user name")
    _common(p)
    add_json_option(p)
    p.set_defaults(run=run_show)
    p = sub.add_parser(
        "move",
        help="move a user's home to another zone (by snapshot; resumable)",
        description="Move a stopped user's home to another availability zone: "
        "Retain, snapshot, new volume in the zone, static PV, claim rebound, "
        "verified. The old volume and snapshot are kept for the retention. Run "
        "the same command again to resume an interrupted move.",
    )
    p.add_argument("user", help="user name")
    p.add_argument("--zone", required=True, help="target availability zone")
    p.add_argument("--dry-run", action="store_true", help="only show the plan")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--retention-days",
        type=int,
        help="keep the old volume this long "
        "(default: homes.retention_days of the profiles)",
    )
    _common(p)
    p.set_defaults(run=run_move)
    p = sub.add_parser("gc", help="delete old volumes and snapshots past retention")
    p.add_argument("--dry-run", action="store_true", help="only list what would go")
    _common(p)
    add_json_option(p)
    p.set_defaults(run=run_gc)


def _common(p: argparse.ArgumentParser) -> None:
    kubeargs.add_kube_options(p, "homes")
    p.add_argument(
        "--claim", help="claim name (default: home-<user> as KubeSpawner slugs it)"
    )
    add_endpoint_option(p)
    add_profiles_option(p)
    add_catalog_option(p)


# ------------------------------------------------------------------- adapters
def _profiles(args: argparse.Namespace, ctx: CliContext) -> Profiles | None:
    paths, explicit = profiles_paths(args, ctx)
    if not explicit and not exists(paths):
        return None
    return profiles_from_args(args, ctx)[0]


def _volumes(
    args: argparse.Namespace, ctx: CliContext, profiles: Profiles | None
) -> Volumes:
    region = kubeargs.region(args, ctx, profiles)
    return Volumes(make_client("ec2", region, endpoint_url(args, ctx)))


def _claim(args: argparse.Namespace, user: str) -> str:
    """Return the user's claim name as KubeSpawner names it (``slug_scheme`` safe)."""
    if args.claim:
        return str(args.claim)
    # KubeSpawner 7 expands {username} to this slug ("Alice" -> "alice---3bc51062").
    from kubespawner.slugs import safe_slug

    return HOME_PVC_TEMPLATE.format(username=safe_slug(user, max_length=48))


# ----------------------------------------------------------------------- list
def run_list(args: argparse.Namespace, ctx: CliContext) -> int:
    """List every home of the namespace.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0.
    """
    return asyncio.run(_list(args, ctx))


async def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    namespace = kubeargs.namespace(args, ctx)
    volumes = _volumes(args, ctx, _profiles(args, ctx))
    async with kubeargs.connect(args, ctx, RBAC_HINT) as kube:
        claims = await kube.list_pvcs(namespace)
        try:
            rows = await home_rows(kube, claims, namespace, volumes)
        except AwsError as err:  # the claims are still worth seeing
            ctx.note(f"warning: the volumes were not checked in EC2: {err}")
            rows = await home_rows(kube, claims, namespace)
    if args.json:
        print_json(ctx, [asdict(r) for r in rows])
        return 0
    headers = ("USER", "PVC", "PV", "VOLUME", "ZONE", "SIZE", "STATUS", "LAST MOVE")
    cells = [
        (r.user, r.claim, r.pv, r.volume_id, r.zone, r.size, r.status, r.last_move)
        for r in rows
    ]
    print_table(ctx, headers, cells)
    if not rows:
        ctx.note(f"no home claims ({CLAIM_PREFIX}*) in namespace {namespace}")
    for r in rows:
        if r.volume_missing:
            ctx.note(
                f"warning: {r.user}'s home: EBS volume {r.volume_id} does not exist "
                f"in EC2 (PV {r.pv}); the claim and the PV are kept. Restore the "
                "volume from a snapshot, or recreate the home only once it is lost."
            )
    return 0


# ----------------------------------------------------------------------- show
def run_show(args: argparse.Namespace, ctx: CliContext) -> int:
    """Show one user's home.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0, or 1 when the user has no home claim.
    """
    return asyncio.run(_show(args, ctx))


async def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    namespace, claim_name = kubeargs.namespace(args, ctx), _claim(args, args.user)
    async with kubeargs.connect(args, ctx, RBAC_HINT) as kube:
        claim = await kube.get_pvc(namespace, claim_name)
        if claim is None:
            ctx.note(f"{args.user} has no home claim {namespace}/{claim_name} (yet)")
            return 1
        pv_name = claim_volume_name(claim)
        pv = await kube.get_pv(pv_name) if pv_name else None
        pods = await kube.pods_using_claim(namespace, claim_name)
        kept = await kept_volumes(kube, namespace, claim_name)
    info: dict[str, Any] = {
        "user": args.user,
        "claim": f"{namespace}/{claim_name}",
        "status": phase_of(claim) or "Pending",
        "pv": pv_name or "",
        "zone": (zone_of_pv(pv) if pv else None) or "",
        "server_pods": pods,
        "record": {
            k.split("/", 1)[1]: v
            for k, v in annotations_of(claim).items()
            if k.startswith("wbspawner.io/")
        },
        "kept": [{"pv": p, "volume": v, "retain_until": u} for p, v, u in kept],
    }
    volume_id = volume_handle(pv)
    volume = None
    if volume_id:
        volumes = _volumes(args, ctx, _profiles(args, ctx))
        volume = await asyncio.to_thread(volumes.describe_volume, volume_id)
        info["volume"] = asdict(volume) if volume else {"volume_id": volume_id}
        if volume:
            info["volume"]["tags"] = dict(volume.tags)
    if args.json:
        print_json(ctx, info)
        return 0
    for key, value in info.items():
        text = _text(value)
        if key == "volume":
            text = describe_volume(volume) if volume else f"{volume_id} (not found)"
        ctx.print(f"{key:12} {text}")
    return 0


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if k != "tags")
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value) or "-"
    return str(value) if value not in ("", None) else "-"


# ----------------------------------------------------------------------- move
def _settings(profiles: Profiles | None) -> HomeSettings:
    return profiles.homes if profiles else HomeSettings()


def _check_zone(zone: str, profiles: Profiles | None) -> None:
    if profiles is None:
        return
    zones = sorted({z for pool in profiles.pools.values() for z in pool.zones})
    if zone not in zones:
        raise MoveRefusedError(
            f"zone {zone} is not a zone of any pool ({', '.join(zones)}); no "
            "server could start next to a home there"
        )


def _print_plan(ctx: CliContext, plan: MovePlan) -> None:
    req = plan.request
    ctx.print(
        f"Move {req.user}'s home ({req.namespace}/{req.claim_name}) from "
        f"{plan.from_zone} to {req.target_zone} (move {plan.move_id}):"
    )
    for i, step in enumerate(plan.steps, 1):
        ctx.print(f"  {i}. {step.step:8} {step.state:6} {step.detail}")
    if plan.running_pods:
        ctx.print(
            f"  blocked: the server is running (pod {', '.join(plan.running_pods)});"
            " stop it first"
        )


def _confirmed(args: argparse.Namespace, ctx: CliContext) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        ctx.note("not moving: add --yes to move without a question")
        return False
    answer = input("Proceed? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def run_move(args: argparse.Namespace, ctx: CliContext) -> int:
    """Move (or resume moving) a user's home to another zone.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0 when moved, already there, or shown (dry run); 2 when not confirmed.

    Raises:
        MoveRefusedError: nothing was changed (running server, unknown zone …).
        MoveFailedError: a step failed; the message says where the home is.
    """
    profiles = _profiles(args, ctx)
    _check_zone(args.zone, profiles)
    settings = _settings(profiles)
    request = MoveRequest(
        namespace=kubeargs.namespace(args, ctx),
        user=args.user,
        target_zone=args.zone,
        claim=_claim(args, args.user),
        retention_days=args.retention_days
        if args.retention_days is not None
        else settings.retention_days,
    )
    return asyncio.run(_move(args, ctx, request, _volumes(args, ctx, profiles)))


async def _move(
    args: argparse.Namespace, ctx: CliContext, request: MoveRequest, volumes: Volumes
) -> int:
    async with kubeargs.connect(args, ctx, RBAC_HINT) as kube:
        plan = await plan_move(kube, volumes, request)
        if plan.already_there:
            ctx.print(f"{request.user}'s home is already in {request.target_zone}.")
            return 0
        _print_plan(ctx, plan)
        if args.dry_run:
            ctx.print("Dry run: nothing was changed.")
            return 0
        if not await asyncio.to_thread(_confirmed, args, ctx):  # input() blocks
            return 2

        # The steps are this command's report (it has no --json): stdout.
        title = f"Moving {request.user}'s home to {request.target_zone}"
        with Steps(ctx.out, ctx.environ).bar(title, len(STEPS)) as bar:

            def progress(report: StepReport) -> None:
                mark = "(already done) " if report.already_done else ""
                following = STEPS.index(report.step) + 1
                bar.done(
                    f"{report.step:8} ok  {mark}{report.detail}",
                    now=STEPS[following] if following < len(STEPS) else "",
                )

            result = await HomeMover(kube, volumes, on_step=progress).run(request)
    ctx.print(describe(result))
    return 0


# ------------------------------------------------------------------------- gc
def run_gc(args: argparse.Namespace, ctx: CliContext) -> int:
    """Delete old volumes and snapshots of finished moves past retention.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0, or 1 when a deletion failed.
    """
    volumes = _volumes(args, ctx, _profiles(args, ctx))
    return asyncio.run(_gc(args, ctx, volumes))


async def _gc(args: argparse.Namespace, ctx: CliContext, volumes: Volumes) -> int:
    verb = "Checking" if args.dry_run else "Collecting"
    with Steps(ctx.err, ctx.environ).bar(f"{verb} the leftovers of moves", None) as bar:

        def progress(item: GcItem) -> None:
            failed = item.reason.startswith("deleting failed")
            bar.done(f"{item.action}  {item.old_pv}: {item.reason}", failed=failed)

        async with kubeargs.connect(args, ctx, RBAC_HINT) as kube:
            now = datetime.now(UTC)
            items = await gc_expired(
                kube, volumes, now, dry_run=args.dry_run, on_item=progress
            )
    if args.json:
        print_json(ctx, [asdict(i) for i in items])
    else:
        headers = ("OLD PV", "VOLUME", "SNAPSHOT", "CLAIM", "RETAIN UNTIL", "ACTION")
        cells = [
            (
                i.old_pv,
                i.old_volume or "",
                i.snapshot_id or "",
                i.claim,
                i.retain_until,
                f"{i.action}: {i.reason}",
            )
            for i in items
        ]
        print_table(ctx, headers, cells)
    failed = [i for i in items if i.reason.startswith("deleting failed")]
    return 1 if failed else 0
