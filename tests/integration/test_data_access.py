"""``wbspawner data plan | apply`` against a moto server and devcluster over HTTP.

The admin command runs in-process (``wbspawner.cli.main.main``, in a thread)
against IAM, STS and EKS of the session's moto server and an in-process
devcluster API (no controllers: only objects are made). The profiles are the
``team-data`` example: two teams with S3 grants and an EFS share. Checked: what
plan shows, what apply makes (roles with their exact policies and OIDC trust,
ServiceAccounts annotated with their roles in the hub's and the Dask
namespace, EFS volumes and claims), that a second apply changes nothing, and
that removing a bucket from a group removes the grant. Then ``cost estimate
--live-s3`` measures the granted buckets' objects in moto's S3.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.services.moto_server import MotoServer
from tests.paths import REPO
from wbspawner.cli.main import main
from wbspawner.data import iam
from wbspawner.naming import data_role_prefix

pytestmark = pytest.mark.integration

HUB_NS, DASK_NS = "jhub", "dask"
EXAMPLE = REPO / "profiles/examples/team-data/profiles.yaml"


@dataclass
class Lab:
    cluster: Cluster
    moto: MotoServer
    name: str
    kubeconfig: Path
    profiles: Path
    issuer: str


@pytest.fixture
async def lab(
    moto: MotoServer, tmp_path: Path, moto_credentials: None
) -> AsyncIterator[Lab]:
    name = f"data{uuid.uuid4().hex[:6]}"
    iam_client, eks = moto.client("iam"), moto.client("eks")
    role = iam_client.create_role(
        RoleName=f"{name}-eks", AssumeRolePolicyDocument="{}"
    )["Role"]
    eks.create_cluster(
        name=name, roleArn=role["Arn"], resourcesVpcConfig={"subnetIds": []}
    )
    issuer = eks.describe_cluster(name=name)["cluster"]["identity"]["oidc"]["issuer"]
    try:  # moto may give two clusters one issuer
        iam_client.create_open_id_connect_provider(
            Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
        )
    except iam_client.exceptions.EntityAlreadyExistsException:
        pass
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(EXAMPLE, profiles / "profiles.yaml")
    config = ClusterConfig(
        time_factor=0.01,
        state_dir=str(tmp_path / "state"),
        static_nodes=({"metadata": {"name": "core"}},),
        namespaces=("default", "kube-system", HUB_NS, DASK_NS),
    )
    async with Cluster(config, controllers=False) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", HUB_NS)
        yield Lab(cluster, moto, name, kubeconfig, profiles, issuer)
    for r in _roles(moto, name):  # moto keeps state for the session
        for p in iam_client.list_role_policies(RoleName=r)["PolicyNames"]:
            iam_client.delete_role_policy(RoleName=r, PolicyName=p)
        iam_client.delete_role(RoleName=r)


def _roles(moto: MotoServer, cluster: str) -> list[str]:
    prefix = data_role_prefix(cluster)
    pages = moto.client("iam").get_paginator("list_roles").paginate()
    return sorted(
        r["RoleName"]
        for page in pages
        for r in page["Roles"]
        if r["RoleName"].startswith(prefix)
    )


async def data_cli(lab: Lab, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "data",
        *args,
        "--cluster",
        lab.name,
        "--kubeconfig",
        str(lab.kubeconfig),
        "--namespace",
        HUB_NS,
        "--dask-namespace",
        DASK_NS,
        "--region",
        "us-east-1",
        "--endpoint-url",
        lab.moto.endpoint_url,
        "--profiles",
        str(lab.profiles),
    ]
    code = await asyncio.to_thread(main, argv, environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _objects(lab: Lab, resource: str, namespace: str | None) -> dict[str, Any]:
    assert lab.cluster.store is not None
    items, _ = lab.cluster.store.list(resource, namespace, "wbspawner.io/data")
    return {o["metadata"]["name"]: o for o in items}


def _iam_state(lab: Lab) -> dict[str, Any]:
    client = lab.moto.client("iam")
    state: dict[str, Any] = {}
    for name in _roles(lab.moto, lab.name):
        role = client.get_role(RoleName=name)["Role"]
        policy = client.get_role_policy(RoleName=name, PolicyName="wbspawner-data")
        tags = client.list_role_tags(RoleName=name)["Tags"]
        state[name] = (role, policy["PolicyDocument"], tags)
    return state


async def test_apply_makes_roles_and_accounts_once_and_removal_removes(
    lab: Lab,
) -> None:
    code, out, err = await data_cli(lab, "plan", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert {(c["group"], c["s3"], c["change"]) for c in shown["grant_changes"]} == {
        ("team-a", "s3://team-a/", "added"),
        ("team-a", "s3://reference-data/curated/", "added"),
        ("team-b", "s3://team-b/", "added"),
        ("team-b", "s3://reference-data/", "added"),
    }
    assert "2 grant(s)" not in err and "give groups more access" in err
    assert not _roles(lab.moto, lab.name)  # plan changes nothing

    code, out, err = await data_cli(lab, "apply")
    assert code == 0, err
    assert "failed" not in out
    roles = _roles(lab.moto, lab.name)
    assert len(roles) == 3  # team-a, team-b, a member of both
    state = _iam_state(lab)
    accounts = {ns: _objects(lab, "serviceaccounts", ns) for ns in (HUB_NS, DASK_NS)}
    host = iam.issuer_host_path(lab.issuer)
    for name, (role, _, tags) in state.items():
        key = name.removeprefix(data_role_prefix(lab.name))
        sa = f"wbspawner-data-{key}"
        for ns in (HUB_NS, DASK_NS):
            annotations = accounts[ns][sa]["metadata"]["annotations"]
            assert annotations == {"eks.amazonaws.com/role-arn": role["Arn"]}
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"]["Federated"].endswith(f"oidc-provider/{host}")
        assert sorted(statement["Condition"]["StringEquals"][f"{host}:sub"]) == [
            f"system:serviceaccount:{DASK_NS}:{sa}",
            f"system:serviceaccount:{HUB_NS}:{sa}",
        ]
        assert {"Key": "wbspawner.io/cluster", "Value": lab.name} in tags
    team_a = next(
        doc
        for _, doc, tags in state.values()
        if {"Key": "wbspawner.io/groups", "Value": "team-a"} in tags
    )
    assert iam.grants_of_policy(team_a) == iam.grants_of_policy(
        iam.role_policy(
            [
                _grant("reference-data", "curated/"),
                _grant("team-a", access="read-write"),
            ]
        )
    )
    for ns in (HUB_NS, DASK_NS):
        claim = _objects(lab, "persistentvolumeclaims", ns)[
            "wbspawner-data-shared-datasets"
        ]
        assert claim["spec"]["volumeName"] == f"wbspawner-data-{ns}-shared-datasets"
    volumes = _objects(lab, "persistentvolumes", None)
    assert sorted(volumes) == [
        f"wbspawner-data-{DASK_NS}-shared-datasets",
        f"wbspawner-data-{HUB_NS}-shared-datasets",
    ]

    # Twice: nothing changes, in IAM or in Kubernetes.
    versions = {
        ns: {n: o["metadata"]["resourceVersion"] for n, o in accounts[ns].items()}
        for ns in accounts
    }
    code, out, err = await data_cli(lab, "apply")
    assert code == 0, err
    assert "data access is up to date" in out and "done" not in out
    assert _iam_state(lab) == state
    assert {
        ns: {
            n: o["metadata"]["resourceVersion"]
            for n, o in _objects(lab, "serviceaccounts", ns).items()
        }
        for ns in accounts
    } == versions

    # team-a loses the reference bucket: the plan says so, apply removes it.
    text = (lab.profiles / "profiles.yaml").read_text()
    trimmed = text.replace(
        "        - bucket: reference-data\n          prefix: curated/\n", ""
    )
    assert trimmed != text
    (lab.profiles / "profiles.yaml").write_text(trimmed)
    code, out, err = await data_cli(lab, "plan")
    assert code == 0, err
    assert "team-a  s3://reference-data/curated/  removed" in out
    code, out, err = await data_cli(lab, "apply")
    assert code == 0, err
    after = _iam_state(lab)
    team_a = next(
        doc
        for _, doc, tags in after.values()
        if {"Key": "wbspawner.io/groups", "Value": "team-a"} in tags
    )
    assert iam.grants_of_policy(team_a) == (_grant("team-a", access="read-write"),)
    assert len(after) == 3 and set(after) != set(state)  # two sets changed keys
    assert len(_objects(lab, "serviceaccounts", HUB_NS)) == 3
    code, out, err = await data_cli(lab, "plan")
    assert (code, "data access is up to date" in out) == (0, True), out + err


def _grant(bucket: str, prefix: str = "", access: str = "read") -> Any:
    from wbspawner.model import S3Grant

    return S3Grant(bucket=bucket, prefix=prefix, access=access)  # type: ignore[arg-type]


async def test_apply_refuses_without_the_clusters_oidc_provider(lab: Lab) -> None:
    code, _, err = await data_cli(
        lab, "apply", "--oidc-issuer", "https://oidc.example.org/id/none"
    )
    assert code == 1
    assert "IAM has no OIDC provider" in err
    assert "eksctl utils associate-iam-oidc-provider" in err
    assert not _roles(lab.moto, lab.name)


def test_cost_estimate_measures_the_granted_buckets(
    moto: MotoServer, tmp_path: Path, moto_credentials: None
) -> None:
    s3 = moto.client("s3")
    stored = {
        "team-a": {"x.csv": 3000, "deep/y.parquet": 5000},
        "team-b": {"z.csv": 1000},
        # team-b reads all of it, team-a only curated/: counted once
        "reference-data": {"curated/a": 2000, "raw/b": 7000},
    }
    for bucket, objects in stored.items():
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for key, size in objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "name: data team\nusers: 2\ns3_gib: 5000\ns3_gb_month: 0.023\n"
        "compute:\n  - size: standard\n    hours_per_month: 10\n"
    )
    out, err = io.StringIO(), io.StringIO()
    argv = ["cost", "estimate", "--scenario", str(scenario), "--live-s3", "--json"]
    argv += ["--profiles", str(EXAMPLE), "--endpoint-url", moto.endpoint_url]
    assert main(argv, environ={}, stdout=out, stderr=err) == 0, err.getvalue()
    (line,) = [i for i in json.loads(out.getvalue())["items"] if i["category"] == "s3"]
    total = sum(sum(o.values()) for o in stored.values())
    assert line["quantity"] == pytest.approx(total / 2**30)
    assert (line["source"], line["name"]) == ("measured", "S3 data (granted buckets)")
    assert "s3://reference-data/: " in err.getvalue()
    assert "in 2 objects" in err.getvalue()
