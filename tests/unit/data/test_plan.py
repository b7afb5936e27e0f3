"""The data access planner: desired roles and objects against what exists.

Every table starts from what IAM and Kubernetes hold (``Observed``), plans, and
then checks that applying the plan (simulated here by :func:`_applied`, which
turns the actions into the state they make) leaves nothing to do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from wbspawner.data import iam
from wbspawner.data.plan import (
    GROUPS_TAG,
    Action,
    DataPlan,
    Observed,
    ObservedRole,
    Target,
    grant_changes,
    plan,
)
from wbspawner.model import DataSettings, GroupData, S3Grant, SharedVolume
from wbspawner.naming import data_role_name, data_service_account
from wbspawner.profiles.data_access import access_key
from wbspawner.spawn.data_pods import ROLE_ARN_ANNOTATION

TARGET = Target(
    cluster="dev",
    account="123456789012",
    issuer="https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
    namespaces=("jhub", "dask"),
)


def _grant(bucket: str, prefix: str = "", access: str = "read") -> S3Grant:
    return S3Grant(bucket=bucket, prefix=prefix, access=access)  # type: ignore[arg-type]


EFS = SharedVolume(
    name="shared", mount_path="/data/shared", kind="efs", file_system_id="fs-12345678"
)


def _settings(**groups: tuple[S3Grant, ...]) -> DataSettings:
    return DataSettings(groups={g: GroupData(s3=s) for g, s in groups.items()})


def _applied(p: DataPlan, before: Observed) -> Observed:
    """Return the state a plan's actions leave (what apply makes)."""
    roles = dict(before.roles)
    accounts = dict(before.service_accounts)
    volumes, claims = dict(before.volumes), dict(before.claims)
    for a in p.actions:
        ns, _, name = a.target.rpartition("/")
        role = roles.get(a.target)
        if a.kind == "create-role":
            tags = {t["Key"]: t["Value"] for t in a.params["Tags"]}
            trust = json.loads(a.params["AssumeRolePolicyDocument"])
            roles[a.target] = ObservedRole(name=a.target, trust=trust, tags=tags)
        elif a.kind == "put-role-policy" and role:
            doc = json.loads(a.params["PolicyDocument"])
            roles[a.target] = ObservedRole(
                name=a.target, trust=role.trust, policy=doc, tags=role.tags
            )
        elif a.kind == "update-trust" and role:
            doc = json.loads(a.params["PolicyDocument"])
            roles[a.target] = ObservedRole(
                name=a.target, trust=doc, policy=role.policy, tags=role.tags
            )
        elif a.kind == "tag-role" and role:
            tags = {**role.tags, **{t["Key"]: t["Value"] for t in a.params["Tags"]}}
            for key in a.params["Untag"]:
                tags.pop(key, None)
            roles[a.target] = ObservedRole(
                name=a.target, trust=role.trust, policy=role.policy, tags=tags
            )
        elif a.kind == "delete-role":
            roles.pop(a.target)
        elif a.kind in ("create-service-account", "update-service-account"):
            accounts[(ns, name)] = _merged(accounts.get((ns, name), {}), a.params)
        elif a.kind == "delete-service-account":
            accounts.pop((ns, name))
        elif a.kind == "create-volume":
            volumes[a.target] = a.params
        elif a.kind == "create-claim":
            claims[(ns, name)] = a.params
        elif a.kind == "delete-volume":
            volumes.pop(a.target)
        elif a.kind == "delete-claim":
            claims.pop((ns, name))
    return Observed(
        roles=roles, service_accounts=accounts, volumes=volumes, claims=claims
    )


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merged(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _kinds(p: DataPlan) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in p.actions]


def test_from_nothing_every_role_and_account_is_made_then_nothing_changes() -> None:
    settings = _settings(a=(_grant("ta"),), b=(_grant("tb", access="read-write"),))
    first = plan(settings, TARGET, Observed())
    kinds = [k for k, _ in _kinds(first)]
    assert kinds.count("create-role") == 3  # {a}, {b}, {a, b}
    assert kinds.count("put-role-policy") == 3
    assert kinds.count("create-service-account") == 6  # 3 sets × 2 namespaces
    assert [(c.group, c.where, c.kind) for c in first.changes] == [
        ("a", "s3://ta/", "added"),
        ("b", "s3://tb/", "added"),
    ]
    # a role comes before the ServiceAccount that names it
    assert kinds.index("create-role") < kinds.index("create-service-account")
    again = plan(settings, TARGET, _applied(first, Observed()))
    assert again.empty and not again.changes


