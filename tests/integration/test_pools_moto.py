"""``wbspawner pools`` against a moto server, and devcluster's autoscaler on the result.

Each test makes its own VPC, subnets (one per zone, tagged for the cluster) and
EKS cluster under a unique cluster name, so tests never see each other's groups.
moto refuses ``put_parameter`` on ``/aws/service/...`` names (as AWS does), so the
EKS AMI parameters are seeded into moto's in-process SSM backend, which the
server thread shares with this process.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import fcntl
import io
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devcluster.services import eks_world
from tests.aws_support import SendErrors
from tests.paths import REPO
from wbspawner.adapters.aws import make_client
from wbspawner.catalog.instances import load_catalog
from wbspawner.cli import pools as cli_pools
from wbspawner.cli.main import main
from wbspawner.errors import TemporaryAwsError
from wbspawner.naming import group_name
from wbspawner.pools.autoscaler_values import expander_priorities
from wbspawner.pools.aws import AsgPools
from wbspawner.pools.aws_cluster import SsmAmis
from wbspawner.pools.nodes import ami_parameter
from wbspawner.profiles.loader import load_profiles

pytestmark = pytest.mark.integration

PROFILES_DIR = REPO / "profiles"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
K8S = "1.33"
AMIS = {
    ami_parameter(K8S, "x86_64", False): "ami-0eks0standard133",
    ami_parameter(K8S, "x86_64", True): "ami-0eks00nvidia133",
}
PROFILES = load_profiles([PROFILES_DIR], load_catalog())


def seed_eks_amis() -> None:
    """Put the EKS AMI parameters into moto's SSM backend (server mode refuses them)."""
    eks_world.seed_eks_amis(REGION, AMIS)


@dataclass
class Env:
    """One test's AWS world: a cluster name, its subnets, the moto server."""

    moto: Any
    name: str
    subnets: dict[str, str]

    def client(self, service: str) -> Any:
        return self.moto.client(service)

    def cli(self, *args: str, profiles: Path = PROFILES_DIR) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        action, *rest = args
        argv = [
            "pools",
            action,
            "--profiles",
            str(profiles),
            "--cluster",
            self.name,
            "--endpoint-url",
            self.moto.endpoint_url,
            *rest,
        ]
        code = main(argv, environ={}, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def plan_json(self, **kw: Any) -> dict[str, Any]:
        code, out, err = self.cli("plan", "--json", **kw)
        assert code == 0, err
        return json.loads(out)

    def groups(self) -> dict[str, dict[str, Any]]:
        pages = self.client("autoscaling").get_paginator("describe_auto_scaling_groups")
        filters = [{"Name": "tag:wbspawner.io/cluster", "Values": [self.name]}]
        return {
            g["AutoScalingGroupName"]: g
            for p in pages.paginate(Filters=filters)
            for g in p["AutoScalingGroups"]
        }

    def expected_groups(self, profiles=PROFILES) -> set[str]:
        return {
            group_name(self.name, p.name, z, REGION, c)
            for p in profiles.pools.values()
            for z in p.zones
            for c in p.capacity_types
        }


@pytest.fixture
def aws_env(moto, monkeypatch, moto_credentials) -> Env:
    for var in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(var, raising=False)
    return make_env(moto, prefix=19)


def make_env(moto, prefix: int) -> Env:
    name = f"t{uuid.uuid4().hex[:8]}"
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for i, zone in enumerate(ZONES):
        tags = [{"Key": f"kubernetes.io/cluster/{name}", "Value": "shared"}]
        subnets[zone] = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=f"10.0.{i * 32}.0/{prefix}",
            AvailabilityZone=zone,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
        )["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=name, Description="nodes", VpcId=vpc)[
        "GroupId"
    ]
    moto.client("eks").create_cluster(
        name=name,
        version=K8S,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={
            "subnetIds": list(subnets.values()),
            "securityGroupIds": [sg],
        },
    )
    seed_eks_amis()
    return Env(moto=moto, name=name, subnets=subnets)


