"""Plan data access: which roles, policies, ServiceAccounts and volumes change.

This module owns the decision of ``wbspawner data plan | apply``: from the
profiles' data section and what IAM and Kubernetes hold now
(:class:`Observed`), an ordered :class:`DataPlan` of actions, each with the
exact parameters it sends, and the grants that change per group
(:class:`GrantChange`: added, widened, narrowed, removed) so that access is
never widened silently.

What is desired: per distinct union of S3 grants
(:func:`wbspawner.data.access.access_sets`) one IAM role with one inline policy
(:func:`wbspawner.data.iam.role_policy`) and a trust policy for its
ServiceAccount in each namespace, tagged with the cluster, its key and the
groups whose own grants it holds; in each namespace its ServiceAccount,
annotated with the role's ARN; for each EFS share a static PersistentVolume and
claim per namespace. Roles, ServiceAccounts and volumes wbspawner made that are
no longer desired are deleted: removing a bucket from a group removes the
grant. Order: roles, then ServiceAccounts and volumes are made or updated, then
what goes is deleted (ServiceAccounts before the roles they name); a volume
whose file system changed is deleted before it is made anew.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from wbspawner.data import iam
from wbspawner.model import LABEL_PREFIX, DataSettings, S3Access, S3Grant, SharedVolume
from wbspawner.naming import data_role_name, data_service_account
from wbspawner.profiles.data_access import AccessSet, access_sets, group_grants
from wbspawner.spawn import data_pods as pods

JsonDict = dict[str, Any]
POLICY_NAME = "wbspawner-data"
"""The role's one inline policy."""
CLUSTER_TAG = f"{LABEL_PREFIX}/cluster"
KEY_TAG = f"{LABEL_PREFIX}/data-key"
GROUPS_TAG = f"{LABEL_PREFIX}/groups"
"""Groups whose own grants the role holds, space-separated."""