def test_the_service_account_names_its_role_and_the_role_trusts_it() -> None:
    settings = _settings(a=(_grant("ta"),))
    first = plan(settings, TARGET, Observed())
    key = access_key((_grant("ta"),))
    role, sa = data_role_name("dev", key), data_service_account(key)
    create = next(a for a in first.actions if a.kind == "create-role")
    assert create.target == role
    trust = json.loads(create.params["AssumeRolePolicyDocument"])
    (statement,) = trust["Statement"]
    host = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::123456789012:oidc-provider/{host}"
    }
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        f"{host}:sub": [
            f"system:serviceaccount:dask:{sa}",
            f"system:serviceaccount:jhub:{sa}",
        ],
        f"{host}:aud": "sts.amazonaws.com",
    }
    body = next(a.params for a in first.actions if a.target == f"jhub/{sa}")
    assert body["metadata"]["annotations"] == {
        ROLE_ARN_ANNOTATION: f"arn:aws:iam::123456789012:role/{role}"
    }
    assert body["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("before", "after", "changes"),
    [
        # a bucket removed from a group: its role goes, the grant is removed
        (
            {"a": (_grant("ta"), _grant("tx"))},
            {"a": (_grant("ta"),)},
            [("a", "s3://tx/", "removed")],
        ),
        # read → read-write: widened, and shown
        (
            {"a": (_grant("ta"),)},
            {"a": (_grant("ta", access="read-write"),)},
            [("a", "s3://ta/", "widened")],
        ),
        # read-write → read: narrowed
        (
            {"a": (_grant("ta", access="read-write"),)},
            {"a": (_grant("ta"),)},
            [("a", "s3://ta/", "narrowed")],
        ),
        # a group gone from the data section: each of its grants removed
        (
            {"a": (_grant("ta"),), "b": (_grant("tb"), _grant("tc", "p/"))},
            {"a": (_grant("ta"),)},
            [("b", "s3://tb/", "removed"), ("b", "s3://tc/p/", "removed")],
        ),
        # a new prefix grant: added
        (
            {"a": (_grant("ta"),)},
            {"a": (_grant("ta"), _grant("tb", "in/"))},
            [("a", "s3://tb/in/", "added")],
        ),
    ],
)
def test_changes_are_shown_applied_and_converge(
    before: dict[str, tuple[S3Grant, ...]],
    after: dict[str, tuple[S3Grant, ...]],
    changes: list[tuple[str, str, str]],
) -> None:
    start = _applied(plan(_settings(**before), TARGET, Observed()), Observed())
    second = plan(_settings(**after), TARGET, start)
    assert [(c.group, c.where, c.kind) for c in second.changes] == changes
    assert not second.empty
    end = _applied(second, start)
    assert plan(_settings(**after), TARGET, end).empty
    # what stays is exactly the desired roles and accounts
    keys = {access_key(g) for g in after.values()}
    if len(after) > 1:
        keys.add(access_key([g for grants in after.values() for g in grants]))
    assert set(end.roles) == {data_role_name("dev", k) for k in keys}
    assert {n for _, n in end.service_accounts} == {
        data_service_account(k) for k in keys
    }
    deletes = [a for a in second.actions if a.kind.startswith("delete-")]
    assert all(
        second.actions.index(a) > i
        for a in deletes
        for i, b in enumerate(second.actions)
        if not b.kind.startswith("delete-")
    )


def test_drift_is_repaired() -> None:
    settings = _settings(a=(_grant("ta"),))
    good = _applied(plan(settings, TARGET, Observed()), Observed())
    (name,) = good.roles
    role = good.roles[name]
    wide = iam.role_policy([_grant("ta", access="read-write"), _grant("secret")])
    drifted = Observed(
        roles={
            name: ObservedRole(
                name=name,
                trust={"Statement": []},
                policy=wide,
                tags={**role.tags, GROUPS_TAG: "someone-else"},
            )
        },
        service_accounts={
            k: {**v, "metadata": {**v["metadata"], "annotations": {}}}
            for k, v in good.service_accounts.items()
        },
    )
    repair = plan(settings, TARGET, drifted)
    assert sorted({k for k, _ in _kinds(repair)}) == [
        "put-role-policy",
        "tag-role",
        "update-service-account",
        "update-trust",
    ]
    # the plan says what the drift had given away, to whom
    assert [(c.group, c.where, c.kind) for c in repair.changes] == [
        ("a", "s3://ta/", "added"),
        ("someone-else", "s3://secret/", "removed"),
        ("someone-else", "s3://ta/", "removed"),
    ]
    assert plan(settings, TARGET, _applied(repair, drifted)).empty


def test_efs_shares_get_a_volume_and_claim_per_namespace() -> None:
    settings = DataSettings(groups={"a": GroupData(volumes=(EFS,))})
    first = plan(settings, TARGET, Observed())
    assert _kinds(first) == [
        ("create-volume", "wbspawner-data-jhub-shared"),
        ("create-claim", "jhub/wbspawner-data-shared"),
        ("create-volume", "wbspawner-data-dask-shared"),
        ("create-claim", "dask/wbspawner-data-shared"),
    ]
    made = _applied(first, Observed())
    assert plan(settings, TARGET, made).empty
    moved = SharedVolume(
        name="shared",
        mount_path="/data/shared",
        kind="efs",
        file_system_id="fs-87654321",
    )
    change = plan(DataSettings(groups={"a": GroupData(volumes=(moved,))}), TARGET, made)
    assert _kinds(change)[:4] == [
        ("delete-claim", "jhub/wbspawner-data-shared"),
        ("delete-volume", "wbspawner-data-jhub-shared"),
        ("create-volume", "wbspawner-data-jhub-shared"),
        ("create-claim", "jhub/wbspawner-data-shared"),
    ]
    gone = plan(DataSettings(), TARGET, made)
    assert sorted(k for k, _ in _kinds(gone)) == [
        "delete-claim",
        "delete-claim",
        "delete-volume",
        "delete-volume",
    ]


def test_grant_changes_table() -> None:
    changes = grant_changes(
        {"a": (_grant("x", access="read-write"), _grant("y"))},
        {"a": (_grant("x"), _grant("z"))},
    )
    assert [(c.where, c.before, c.after, c.kind) for c in changes] == [
        ("s3://x/", "read", "read-write", "widened"),
        ("s3://y/", None, "read", "added"),
        ("s3://z/", "read", None, "removed"),
    ]


def test_actions_carry_no_surprises() -> None:
    p = plan(_settings(a=(_grant("ta", "in/"),)), TARGET, Observed())
    put = next(a for a in p.actions if a.kind == "put-role-policy")
    assert isinstance(put, Action)
    policy = json.loads(put.params["PolicyDocument"])
    assert policy == iam.role_policy([_grant("ta", "in/")])