class Inject:
    """A botocore ``before-call`` hook answering chosen calls itself.

    Calls ``nth`` … ``nth + times − 1`` get an AWS error ``code`` (or, with
    ``response``, that successful response); the others go to moto. Answered at
    ``before-call``, an error is what botocore's retries would end with (they are
    skipped); :class:`SendHook` shows the retries themselves.
    """

    def __init__(
        self,
        code: str = "",
        *,
        nth: int = 1,
        times: int = 1,
        message: str = "injected",
        response: dict[str, Any] | None = None,
    ) -> None:
        self.code, self.nth, self.times, self.message = code, nth, times, message
        self.response = response
        self.calls = 0

    def __call__(self, **_kwargs: Any) -> Any:
        self.calls += 1
        if not self.nth <= self.calls < self.nth + self.times:
            return None
        if self.response is not None:
            return _Http(200), self.response
        error = {"Error": {"Code": self.code, "Message": self.message}}
        return _Http(400), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    def attach(self, client: Any, operation: str) -> Inject:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-call.{service}.{operation}", self)
        return self


@dataclass
class _Http:
    status_code: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def inject_into_cli(monkeypatch, service: str, operation: str, hook: Any) -> None:
    """Make the CLI's boto3 clients carry ``hook`` on one operation."""
    real = cli_pools.make_clients

    def hooked(services, region: str, endpoint_url: str | None = None):
        clients = real(services, region, endpoint_url)
        hook.attach(clients[service], operation)
        return clients

    monkeypatch.setattr(cli_pools, "make_clients", hooked)


def _tags(group: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in group["Tags"]}


def _lt_data(ec2, name: str) -> dict[str, Any]:
    v = ec2.describe_launch_template_versions(
        LaunchTemplateName=name, Versions=["$Default"]
    )
    return v["LaunchTemplateVersions"][0]["LaunchTemplateData"]


# ---------------------------------------------------------------------------- tests


def test_apply_creates_every_group_and_a_second_apply_changes_nothing(aws_env):
    code, out, _ = aws_env.cli("apply", "--dry-run")
    assert code == 0 and "would run" in out and aws_env.groups() == {}
    code, out, err = aws_env.cli("apply")
    assert code == 0, err + out
    groups = aws_env.groups()
    assert set(groups) == aws_env.expected_groups()
    ec2 = aws_env.client("ec2")
    lts = ec2.describe_launch_templates(
        Filters=[{"Name": "tag:wbspawner.io/cluster", "Values": [aws_env.name]}],
        MaxResults=200,
    )["LaunchTemplates"]
    assert {lt["LaunchTemplateName"] for lt in lts} == set(groups)
    for name, g in groups.items():
        tags = _tags(g)
        pool = PROFILES.pools[tags["wbspawner.io/pool"]]
        zone, capacity = g["AvailabilityZones"][0], tags["wbspawner.io/capacity"]
        assert g["AvailabilityZones"] == [zone]
        assert g["VPCZoneIdentifier"] == aws_env.subnets[zone]
        assert (g["MinSize"], g["MaxSize"]) == (pool.min_nodes, pool.max_nodes)
        assert g["CapacityRebalance"] is (capacity == "spot")
        dist = g["MixedInstancesPolicy"]["InstancesDistribution"]
        assert dist["OnDemandPercentageAboveBaseCapacity"] == (
            0 if capacity == "spot" else 100
        )
        t = "k8s.io/cluster-autoscaler/"
        assert tags[f"{t}enabled"] == "true" and f"{t}{aws_env.name}" in tags
        assert tags[f"{t}node-template/label/wbspawner.io/pool"] == pool.name
        assert tags[f"{t}node-template/label/wbspawner.io/capacity"] == capacity
        assert (
            tags[f"{t}node-template/taint/wbspawner.io/pool"]
            == f"{pool.name}:NoSchedule"
        )
        assert (
            tags[f"{t}node-template/resources/ephemeral-storage"]
            == f"{pool.root_volume_gib}Gi"
        )
        assert tags["wbspawner.io/size"] and tags["Name"] == name
        data = _lt_data(ec2, name)
        gpu = tags.get(f"{t}node-template/resources/nvidia.com/gpu")
        if pool.is_gpu:
            assert gpu == str(pool.gpu_count)
            assert tags[f"{t}node-template/taint/nvidia.com/gpu"] == ":NoSchedule"
            assert data["ImageId"] == AMIS[ami_parameter(K8S, "x86_64", True)]
        else:
            assert gpu is None
            assert data["ImageId"] == AMIS[ami_parameter(K8S, "x86_64", False)]
        user_data = base64.b64decode(data["UserData"]).decode()
        assert f"wbspawner.io/pool={pool.name}" in user_data
        assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert aws_env.plan_json()["plan"]["changes"] == 0
    code, out, err = aws_env.cli("apply")
    assert code == 0, err
    assert "Apply: nothing to do." in out
    assert "No changes: AWS matches the profiles." in out


