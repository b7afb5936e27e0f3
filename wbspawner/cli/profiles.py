"""The ``validate``, ``render``, ``schema`` and ``catalog`` subcommands.

This module owns how the profiles and the instance catalogue are shown to
admins: ``validate`` checks profiles files (every problem, ``file: $.path:
message``), ``render`` previews what one user would see and get, ``catalog``
lists instance types with allocatable memory, full-node request and price,
``schema`` prints the reference of every profiles key.
Each prints an aligned table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
from typing import Any

from wbspawner.adapters import statefiles
from wbspawner.catalog import pricing
from wbspawner.catalog.instances import catalog_rows
from wbspawner.catalog.pricing import SpotPrices
from wbspawner.cli.tables import Layout, layout_for
from wbspawner.cli.terminal import write_text
from wbspawner.cli.util import (
    CliContext,
    add_catalog_option,
    add_json_option,
    add_profiles_option,
    catalog_from_args,
    exists,
    format_table,
    gib,
    print_json,
    profiles_from_args,
    profiles_paths,
)
from wbspawner.errors import ProfileConfigError
from wbspawner.model import Catalog, SizingSettings
from wbspawner.profiles.loader import load_profiles
from wbspawner.profiles.reference import schema_reference
from wbspawner.profiles.schema import profiles_schema
from wbspawner.spawn.preview import user_preview


def register(subparsers: Any) -> None:
    """Add ``validate``, ``render``, ``schema`` and ``catalog`` to the command line.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.
    """
    p = subparsers.add_parser(
        "validate",
        help="check profiles files; list every problem",
        description="Check profiles directories/files: YAML, schema, references, "
        "defaults, instance types, sizing. Exit 0 when valid, 1 when not, 2 when "
        "a named path does not exist.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="profiles directories or files"
    )
    add_catalog_option(p)
    p.set_defaults(run=run_validate, usage=p.format_usage)

    p = subparsers.add_parser(
        "render",
        help="show the sizes a user would see, with prices and placement",
        description="Preview the spawn form of one user: sizes, memory, CPUs, "
        "GPUs, $/hour, images and the placement each size maps to.",
    )
    p.add_argument("--user", required=True, metavar="NAME", help="user name")
    p.add_argument(
        "--groups",
        default="",
        metavar="G1,G2",
        help="the user's groups, comma-separated",
    )
    p.add_argument("--admin", action="store_true", help="render as a hub admin")
    p.add_argument(
        "--spot-prices",
        metavar="FILE",
        help='observed spot prices, JSON {"type/zone": USD per hour}',
    )
    add_profiles_option(p)
    add_catalog_option(p)
    add_json_option(p)
    p.set_defaults(run=run_render)

    p = subparsers.add_parser(
        "schema",
        help="print the reference of every profiles key (Markdown or JSON Schema)",
        description="Print the admin reference of the profiles YAML, generated "
        "from the JSON Schema shipped with wbspawner.",
    )
    p.add_argument("--json", action="store_true", help="print the JSON Schema")
    p.set_defaults(run=run_schema)

    p = subparsers.add_parser(
        "catalog",
        help="list instance types with allocatable, full-node request and price",
        description="List the instance catalogue with what a node of each type "
        "can give one server (sizing settings from the profiles when present).",
    )
    add_profiles_option(p)
    add_catalog_option(p)
    add_json_option(p)
    p.set_defaults(run=run_catalog)


def run_schema(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the profiles reference (or the schema itself).

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0.
    """
    if args.json:
        print_json(ctx, profiles_schema())
    else:
        for line in schema_reference():
            ctx.print(line)
    return 0


