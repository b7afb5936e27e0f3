"""Plan data access: which roles, policies, ServiceAccounts and volumes change.

This module owns the decision of ``wbspawner data plan | apply``: from the
profiles' data section and what IAM and Kubernetes hold now
(:class:`Observed`), an ordered :class:`DataPlan` of actions, each with the
exact parameters it sends, and the grants that change per group
(:class:`GrantChange`: added, widened, narrowed, removed) so that access is
never widened silently.

What is desired: per distinct union of S3 grants
(:func:`wbspawner.profiles.data_access.access_sets`) one IAM role with one inline policy
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
from dataclasses import dataclass
from typing import Literal

from wbspawner.data import iam
from wbspawner.data.state import (
    CLUSTER_TAG,
    GROUPS_TAG,
    KEY_TAG,
    POLICY_NAME,
    Action,
    JsonDict,
    Observed,
    ObservedRole,
    Target,
)
from wbspawner.data.volumes import volume_actions
from wbspawner.model import DataSettings, S3Access, S3Grant
from wbspawner.naming import data_role_name, data_service_account
from wbspawner.profiles.data_access import AccessSet, access_sets, group_grants
from wbspawner.spawn import data_pods as pods

__all__ = [
    "Action",
    "DataPlan",
    "GrantChange",
    "Observed",
    "ObservedRole",
    "Target",
    "grant_changes",
    "plan",
]

ChangeKind = Literal["added", "widened", "narrowed", "removed"]
_RANK: dict[S3Access | None, int] = {None: 0, "read": 1, "read-write": 2}


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
    actions += volume_actions(target, settings, observed)
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