def _edited_profiles(tmp_path: Path, old: str, new: str) -> Path:
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, target, ignore=shutil.ignore_patterns("examples"))
    pools = target / "10-pools.yaml"
    text = pools.read_text()
    assert text.count(old) == 1
    pools.write_text(text.replace(old, new))
    return target


def test_a_changed_size_gives_a_minimal_diff(aws_env, tmp_path):
    assert aws_env.cli("apply")[0] == 0
    mem64 = (
        "instance_types: [r5.2xlarge, r6i.2xlarge]\n"
        "    capacity_types: [spot, on-demand]\n"
        "    zones: [us-east-1a, us-east-1b, us-east-1c]\n"
        "    max_nodes: "
    )
    edited = _edited_profiles(tmp_path, mem64 + "10", mem64 + "14")
    code, out, err = aws_env.cli("plan", "--json", profiles=edited)
    assert code == 0, err
    actions = json.loads(out)["plan"]["actions"]
    mem64 = {n for n in aws_env.expected_groups() if "-mem64-" in n}
    assert {(a["kind"], a["target"]) for a in actions} == {
        ("update-asg", n) for n in mem64
    }
    assert all([c["field"] for c in a["changes"]] == ["MaxSize"] for a in actions)
    assert all(a["params"]["MaxSize"] == 14 for a in actions)
    assert aws_env.cli("apply", profiles=edited)[0] == 0
    assert {g["MaxSize"] for n, g in aws_env.groups().items() if n in mem64} == {14}
    code, out, _ = aws_env.cli("plan", "--json", profiles=edited)
    assert json.loads(out)["plan"]["changes"] == 0, out


def test_an_apply_that_fails_half_way_converges_when_run_again(aws_env, monkeypatch):
    hook = Inject(
        "InternalFailure", nth=20, message="We encountered an internal error."
    )
    inject_into_cli(monkeypatch, "autoscaling", "CreateAutoScalingGroup", hook)
    code, out, err = aws_env.cli("apply")
    assert code == 1
    assert (
        re.search(r"^failed\s+create-asg wbspawner-", out, re.M)
        and "InternalFailure" in out
    )
    assert "run apply again" in out
    assert len(aws_env.groups()) == 19
    # The hook stays attached but only ever fails once: the re-run goes through.
    plan = aws_env.plan_json()["plan"]
    kinds = {a["kind"] for a in plan["actions"]}
    assert kinds == {"create-asg"}  # every template exists; only the missing groups
    assert plan["changes"] == len(aws_env.expected_groups()) - 19
    assert aws_env.cli("apply")[0] == 0
    assert set(aws_env.groups()) == aws_env.expected_groups()
    assert aws_env.plan_json()["plan"]["changes"] == 0


def test_a_new_version_that_was_not_made_default_is_finished_on_the_next_run(
    aws_env, monkeypatch
):
    assert aws_env.cli("apply")[0] == 0
    pin = ("--ami", "nvidia=ami-0newer00nvidia")
    inject_into_cli(
        monkeypatch, "ec2", "ModifyLaunchTemplate", Inject("InternalFailure")
    )
    code, out, _ = aws_env.cli("apply", *pin)
    assert code == 1 and re.search(r"^failed\s+set-default-version", out, re.M)
    first_gpu = min(n for n in aws_env.expected_groups() if "-gpu-" in n)
    # The default version still holds the old AMI: unpinned, nothing to do.
    assert aws_env.plan_json()["plan"]["changes"] == 0
    # Pinned, the half-made template only needs its version 2 made the default.
    code, out, _ = aws_env.cli("plan", "--json", *pin)
    mine = [
        (a["kind"], a["params"].get("DefaultVersion"))
        for a in json.loads(out)["plan"]["actions"]
        if a["target"] == first_gpu
    ]
    assert mine == [("set-default-version", "2")]
    assert aws_env.cli("apply", *pin)[0] == 0
    code, out, _ = aws_env.cli("plan", "--json", *pin)
    assert json.loads(out)["plan"]["changes"] == 0
    assert _lt_data(aws_env.client("ec2"), first_gpu)["ImageId"] == "ami-0newer00nvidia"


