"""What a user's groups reach, and every distinct reach the profiles allow.

This module owns the union of data grants: a user in several groups gets every
bucket prefix and every volume of each, read-write where any of the groups may
write (:func:`access_for`). An access set's S3 grants decide its identity: the
key (:func:`access_key`, a short hash of the grants) names its IAM role and
ServiceAccount (:mod:`wbspawner.naming`), so two users whose groups grant the
same buckets share one role, and a user's role changes exactly when what they
may reach changes.

The planner needs every union before anyone logs in, since group membership
lives in LDAP and changes without wbspawner: :func:`access_sets` makes one per
distinct union of the groups that grant S3, over every combination of those
groups (at most :data:`MAX_S3_GROUPS` of them, checked with the profiles).
:mod:`wbspawner.data` makes the roles; the spawner and the gateway give a
user's pods the ServiceAccount of :attr:`DataAccess.service_account`.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from wbspawner.model import DataSettings, S3Grant, SharedVolume
from wbspawner.naming import DATA_KEY_LENGTH, data_service_account


@dataclass(frozen=True, slots=True, kw_only=True)
class DataAccess:
    """What one user (or one combination of groups) reaches."""

    s3: tuple[S3Grant, ...] = ()
    """Grants sorted by bucket and prefix, one per bucket prefix (the widest)."""
    volumes: tuple[SharedVolume, ...] = ()
    """Volumes sorted by name, one per name (read-write if any group's is)."""

    @property
    def key(self) -> str | None:
        """The key of the S3 grants; ``None`` when there are none."""
        return access_key(self.s3) if self.s3 else None

    @property
    def service_account(self) -> str | None:
        """The ServiceAccount of the S3 grants; ``None`` when there are none."""
        key = self.key
        return data_service_account(key) if key else None

    @property
    def empty(self) -> bool:
        """Whether the user reaches no data at all."""
        return not self.s3 and not self.volumes


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessSet:
    """One distinct union of S3 grants: one IAM role and one ServiceAccount."""

    key: str
    grants: tuple[S3Grant, ...]
    groups: tuple[str, ...] = ()
    """The single groups whose own grants are exactly these (shown in plans and
    kept as the role's tag, so that a later plan knows each group's grants)."""


def union_grants(grants: Iterable[S3Grant]) -> tuple[S3Grant, ...]:
    """Return grants merged per bucket prefix (read-write wins), sorted.

    Args:
        grants: grants of one or more groups.

    Returns:
        One grant per ``(bucket, prefix)``, without those a shorter prefix of
        the same bucket (or the whole bucket) already covers.
    """
    merged: dict[tuple[str, str], S3Grant] = {}
    for g in grants:
        have = merged.get((g.bucket, g.prefix))
        if have is None or (g.writes and not have.writes):
            merged[(g.bucket, g.prefix)] = g
    kept = [g for g in merged.values() if not _covered(g, merged.values())]
    return tuple(sorted(kept, key=lambda g: (g.bucket, g.prefix)))


def _covered(grant: S3Grant, others: Iterable[S3Grant]) -> bool:
    """Return whether a wider prefix of the bucket already gives as much."""
    return any(
        o.bucket == grant.bucket
        and o.prefix != grant.prefix
        and grant.prefix.startswith(o.prefix)
        and (o.writes or not grant.writes)
        for o in others
    )


def access_key(grants: Iterable[S3Grant]) -> str:
    """Return the key of a set of grants: a short hash of their canonical form.

    Args:
        grants: the grants (order and repeats do not matter).

    Returns:
        :data:`~wbspawner.naming.DATA_KEY_LENGTH` hex digits.
    """
    canonical = [[g.bucket, g.prefix, g.access] for g in union_grants(grants)]
    text = json.dumps(canonical, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DATA_KEY_LENGTH]


def access_for(settings: DataSettings, groups: Collection[str]) -> DataAccess:
    """Return the union of what a user's groups reach.

    Args:
        settings: the profiles' data section.
        groups: the user's groups (those without data reach nothing).

    Returns:
        The user's access (empty when no group of theirs grants anything).
    """
    mine = [settings.groups[g] for g in sorted(set(groups)) if g in settings.groups]
    volumes: dict[str, SharedVolume] = {}
    for data in mine:
        for v in data.volumes:
            have = volumes.get(v.name)
            if have is None:
                volumes[v.name] = v
            elif have.read_only and not v.read_only:
                volumes[v.name] = replace(have, read_only=False)
    return DataAccess(
        s3=union_grants(g for data in mine for g in data.s3),
        volumes=tuple(volumes[name] for name in sorted(volumes)),
    )


def s3_groups(settings: DataSettings) -> tuple[str, ...]:
    """Return the groups that grant S3, sorted."""
    return tuple(sorted(g for g, data in settings.groups.items() if data.s3))


def access_sets(settings: DataSettings) -> dict[str, AccessSet]:
    """Return every distinct union of S3 grants a user may have, by key.

    Args:
        settings: the profiles' data section.

    Returns:
        One access set per distinct union over every non-empty combination of
        the groups that grant S3.

    The profiles checks allow at most :data:`MAX_S3_GROUPS` groups with S3
    grants, so there are at most 255 combinations.
    """
    groups = s3_groups(settings)
    sets: dict[str, AccessSet] = {}
    for n in range(1, len(groups) + 1):
        for combo in itertools.combinations(groups, n):
            grants = union_grants(g for name in combo for g in settings.groups[name].s3)
            key = access_key(grants)
            have = sets.get(key) or AccessSet(key=key, grants=grants)
            if n == 1:
                have = replace(have, groups=(*have.groups, combo[0]))
            sets[key] = have
    return sets


def group_grants(sets: Mapping[str, AccessSet]) -> dict[str, tuple[S3Grant, ...]]:
    """Return each group's own grants, as the access sets' ``groups`` say.

    Args:
        sets: access sets (desired, or read back from the roles' tags).

    Returns:
        Grants by group.
    """
    return {group: s.grants for s in sets.values() for group in s.groups}
