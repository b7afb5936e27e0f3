"""Checks of the ``data`` section: buckets and shared volumes per group.

This module owns what the schema cannot see about data access: every group is a
configured one, bucket names follow S3's rules (no ``..``, not an IP address, no
reserved prefix or suffix), a group grants one bucket prefix once, each volume
names exactly one source, a volume named in several groups is the same volume
everywhere, and mount paths neither hide the home nor each other.

Pure: every value is read defensively (the schema reports wrong types).
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from wbspawner.errors import Problem
from wbspawner.profiles.checks.context import Context, as_dict, as_list
from wbspawner.profiles.merge import Item

SOURCES = ("efs", "nfs", "claim")
"""The keys of a volume's source; exactly one is given."""
MAX_S3_GROUPS = 8
"""Groups with S3 grants whose combinations get IAM roles (2⁸ − 1 = 255 at
most, a quarter of IAM's default 1,000 roles per account)."""
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", ".mrap")


def bucket_problem(name: str) -> str | None:
    """Return what is wrong with a bucket name beyond the schema's pattern.

    Args:
        name: the bucket name.

    Returns:
        The problem, or ``None`` for a valid name.
    """
    if ".." in name or ".-" in name or "-." in name:
        return f"bucket '{name}' is not a valid S3 name: no '..', '.-' or '-.'"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return f"bucket '{name}' is not a valid S3 name: it looks like an IP address"
    if name.startswith(RESERVED_BUCKET_PREFIXES) or name.endswith(
        RESERVED_BUCKET_SUFFIXES
    ):
        return f"bucket '{name}' uses a prefix or suffix S3 reserves"
    return None


def canonical_prefix(prefix: str) -> str:
    """Return a key prefix as grants hold it: empty, or ending with ``/``."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


@dataclass(frozen=True, slots=True)
class _Mount:
    item: Item
    group: str
    index: int
    raw: dict[str, object]


def check_data(ctx: Context) -> Iterator[Problem]:
    """Report unknown groups, bad buckets, repeated grants and volume clashes."""
    item = ctx.merged.section("data")
    if item is None:
        return
    groups = as_dict(as_dict(item.value).get("groups"))
    mounts: list[_Mount] = []
    for group, raw in groups.items():
        yield from ctx.unknown_groups(item, [(group, str(group))], "groups")
        data = as_dict(raw)
        yield from _check_s3(item, str(group), as_list(data.get("s3")))
        for i, volume in enumerate(as_list(data.get("volumes"))):
            v = as_dict(volume)
            yield from _check_source(item, str(group), i, v)
            if v:
                mounts.append(_Mount(item, str(group), i, v))
    yield from _check_mounts(ctx, mounts)
    s3 = sorted(str(g) for g, raw in groups.items() if as_list(as_dict(raw).get("s3")))
    if len(s3) > MAX_S3_GROUPS:
        yield item.problem(
            f"{len(s3)} groups grant S3 buckets ({', '.join(s3)}); wbspawner makes "
            f"one IAM role per combination of them and combines at most "
            f"{MAX_S3_GROUPS}: give groups that reach the same buckets one group",
            "groups",
        )


def _check_s3(item: Item, group: str, grants: list[object]) -> Iterator[Problem]:
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(grants):
        grant = as_dict(raw)
        bucket, prefix = grant.get("bucket"), grant.get("prefix", "")
        if not isinstance(bucket, str) or not isinstance(prefix, str):
            continue
        where = ("groups", group, "s3", i)
        problem = bucket_problem(bucket)
        if problem:
            yield item.problem(problem, *where, "bucket")
        key = (bucket, canonical_prefix(prefix))
        if key in seen:
            shown = f"s3://{bucket}/{key[1]}"
            yield item.problem(
                f"{shown} is granted twice to group '{group}'; keep one grant "
                "(with access: read-write if it should write)",
                *where,
            )
        seen.add(key)


def _check_source(
    item: Item, group: str, index: int, volume: dict[str, object]
) -> Iterator[Problem]:
    given = [key for key in SOURCES if key in volume]
    if len(given) != 1:
        found = ", ".join(given) or "none"
        yield item.problem(
            f"a volume needs exactly one source of efs, nfs or claim (found: {found})",
            "groups",
            group,
            "volumes",
            index,
        )


def _check_mounts(ctx: Context, mounts: list[_Mount]) -> Iterator[Problem]:
    home = as_dict(ctx.section("homes")).get("mount_path", "/home/jovyan")
    by_name: dict[str, _Mount] = {}
    by_path: dict[str, _Mount] = {}
    for m in mounts:
        name, path = m.raw.get("name"), m.raw.get("mount_path")
        if not isinstance(name, str) or not isinstance(path, str):
            continue
        where = ("groups", m.group, "volumes", m.index)
        path = posixpath.normpath(path)
        first = by_name.get(name)
        if first is not None:
            if _source(first.raw) != _source(m.raw):
                yield m.item.problem(
                    f"volume '{name}' is defined differently for group "
                    f"'{first.group}'; a volume of the same name is one volume: give "
                    "it the same source and mount path, or another name",
                    *where,
                )
            continue
        by_name[name] = m
        if isinstance(home, str) and _within(posixpath.normpath(home), path):
            yield m.item.problem(
                f"mount path {path} would hide the home mounted at {home}; mount "
                "data elsewhere (inside the home is fine)",
                *where,
                "mount_path",
            )
        yield from _path_clash(m, name, path, by_path, where)
        by_path[path] = m


def _path_clash(
    m: _Mount,
    name: str,
    path: str,
    by_path: dict[str, _Mount],
    where: tuple[str | int, ...],
) -> Iterator[Problem]:
    for other_path, other in by_path.items():
        if other_path == path:
            yield m.item.problem(
                f"mount path {path} is already used by volume "
                f"'{other.raw.get('name')}' (group '{other.group}'); a user in both "
                "groups would get two volumes at one path",
                *where,
                "mount_path",
            )
        elif _within(path, other_path) or _within(other_path, path):
            yield m.item.problem(
                f"mount path {path} of volume '{name}' is nested with {other_path} "
                f"of volume '{other.raw.get('name')}'; give each its own directory",
                *where,
                "mount_path",
            )


def _within(inner: str, outer: str) -> bool:
    """Return whether ``inner`` is ``outer`` or below it."""
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def _source(raw: dict[str, object]) -> tuple[str, ...]:
    path = raw.get("mount_path")
    shown = posixpath.normpath(path) if isinstance(path, str) else ""
    return (shown, *(repr(raw.get(key)) for key in SOURCES))
