"""The size of the granted S3 data, read from the buckets themselves.

This module owns what ``wbspawner cost estimate --live-s3`` measures for the
estimate's S3 line: the bytes stored under every bucket prefix some group is
granted (the profiles' ``data`` section), each counted once even when several
groups are granted it or a wider prefix covers it. The sizes are the sums of
``ListObjectsV2``'s object sizes (the project reads no CloudWatch metrics, and
``BucketSizeBytes`` lags a day). Thin adapter: pages come through
:func:`~wbspawner.adapters.aws.paginate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wbspawner.adapters.aws import paginate
from wbspawner.model import DataSettings, S3Grant
from wbspawner.profiles.data_access import union_grants

GIB = 2**30


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixSize:
    """What is stored under one granted bucket prefix."""

    bucket: str
    prefix: str
    bytes: int
    objects: int


def granted_prefixes(data: DataSettings) -> tuple[S3Grant, ...]:
    """Return every granted bucket prefix once, without those a wider one covers."""
    every = [g for group in data.groups.values() for g in group.s3]
    reads = [S3Grant(bucket=g.bucket, prefix=g.prefix) for g in every]
    return union_grants(reads)


def prefix_sizes(s3: Any, data: DataSettings) -> tuple[PrefixSize, ...]:
    """Return the stored bytes under each granted prefix.

    Args:
        s3: an S3 client from :func:`~wbspawner.adapters.aws.make_client`.
        data: the profiles' data section.

    Returns:
        One size per granted prefix, in bucket order.

    Raises:
        AwsError: a bucket is missing, or S3 cannot be reached or refuses.
    """
    out: list[PrefixSize] = []
    for g in granted_prefixes(data):
        size = count = 0
        for item in paginate(
            s3,
            "list_objects_v2",
            "Contents",
            about=f"s3://{g.bucket}/{g.prefix}",
            Bucket=g.bucket,
            Prefix=g.prefix,
        ):
            size += int(item.get("Size") or 0)
            count += 1
        out.append(
            PrefixSize(bucket=g.bucket, prefix=g.prefix, bytes=size, objects=count)
        )
    return tuple(out)
