"""The ``cost`` subcommands of ``wbspawner``: estimate, alarm, report.

This module owns how admins see costs from a shell:

- ``cost estimate --scenario FILE``: what a usage scenario costs on the profiles,
  per item, monthly and yearly, and what dominates
  (:mod:`wbspawner.costs.estimate`); with ``--live`` the spot prices and the
  size of the granted S3 data are read from AWS (:mod:`wbspawner.costs.s3`);
- ``cost alarm --monthly N --email ADDR``: create or update the AWS Budget that
  e-mails at 80 % and 100 % of the node pools' monthly spend
  (:mod:`wbspawner.costs.alarm`);
- ``cost report [--by user|group|size] [--month YYYY-MM]``: spending recorded in
  the accounting database (:mod:`wbspawner.costs.accounting`).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from wbspawner.adapters.aws import call, make_client
from wbspawner.catalog.pricing import format_price
from wbspawner.cli.profiles import read_spot_prices
from wbspawner.cli.tables import Layout, layout_for, print_table
from wbspawner.cli.terminal import write_text
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
from wbspawner.costs.alarm import (
    DEFAULT_BUDGET_NAME,
    BudgetSpec,
    ensure_budget,
)
from wbspawner.costs.database import (
    DB_URL_ENV,
    STATE_DIR_ENV,
    configured_url,
    read_report,
)
from wbspawner.costs.estimate import Estimate, estimate
from wbspawner.costs.s3 import GIB, granted_prefixes, prefix_sizes
from wbspawner.costs.scenario import load_scenario
from wbspawner.costs.spot import latest_spot_prices
from wbspawner.errors import AwsError
from wbspawner.model import Profiles

LIVE_SPOT_ATTEMPTS = 2
"""Sends of the spot-price look-up: optional, the estimate falls back to the
assumed discount, so it gives up sooner than other AWS calls."""


def register(subparsers: Any) -> None:
    """Add ``cost estimate | alarm | report`` to the command line.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.
    """
    sub = add_command_group(
        subparsers,
        "cost",
        help="estimate, watch and report what the workbench costs",
        description="Know the bill before it comes: estimates from a usage "
        "scenario, an AWS budget alarm, and per-user spending.",
    )
    p = sub.add_parser("estimate", help="what a usage scenario costs per month")
    p.add_argument("--scenario", required=True, metavar="FILE", help="scenario YAML")
    p.add_argument(
        "--spot-prices",
        metavar="FILE",
        help='observed spot prices, JSON {"type/zone": price}',
    )
    p.add_argument(
        "--live-spot",
        action="store_true",
        help="read spot prices from EC2 (DescribeSpotPriceHistory); when AWS "
        "cannot be reached, the assumed discount is used",
    )
    p.add_argument(
        "--live-s3",
        action="store_true",
        help="measure the S3 line: the bytes under every bucket prefix the "
        "profiles' data section grants (ListObjectsV2), in place of the "
        "scenario's s3_gib",
    )
    p.add_argument("--live", action="store_true", help="both --live-spot and --live-s3")
    add_endpoint_option(p)
    add_profiles_option(p)
    add_catalog_option(p)
    add_json_option(p)
    p.set_defaults(run=run_estimate)
    p = sub.add_parser("alarm", help="create or update the AWS budget alarm")
    p.add_argument("--monthly", type=float, required=True, help="USD per month")
    p.add_argument("--email", required=True, help="who is told at 80 %% and 100 %%")
    p.add_argument("--name", default=DEFAULT_BUDGET_NAME, help="budget name")
    p.add_argument("--account-id", help="AWS account (default: from STS)")
    p.add_argument("--region", default="us-east-1", help="AWS region")
    add_endpoint_option(p)
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the budget even when unchanged (new e-mail)",
    )
    add_profiles_option(p)
    add_catalog_option(p)
    p.set_defaults(run=run_alarm)
    p = sub.add_parser("report", help="recorded spending per user, group or size")
    p.add_argument(
        "--db",
        metavar="URL",
        help=f"the accounting database (default: ${DB_URL_ENV}, else the SQLite "
        f"file in ${STATE_DIR_ENV}, as the hub finds it)",
    )
    p.add_argument("--by", choices=("user", "group", "size"), default="user")
    p.add_argument("--month", help="YYYY-MM (default: this month)")
    add_json_option(p)
    p.set_defaults(run=run_report)


def estimate_lines(result: Estimate, table: Layout = format_table) -> list[str]:
    """Return an estimate as a table with totals and what dominates.

    Args:
        result: the estimate.
        table: lays out the items (default: plain aligned columns).

    Returns:
        Lines of text.
    """
    rows = [
        [
            i.category,
            i.name,
            f"{i.quantity:,.1f} {i.unit}",
            format_price(i.unit_price, ""),
            format_price(i.monthly, ""),
            i.source,
        ]
        for i in result.items
    ]
    lines = [f"{result.scenario} ({result.currency})", ""]
    lines += table(
        ["ITEM", "NAME", "QUANTITY", "UNIT PRICE", "PER MONTH", "PRICE SOURCE"],
        rows,
        (2, 3, 4),
    )
    lines += [
        "",
        f"monthly total: {format_price(result.monthly, '')}",
        f"yearly total:  {format_price(result.yearly, '')}",
    ]
    top = result.dominant
    if top is not None and result.monthly > 0:
        share = top.monthly / result.monthly
        lines.append(f"dominated by:  {top.name} ({share:.0%} of the month)")
    return lines


def run_estimate(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print what a scenario costs."""
    profiles, catalog = profiles_from_args(args, ctx)
    scenario = load_scenario(args.scenario)
    spot = read_spot_prices(args.spot_prices) if args.spot_prices else None
    if args.live_spot or args.live:
        spot = {**_live_spot(profiles, args, ctx), **(spot or {})}
    s3_gib = _live_s3(profiles, args, ctx) if args.live_s3 or args.live else None
    result = estimate(profiles, scenario, spot, catalog, s3_gib)
    if args.json:
        print_json(ctx, result.as_dict())
    else:
        write_text(ctx, "\n".join(estimate_lines(result, layout_for(ctx))))
    return 0