def test_groups_leave_only_with_allow_delete(aws_env):
    minimal = PROFILES_DIR / "examples" / "minimal-single-az"
    gpu_only = PROFILES_DIR / "examples" / "gpu-only"
    assert aws_env.cli("apply", profiles=minimal)[0] == 0
    old = set(aws_env.groups())
    busy = min(old)
    aws_env.client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=busy, DesiredCapacity=1
    )
    code, out, err = aws_env.cli("apply", profiles=gpu_only)
    assert code == 0, err
    assert out.count("delete-asg (blocked)") == len(old)
    assert "has 1 node(s); pass --allow-delete to delete" in out
    assert old <= set(aws_env.groups())
    code, out, err = aws_env.cli("apply", "--allow-delete", profiles=gpu_only)
    assert code == 0, err
    loaded = load_profiles([gpu_only], load_catalog())
    assert set(aws_env.groups()) == aws_env.expected_groups(loaded)
    lts = aws_env.client("ec2").describe_launch_templates(
        Filters=[{"Name": "tag:wbspawner.io/cluster", "Values": [aws_env.name]}],
        MaxResults=200,
    )["LaunchTemplates"]
    assert {lt["LaunchTemplateName"] for lt in lts} == aws_env.expected_groups(loaded)
    code, out, _ = aws_env.cli("plan", "--json", "--allow-delete", profiles=gpu_only)
    assert json.loads(out)["plan"]["actions"] == []


def test_throttling_is_retried_then_explained(aws_env, monkeypatch):
    """botocore's retries, counted at ``before-send`` (after its retry handler)."""
    throttled = [(400, "Throttling")] * 2
    hook = SendHook("DescribeAutoScalingGroups", *throttled, message="Rate exceeded")
    inject_into_cli(monkeypatch, "autoscaling", "DescribeAutoScalingGroups", hook)
    code, _, err = aws_env.cli("plan")
    assert code == 0, err
    assert hook.errors.attempts == 3
    asg = make_client("autoscaling", REGION, aws_env.moto.endpoint_url, max_attempts=3)
    always = SendErrors(
        asg, "DescribeAutoScalingGroups", *[(400, "Throttling")] * 99, message="Rate"
    )
    with pytest.raises(
        TemporaryAwsError,
        match=r"AWS is throttling autoscaling:DescribeAutoScalingGroups .*"
        r"Gave up after 3 attempts",
    ):
        AsgPools(asg).observe(aws_env.name)
    assert always.attempts == 3


class SendHook:
    """:class:`SendErrors` attached once the CLI has made its client."""

    def __init__(self, operation: str, *errors: tuple[int, str], message: str) -> None:
        self.operation, self.errors_wanted, self.message = operation, errors, message
        self.errors: SendErrors

    def attach(self, client: Any, operation: str) -> None:
        assert operation == self.operation
        self.errors = SendErrors(
            client, operation, *self.errors_wanted, message=self.message
        )


def test_insufficient_capacity_is_explained(aws_env, monkeypatch):
    hook = Inject(
        "InsufficientInstanceCapacity",
        message="We currently do not have sufficient g5.12xlarge capacity",
    )
    inject_into_cli(monkeypatch, "autoscaling", "CreateAutoScalingGroup", hook)
    code, out, _ = aws_env.cli("apply")
    assert code == 1
    assert "AWS has no capacity for wbspawner-" in out
    assert "Spot groups fall back to on-demand" in out