def run_validate(args: argparse.Namespace, ctx: CliContext) -> int:
    """Check profiles files and report.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0 when valid (problems raise :class:`ProfileConfigError`), 2 when a
        path named on the command line or in ``$WBSPAWNER_PROFILES`` does not
        exist (a usage error: nothing was checked).
    """
    if args.paths:
        args.profiles = args.paths
    paths, explicit = profiles_paths(args, ctx)
    missing = [p for p in paths if not exists([p])]
    if explicit and missing:
        ctx.err.write(args.usage())
        listed = ", ".join(missing)
        ctx.note(f"wbspawner validate: error: no such file or directory: {listed}")
        return 2
    profiles, _ = profiles_from_args(args, ctx)
    ctx.print(
        f"OK: {len(profiles.pools)} pools, {len(profiles.sizes)} sizes "
        f"from {len(profiles.sources)} file{'s' if len(profiles.sources) != 1 else ''}"
    )
    return 0


def read_spot_prices(path: str) -> SpotPrices:
    """Read observed spot prices from a JSON file ``{"type/zone": price}``.

    Args:
        path: the file.

    Returns:
        Prices by ``(type, zone)``.

    Raises:
        ProfileConfigError: the file is missing, unreadable or malformed (every
            problem, as for profiles).
    """
    try:
        return statefiles.load_spot_prices(path)
    except statefiles.StateFileError as err:
        raise ProfileConfigError(list(err.problems)) from None


def run_render(args: argparse.Namespace, ctx: CliContext) -> int:
    """Show the sizes one user would see.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0.
    """
    profiles, _ = profiles_from_args(args, ctx)
    groups = sorted({g.strip() for g in args.groups.split(",") if g.strip()})
    spot = read_spot_prices(args.spot_prices) if args.spot_prices else None
    data = user_preview(profiles, args.user, groups, args.admin, spot)
    if args.json:
        print_json(ctx, data)
        return 0
    write_text(ctx, "\n".join(render_text(data, layout_for(ctx))))
    return 0


def _gpu(size: dict[str, Any]) -> str:
    return f"{size['gpus']}× {size['gpu_kind'] or 'GPU'}" if size["gpus"] else "-"


def render_text(data: dict[str, Any], table: Layout = format_table) -> list[str]:
    """Return the human-readable lines of a :func:`user_preview`.

    Args:
        data: the preview.
        table: lays out the size table (default: plain aligned columns).

    Returns:
        Lines: a heading, the size table, then the placement of each size.
    """
    who = f"{data['user']} (groups: {', '.join(data['groups']) or 'none'}"
    who += ", admin)" if data["is_admin"] else ")"
    if not data["may_log_in"]:
        return [f"{who} may not log in: no admin or user group of the profiles."]
    rows = []
    for s in data["sizes"]:
        price = s["price_per_hour"]
        spot = pricing.format_price(price["spot"])
        if price["spot_source"] == "assumed discount":
            spot = "~" + spot
        rows.append(
            [
                "*" if s["slug"] == data["default_size"] else "",
                s["slug"],
                s["display_name"],
                gib(s["memory_mib"]),
                f"{s['cpu_m'] / 1000:g}",
                _gpu(s),
                pricing.format_price(price["on_demand"]),
                spot,
                f"{price['preferred']}",
                s["pool"],
                _idle(s["idle_timeout_s"]),
            ]
        )
    headers = ["", "SIZE", "NAME", "MEMORY", "CPUS", "GPU", "ON-DEMAND", "SPOT"]
    headers += ["PREFERS", "POOL", "IDLE STOP"]
    lines = [f"Sizes for {who}; * marks the default:", ""]
    lines += table(headers, rows, (3, 4, 6, 7))
    lines += [
        "",
        (
            f"~ spot estimated as on-demand less the assumed "
            f"{data['spot_discount']:.0%} discount (no observed price)."
        ),
        "IDLE STOP: culled after this long unused (warned first); - : never.",
        "",
        "Placement (requests = limits: the server gets the whole node):",
    ]
    for s in data["sizes"]:
        lines += _placement_lines(s)
    return lines + _data_lines(data["data"])


def _data_lines(data: dict[str, Any]) -> list[str]:
    """Return the data a user reaches, or one line saying there is none."""
    if not data["s3"] and not data["volumes"]:
        return ["", "Data: none (no group of the user has data grants)."]
    account = data["service_account"] or "(the configured one: no S3 grants)"
    lines = ["", "Data (the server and its Dask pods):", f"  ServiceAccount: {account}"]
    lines += [f"  s3://{g['bucket']}/{g['prefix']} {g['access']}" for g in data["s3"]]
    lines += [
        f"  {v['mount_path']} <- {v['name']} "
        f"({'read-only' if v['read_only'] else 'read-write'})"
        for v in data["volumes"]
    ]
    return lines


