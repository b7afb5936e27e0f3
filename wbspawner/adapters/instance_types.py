"""Instance-type facts from EC2's ``DescribeInstanceTypes``, for the catalogue.

This module owns :class:`Ec2InstanceTypes`, the thin reader that
:func:`wbspawner.catalog.refresh.refresh_catalog` is given to refresh the
instance catalogue: batches of at most 100 names, every page through
:func:`~wbspawner.adapters.aws.paginate`, and every name EC2 does not know
listed in one error. It returns EC2's entries as they are; turning them into
catalogue records is the catalogue's business (the hub reads the shipped file
and never calls this).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wbspawner.adapters.aws import JsonDict, paginate
from wbspawner.errors import PermanentAwsError

_BRACKETS = re.compile(r"\[([^\]]*)\]")
_OPERATION = "ec2:DescribeInstanceTypes"
_UNKNOWN = "InvalidInstanceType"


class _UnknownTypesError(Exception):
    """EC2 answered ``InvalidInstanceType``; ``names`` as listed in its message."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class Ec2InstanceTypes:
    """Instance-type facts from EC2 ``DescribeInstanceTypes``.

    Args:
        client: an EC2 client from :func:`~wbspawner.adapters.aws.make_client`.
    """

    BATCH = 100
    """Most instance types one ``DescribeInstanceTypes`` request may name."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def region(self) -> str:
        """The client's region."""
        return str(self._client.meta.region_name)

    def describe(self, names: Sequence[str]) -> dict[str, JsonDict]:
        """Return the ``DescribeInstanceTypes`` entry of each name.

        Args:
            names: EC2 instance type names.

        Returns:
            Entries by instance type name.

        Raises:
            PermanentAwsError: when EC2 does not know some names (every one is
                listed, code ``InvalidInstanceType``), or on any other error that
                retrying will not fix.
            TemporaryAwsError: when AWS still throttles after botocore's retries.
        """
        found: dict[str, JsonDict] = {}
        unknown: set[str] = set()
        for i in range(0, len(names), self.BATCH):
            batch = list(dict.fromkeys(names[i : i + self.BATCH]))
            try:
                found.update(self._describe(batch))
            except _UnknownTypesError as err:
                # Keep asking for the valid ones so that one typo does not hide
                # a second one; the message lists what EC2 rejected.
                listed = [n for n in err.names if n in batch] or self._probe(batch)
                unknown.update(listed)
                rest = [n for n in batch if n not in listed]
                if rest:
                    found.update(self._describe(rest))
        unknown.update(n for n in names if n not in found)
        if unknown:
            raise PermanentAwsError(
                f"EC2 does not know these instance types in {self.region}: "
                f"{', '.join(sorted(unknown))}",
                code=_UNKNOWN,
                operation=_OPERATION,
            )
        return found

    def _describe(self, batch: list[str]) -> dict[str, JsonDict]:
        try:
            items = list(
                paginate(
                    self._client,
                    "describe_instance_types",
                    "InstanceTypes",
                    InstanceTypes=batch,
                )
            )
        except PermanentAwsError as err:
            if err.code != _UNKNOWN:
                raise
            match = _BRACKETS.search(err.message)
            listed = match.group(1).split(",") if match else []
            raise _UnknownTypesError([n.strip() for n in listed]) from err
        return {str(info["InstanceType"]): info for info in items}

    def _probe(self, batch: list[str]) -> list[str]:
        """Find a batch's unknown names one by one (the message listed none)."""
        unknown = []
        for name in batch:
            try:
                self._describe([name])
            except _UnknownTypesError:
                unknown.append(name)
        return unknown