def test_capacity_failures_of_launched_groups_are_reported(
    aws_env, monkeypatch, tmp_path
):
    edited = _edited_profiles(
        tmp_path,
        "instance_types: [t3.medium]\n",
        "instance_types: [t3.medium]\n    min_nodes: 1\n",
    )
    failed = {
        "Activities": [
            {
                "ActivityId": "a1",
                "AutoScalingGroupName": "g",
                "Cause": "scale out",
                "StartTime": datetime.datetime.now(datetime.UTC),
                "StatusCode": "Failed",
                "StatusMessage": "We currently do not have sufficient t3.medium "
                "capacity in the Availability Zone you requested (us-east-1a).",
            }
        ]
    }

    hook = Inject(response=failed, times=99)
    inject_into_cli(monkeypatch, "autoscaling", "DescribeScalingActivities", hook)
    code, out, err = aws_env.cli("apply", profiles=edited)
    assert code == 0, err + out
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    cpu4 = {n for n in aws_env.expected_groups() if "-cpu4-" in n}
    assert len(warnings) == len(cpu4)
    assert all("no capacity (InsufficientInstanceCapacity)" in w for w in warnings)


def test_missing_eks_ami_parameter_is_explained(aws_env):
    code, _, err = aws_env.cli("plan", "--k8s-version", "1.99")
    assert code == 1
    assert (
        "error: no EKS AL2023 AMI for Kubernetes 1.99 (nvidia, x86_64) "
        "in region us-east-1" in err
    )
    assert "SSM parameter /aws/service/eks/optimized-ami/1.99/" in err
    # The seeded parameter resolves through the same adapter.
    ssm = SsmAmis(aws_env.client("ssm"), REGION)
    assert ssm.resolve(list(AMIS)) == AMIS


def test_small_subnets_stop_apply_unless_forced(moto, aws_env):
    small = make_env(moto, prefix=26)
    code, out, err = small.cli("apply")
    assert code == 1
    assert "SHORT by" in out
    assert "error: subnets too small: us-east-1a has 59 free addresses" in err
    assert small.groups() == {}
    code, _, err = small.cli("apply", "--force")
    assert code == 0, err
    assert set(small.groups()) == small.expected_groups()


# ------------------------------------------------------------- devcluster autoscaler


async def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _pod(name: str, pool: str, zone: str) -> dict[str, Any]:
    p = PROFILES.pools[pool]
    resources = p.request.as_k8s()
    tolerations = [
        {
            "key": "wbspawner.io/pool",
            "operator": "Equal",
            "value": pool,
            "effect": "NoSchedule",
        }
    ]
    if p.is_gpu:
        tolerations.append(
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "jhub"},
        "spec": {
            "nodeSelector": {
                "wbspawner.io/pool": pool,
                "topology.kubernetes.io/zone": zone,
            },
            "tolerations": tolerations,
            "containers": [
                {
                    "name": "nb",
                    "image": "example/notebook:1",
                    "resources": {"requests": resources, "limits": resources},
                }
            ],
        },
    }