ActionKind = Literal[
    "create-role",
    "put-role-policy",
    "update-trust",
    "tag-role",
    "create-service-account",
    "update-service-account",
    "create-volume",
    "create-claim",
    "delete-service-account",
    "delete-claim",
    "delete-volume",
    "delete-role",
]
ChangeKind = Literal["added", "widened", "narrowed", "removed"]
_RANK: dict[S3Access | None, int] = {None: 0, "read": 1, "read-write": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where the access is made: the cluster, its account and OIDC issuer."""

    cluster: str
    account: str
    issuer: str
    """The cluster's OIDC issuer URL (``describe_cluster`` ``identity.oidc.issuer``)."""
    namespaces: tuple[str, ...]
    """The hub's namespace, then the Dask one when it is another."""
    partition: str = "aws"

    def role_arn(self, name: str) -> str:
        """Return the ARN of a role of this account."""
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedRole:
    """A data role of the cluster as IAM holds it."""

    name: str
    trust: Mapping[str, Any] | None = None
    policy: Mapping[str, Any] | None = None
    """The ``wbspawner-data`` inline policy (``None``: missing)."""
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups its tag names."""
        return tuple(self.tags.get(GROUPS_TAG, "").split())


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What exists now: the cluster's data roles and wbspawner's data objects."""

    roles: Mapping[str, ObservedRole] = field(default_factory=dict)
    service_accounts: Mapping[tuple[str, str], JsonDict] = field(default_factory=dict)
    """By ``(namespace, name)``, those labelled ``wbspawner.io/data=access``."""
    volumes: Mapping[str, JsonDict] = field(default_factory=dict)
    """PersistentVolumes labelled ``wbspawner.io/data=volume``, by name."""
    claims: Mapping[tuple[str, str], JsonDict] = field(default_factory=dict)
    """Claims labelled ``wbspawner.io/data=volume``, by ``(namespace, name)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One call of a plan."""

    kind: ActionKind
    target: str
    """The role, ``namespace/name`` of a namespaced object, or a volume name."""
    detail: str
    params: JsonDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantChange:
    """A group's access to one bucket prefix, before and after."""

    group: str
    bucket: str
    prefix: str
    before: S3Access | None
    after: S3Access | None

    @property
    def kind(self) -> ChangeKind:
        """Added, widened, narrowed or removed."""
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "widened" if _RANK[self.after] > _RANK[self.before] else "narrowed"

    @property
    def where(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataPlan:
    """The actions that make data access so, and the grants they change."""

    actions: tuple[Action, ...]
    changes: tuple[GrantChange, ...]
    sets: tuple[AccessSet, ...]
    """Every desired access set (for the listing of roles)."""

    @property
    def empty(self) -> bool:
        """Whether nothing changes."""
        return not self.actions


def desired_tags(target: Target, s: AccessSet) -> dict[str, str]:
    """Return the tags of an access set's role."""
    tags = {CLUSTER_TAG: target.cluster, KEY_TAG: s.key}
    if s.groups:
        tags[GROUPS_TAG] = " ".join(s.groups)
    return tags


def _trust(target: Target, s: AccessSet) -> JsonDict:
    sa = data_service_account(s.key)
    subjects = [iam.subject(ns, sa) for ns in target.namespaces]
    provider = iam.provider_arn(target.account, target.issuer, target.partition)
    return iam.trust_policy(provider, target.issuer, subjects)


def _text(doc: JsonDict) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _grants_text(grants: tuple[S3Grant, ...]) -> str:
    return ", ".join(f"s3://{g.bucket}/{g.prefix} {g.access}" for g in grants)


def _role_actions(
    target: Target, s: AccessSet, have: ObservedRole | None
) -> list[Action]:
    name = data_role_name(target.cluster, s.key)
    trust, policy = _trust(target, s), iam.role_policy(s.grants)
    tags = desired_tags(target, s)
    out: list[Action] = []
    put = Action(
        kind="put-role-policy",
        target=name,
        detail=f"allow {_grants_text(s.grants)}",
        params={
            "RoleName": name,
            "PolicyName": POLICY_NAME,
            "PolicyDocument": _text(policy),
        },
    )
    if have is None:
        out.append(
            Action(
                kind="create-role",
                target=name,
                detail=f"for groups {', '.join(s.groups)}"
                if s.groups
                else "for members of several groups",
                params={
                    "RoleName": name,
                    "AssumeRolePolicyDocument": _text(trust),
                    "Description": "wbspawner data access (IRSA) of "
                    f"cluster {target.cluster}",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                },
            )
        )
        return [*out, put]
    if not iam.same_document(have.policy, policy):
        out.append(put)
    if not iam.same_document(have.trust, trust):
        out.append(
            Action(
                kind="update-trust",
                target=name,
                detail="trust the ServiceAccount in " + ", ".join(target.namespaces),
                params={"RoleName": name, "PolicyDocument": _text(trust)},
            )
        )
    if {k: have.tags.get(k) for k in tags} != tags or (
        GROUPS_TAG in have.tags and GROUPS_TAG not in tags
    ):
        out.append(
            Action(
                kind="tag-role",
                target=name,
                detail=f"groups: {tags.get(GROUPS_TAG, '(none)')}",
                params={
                    "RoleName": name,
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                    "Untag": [] if GROUPS_TAG in tags else [GROUPS_TAG],
                },
            )
        )
    return out


def _account_actions(
    target: Target, sets: Mapping[str, AccessSet], observed: Observed
) -> tuple[list[Action], list[Action]]:
    """Return the ServiceAccounts to create or update, and those to delete."""
    out: list[Action] = []
    gone: list[Action] = []
    wanted: set[tuple[str, str]] = set()
    for s in sets.values():
        name = data_service_account(s.key)
        arn = target.role_arn(data_role_name(target.cluster, s.key))
        for ns in target.namespaces:
            wanted.add((ns, name))
            body = pods.service_account(name, ns, arn, s.key)
            have = observed.service_accounts.get((ns, name))
            if have is None:
                out.append(
                    Action(
                        kind="create-service-account",
                        target=f"{ns}/{name}",
                        detail=f"role {arn}",
                        params=body,
                    )
                )
                continue
            meta = have.get("metadata") or {}
            annotations = meta.get("annotations") or {}
            if annotations.get(pods.ROLE_ARN_ANNOTATION) != arn or (
                have.get("automountServiceAccountToken") is not False
            ):
                out.append(
                    Action(
                        kind="update-service-account",
                        target=f"{ns}/{name}",
                        detail=f"role {arn}",
                        params={
                            "metadata": {
                                "annotations": {pods.ROLE_ARN_ANNOTATION: arn}
                            },
                            "automountServiceAccountToken": False,
                        },
                    )
                )
    for ns, name in sorted(set(observed.service_accounts) - wanted):
        gone.append(
            Action(
                kind="delete-service-account",
                target=f"{ns}/{name}",
                detail="no group combination has its grants any more",
            )
        )
    return out, gone


def efs_volumes(settings: DataSettings) -> dict[str, SharedVolume]:
    """Return the EFS volumes of every group, by name."""
    return {
        v.name: v
        for data in settings.groups.values()
        for v in data.volumes
        if v.kind == "efs"
    }


def _volume_actions(
    target: Target, settings: DataSettings, observed: Observed
) -> list[Action]:
    out: list[Action] = []
    wanted_pv: set[str] = set()
    wanted_pvc: set[tuple[str, str]] = set()
    for volume in efs_volumes(settings).values():
        for ns in target.namespaces:
            pv, pvc = pods.efs_objects(volume, ns)
            pv_name, claim = pv["metadata"]["name"], pvc["metadata"]["name"]
            wanted_pv.add(pv_name)
            wanted_pvc.add((ns, claim))
            have = observed.volumes.get(pv_name)
            handle = pods.efs_volume_handle(volume)
            same = have is not None and (
                ((have.get("spec") or {}).get("csi") or {}).get("volumeHandle")
                == handle
            )
            if not same:
                if have is not None:  # a PV's source cannot change: make it anew
                    out += _delete_volume(ns, claim, pv_name, "its file system changed")
                out.append(
                    Action(
                        kind="create-volume",
                        target=pv_name,
                        detail=f"EFS {handle} for {ns}",
                        params=pv,
                    )
                )
            if not same or (ns, claim) not in observed.claims:
                out.append(
                    Action(
                        kind="create-claim",
                        target=f"{ns}/{claim}",
                        detail=f"bound to {pv_name}",
                        params=pvc,
                    )
                )
    for ns, claim in sorted(set(observed.claims) - wanted_pvc):
        out.append(
            Action(kind="delete-claim", target=f"{ns}/{claim}", detail="no longer used")
        )
    for pv_name in sorted(set(observed.volumes) - wanted_pv):
        out.append(
            Action(kind="delete-volume", target=pv_name, detail="no longer used")
        )
    return out


def _delete_volume(ns: str, claim: str, pv: str, why: str) -> list[Action]:
    return [
        Action(kind="delete-claim", target=f"{ns}/{claim}", detail=why),
        Action(kind="delete-volume", target=pv, detail=why),
    ]


def grant_changes(
    desired: Mapping[str, tuple[S3Grant, ...]],
    observed: Mapping[str, tuple[S3Grant, ...]],
) -> tuple[GrantChange, ...]:
    """Return every group's grant that changes, sorted by group and bucket.

    Args:
        desired: each group's grants as the profiles say.
        observed: each group's grants as the applied roles say.

    Returns:
        The changes (none when both agree).
    """
    out: list[GrantChange] = []
    for group in sorted(set(desired) | set(observed)):
        before = {(g.bucket, g.prefix): g.access for g in observed.get(group, ())}
        after = {(g.bucket, g.prefix): g.access for g in desired.get(group, ())}
        for bucket, prefix in sorted(set(before) | set(after)):
            old, new = before.get((bucket, prefix)), after.get((bucket, prefix))
            if old != new:
                out.append(
                    GrantChange(
                        group=group, bucket=bucket, prefix=prefix, before=old, after=new
                    )
                )
    return tuple(out)


def observed_group_grants(observed: Observed) -> dict[str, tuple[S3Grant, ...]]:
    """Return each group's grants as the applied roles' tags and policies say."""
    return {
        group: iam.grants_of_policy(role.policy)
        for role in observed.roles.values()
        for group in role.groups
    }


def plan(settings: DataSettings, target: Target, observed: Observed) -> DataPlan:
    """Return the plan that makes IAM and Kubernetes match the data section.

    Args:
        settings: the profiles' data section.
        target: the cluster, account, OIDC issuer and namespaces.
        observed: what exists now.

    Returns:
        The ordered actions and the grant changes.

    """
    sets = access_sets(settings)
    actions: list[Action] = []
    wanted_roles = set()
    for s in sets.values():
        name = data_role_name(target.cluster, s.key)
        wanted_roles.add(name)
        actions += _role_actions(target, s, observed.roles.get(name))
    accounts, stale_accounts = _account_actions(target, sets, observed)
    actions += accounts
    actions += _volume_actions(target, settings, observed)
    actions += stale_accounts
    for name in sorted(set(observed.roles) - wanted_roles):
        groups = ", ".join(observed.roles[name].groups) or "members of several groups"
        actions.append(
            Action(
                kind="delete-role",
                target=name,
                detail=f"its grants are no longer given (was for {groups})",
                params={"RoleName": name},
            )
        )
    return DataPlan(
        actions=tuple(actions),
        changes=grant_changes(group_grants(sets), observed_group_grants(observed)),
        sets=tuple(sets[k] for k in sorted(sets)),
    )