def _idle(seconds: int | None) -> str:
    """Return an idle timeout as ``1h30m``, ``45m``, ``90s``, or ``-`` for none."""
    if seconds is None:
        return "-"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs else "")
    return "".join(parts) or "0s"


def _placement_lines(s: dict[str, Any]) -> list[str]:
    placement = s["placement"]
    tolerations = [
        f"{t['key']}={t['value']}:{t['effect']}"
        if t.get("operator") == "Equal"
        else f"{t['key']}:{t['effect']}"
        for t in placement["tolerations"]
    ]
    images = [
        f"{i['slug']}{' (default)' if i['default'] else ''}: {i['image']}"
        for i in s["images"]
    ]
    return [
        "",
        (
            f"  {s['slug']} -> pool {s['pool']} ({', '.join(s['instance_types'])}; "
            f"{' then '.join(s['capacity_types'])}; {', '.join(s['zones'])})"
        ),
        "    node selector: "
        + ", ".join(f"{k}={v}" for k, v in placement["node_selector"].items()),
        f"    tolerations:   {', '.join(tolerations)}",
        "    resources:     "
        + " ".join(f"{k}={v}" for k, v in placement["requests"].items()),
        f"    images:        {'; '.join(images)}",
        f"    home volume:   {s['home_size_gib']} GiB",
    ]


def _catalog_in_force(
    args: argparse.Namespace, ctx: CliContext
) -> tuple[Catalog, SizingSettings, str]:
    """Return the profiles' instance facts and sizing, or the catalogue's own."""
    catalog = catalog_from_args(args, ctx)
    paths, explicit = profiles_paths(args, ctx)
    if not explicit and not exists(paths):
        return catalog, SizingSettings(), "defaults (no profiles found)"
    profiles = load_profiles(paths, catalog)
    return profiles.catalog, profiles.sizing, f"from {', '.join(paths)}"


def run_catalog(args: argparse.Namespace, ctx: CliContext) -> int:
    """List instance types with allocatable, full-node request and price.

    Args:
        args: parsed arguments.
        ctx: the command context.

    Returns:
        0.
    """
    catalog, settings, origin = _catalog_in_force(args, ctx)
    rows = catalog_rows(catalog, settings)
    if args.json:
        print_json(
            ctx,
            {
                "region": catalog.region,
                "date": catalog.date,
                "source": catalog.source,
                "sizing": origin,
                "types": rows,
            },
        )
        return 0
    table = [
        [
            r["name"],
            str(r["vcpu"]),
            f"{r['memory_gib']:g} GiB",
            f"{r['gpus']}× {r['gpu_kind']}" if r["gpus"] else "-",
            str(r["max_pods"]),
            gib(r["capacity_mib"]),
            str(r["capacity_source"]),
            gib(r["allocatable_mib"]),
            gib(r["request_memory_mib"]),
            f"{r['request_cpu_m']}m",
            pricing.format_price(r["price_per_hour"]),
        ]
        for r in rows
    ]
    headers = ["TYPE", "VCPU", "MEMORY", "GPU", "MAXPODS", "CAPACITY", "CAPACITY IS"]
    headers += ["ALLOCATABLE", "REQUEST MEM", "REQUEST CPU", "ON-DEMAND"]
    lines = [f"Instance catalogue, {catalog.region}, {catalog.date}; sizing {origin}"]
    lines += ["", *layout_for(ctx)(headers, table, (1, 2, 4, 5, 7, 8, 9, 10)), ""]
    lines.append(
        "CAPACITY: kernel-visible memory, measured on a node of the type or "
        "estimated from its nominal memory;"
    )
    lines.append(
        "REQUEST: what one server requests to fill a node (allocatable - DaemonSets)."
    )
    write_text(ctx, "\n".join(lines))
    return 0