async def test_devcluster_autoscaler_scales_the_groups_apply_created(aws_env):
    """Same ASGs drive the emulator: a GPU pool grows from zero for a GPU pod, spot
    first; the 512 GiB pool, which prefers on-demand, grows its on-demand group."""
    from devcluster.cluster import Cluster
    from devcluster.config import ClusterConfig

    code, _, err = await asyncio.to_thread(aws_env.cli, "apply")
    assert code == 0, err
    config = ClusterConfig(
        cluster_name=aws_env.name, time_factor=0.01, kubelet_mode="sim"
    )
    cluster = Cluster(config, aws_endpoint=aws_env.moto.endpoint_url)
    await cluster.start()
    try:
        async with aiohttp.ClientSession(base_url=cluster.url) as http:
            priorities = yaml.safe_dump(expander_priorities(PROFILES, aws_env.name))
            cm = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cluster-autoscaler-priority-expander"},
                "data": {"priorities": priorities},
            }
            async with http.post(
                "/api/v1/namespaces/kube-system/configmaps", json=cm
            ) as r:
                assert r.status == 201, await r.text()
            wanted = {"gpu": ("gpu-t4", "us-east-1b"), "big": ("mem512", "us-east-1c")}
            for name, (pool, zone) in wanted.items():
                async with http.post(
                    "/api/v1/namespaces/jhub/pods", json=_pod(name, pool, zone)
                ) as r:
                    assert r.status == 201, await r.text()

            async def node_of(pod: str) -> str | None:
                async with http.get(f"/api/v1/namespaces/jhub/pods/{pod}") as r:
                    return (await r.json())["spec"].get("nodeName")

            for name, (pool, zone) in wanted.items():
                node_name = await _wait(
                    lambda name=name: node_of(name), what=f"pod {name} bound"
                )
                async with http.get(f"/api/v1/nodes/{node_name}") as r:
                    node = await r.json()
                labels = node["metadata"]["labels"]
                capacity = PROFILES.pools[pool].capacity_types[0]
                assert labels["wbspawner.io/pool"] == pool
                assert labels["wbspawner.io/capacity"] == capacity
                assert labels["topology.kubernetes.io/zone"] == zone
                if pool == "gpu-t4":
                    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
                    taints = {t["key"] for t in node["spec"]["taints"]}
                    assert {"nvidia.com/gpu", "wbspawner.io/pool"} <= taints
    finally:
        await cluster.stop()
    desired = {n: g["DesiredCapacity"] for n, g in aws_env.groups().items()}
    grown = {n for n, d in desired.items() if d > 0}
    assert grown == {
        group_name(aws_env.name, "gpu-t4", "us-east-1b", REGION, "spot"),
        group_name(aws_env.name, "mem512", "us-east-1c", REGION, "on-demand"),
    }


# ------------------------------------------------------------ progress on a terminal
CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
"""A terminal control sequence (colour, cursor movement, erase)."""


def _command_env(aws_env: Env) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    return {
        **env,
        "TERM": "xterm-256color",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "WBSPAWNER_PROFILES": str(PROFILES_DIR),
        "WBSPAWNER_CLUSTER": aws_env.name,
        "AWS_ENDPOINT_URL": aws_env.moto.endpoint_url,
    }


def _apply_argv() -> list[str]:
    """The installed ``wbspawner`` command, as an admin runs it."""
    return [str(Path(sys.executable).with_name("wbspawner")), "pools", "apply"]


def _run_on_a_pty(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a command on a new 80×24 pseudo-terminal; return its code and output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_apply_on_a_terminal_shows_progress_and_piped_output_has_no_codes(aws_env):
    """On a pty: ticked steps, a bar and a line per action; piped: plain lines only."""
    groups = len(aws_env.expected_groups())
    code, screen = _run_on_a_pty(_apply_argv(), _command_env(aws_env))
    assert code == 0, screen
    assert CSI.search(screen), "no terminal codes on a terminal"
    text = CSI.sub("", screen)
    assert "✓ Finding the node subnets of cluster" in text
    assert re.search(r"Applying \d+ action\(s\) on cluster " + aws_env.name, text)
    done = re.findall(r"^done  create-asg (\S+)", text, re.MULTILINE)
    assert len(set(done)) == groups, text
    assert "[1/" not in text, "the plain counters are for pipes"
    too_wide = [x for x in re.split(r"[\r\n]+", text) if len(x) > 80]
    assert not too_wide, "the plan, the bar and the report fit 80 columns"
    assert set(aws_env.groups()) == aws_env.expected_groups()

    piped_env = make_env(aws_env.moto, prefix=19)  # a second cluster, the same work
    proc = subprocess.run(
        _apply_argv(),
        env=_command_env(piped_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "Finding the node subnets of cluster" in proc.stderr
    total = re.search(r"Applying (\d+) action\(s\)", proc.stderr)
    assert total is not None, proc.stderr
    n = int(total.group(1))
    numbered = re.findall(r"^\[ *(\d+)/(\d+)\] (\S+)", proc.stderr, re.MULTILINE)
    assert [int(i) for i, _, _ in numbered] == list(range(1, n + 1))
    assert {(t, s) for _, t, s in numbered} == {(str(n), "done")}
    assert "Apply: " in proc.stdout and "Plan for cluster" in proc.stdout