def _live_spot(
    profiles: Profiles, args: argparse.Namespace, ctx: CliContext
) -> dict[tuple[str, str], float]:
    types = sorted({t for p in profiles.pools.values() for t in p.instance_types})
    try:
        ec2 = make_client(
            "ec2",
            profiles.cost.region,
            endpoint_url(args, ctx),
            max_attempts=LIVE_SPOT_ATTEMPTS,
        )
        return latest_spot_prices(ec2, types)
    except AwsError as err:
        ctx.note(f"note: spot prices not read ({err}); using the assumed discount")
        return {}


def _live_s3(profiles: Profiles, args: argparse.Namespace, ctx: CliContext) -> float:
    """Return the GiB stored under the granted prefixes (notes each one)."""
    if not granted_prefixes(profiles.data):
        ctx.note("note: no group is granted S3 data (profiles' data section)")
        return 0.0
    s3 = make_client("s3", profiles.cost.region, endpoint_url(args, ctx))
    sizes = prefix_sizes(s3, profiles.data)
    for p in sizes:
        ctx.note(
            f"s3://{p.bucket}/{p.prefix}: {p.bytes / GIB:,.3f} GiB in "
            f"{p.objects:,} objects"
        )
    return sum(p.bytes for p in sizes) / GIB


def _account_id(args: argparse.Namespace, ctx: CliContext) -> str:
    if args.account_id:
        return str(args.account_id)
    sts = make_client("sts", args.region, endpoint_url(args, ctx))
    return str(call(sts, "get_caller_identity")["Account"])


def run_alarm(args: argparse.Namespace, ctx: CliContext) -> int:
    """Create or update the budget alarm."""
    if args.monthly <= 0 or not re.fullmatch(r"[^@\s]+@[^@\s]+", args.email):
        ctx.note("error: --monthly must be > 0 and --email an e-mail address")
        return 2
    profiles, _ = profiles_from_args(args, ctx)
    spec = BudgetSpec(
        name=args.name,
        monthly=args.monthly,
        email=args.email,
        pools=tuple(sorted(profiles.pools)),
        currency=profiles.cost.currency,
    )
    client = make_client("budgets", args.region, endpoint_url(args, ctx))
    result = ensure_budget(client, _account_id(args, ctx), spec, replace=args.replace)
    amount = format_price(spec.monthly, "/month")
    if result.action == "unchanged":
        ctx.print(f"budget {spec.name} is up to date ({amount}); nothing changed")
    else:
        ctx.print(
            f"budget {spec.name} {result.action}: {amount}, e-mail to "
            f"{spec.email} at 80 % and 100 % of actual spend"
        )
        for change in result.changes:
            ctx.print(f"  {change}")
    return 0


def run_report(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print recorded spending.

    Returns:
        0; 2 when no database is named (nothing is created).

    Raises:
        AccountingDbError: the database cannot be read (exit code 1).
    """
    if args.month and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        ctx.note("error: --month must be YYYY-MM")
        return 2
    url = args.db or configured_url(ctx.environ)
    if url is None:
        ctx.note(
            f"error: which accounting database? pass --db URL, or set ${DB_URL_ENV} "
            f"(or ${STATE_DIR_ENV}) as the hub has it; the local demo: source "
            ".demo/env"
        )
        return 2
    rows = read_report(url, by=args.by, month=args.month)
    if args.json:
        print_json(
            ctx,
            [
                {args.by: r.key, "hours": float(r.hours), "cost": float(r.cost)}
                for r in rows
            ],
        )
        return 0
    table = [
        [r.key, f"{float(r.hours):,.2f}", format_price(float(r.cost), "")] for r in rows
    ]
    print_table(ctx, [args.by.upper(), "HOURS", "COST"], table, right=(1, 2))
    total = sum((r.cost for r in rows), start=0)
    ctx.print(f"total: {format_price(float(total), '')}")
    return 0
