"""Reading Auto Scaling groups like Cluster Autoscaler, and the ASG adapter's checks."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from devcluster.controllers.autoscaler.asg import (
    AsgActuator,
    NodeGroup,
    group_from_asg,
    is_discovered,
    parse_taint,
    template_from_tags,
)
from devcluster.controllers.nodes import build_node
from wbspawner.catalog.instances import load_catalog
from wbspawner.model import SizingSettings

T = "k8s.io/cluster-autoscaler/node-template/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "mem64:NoSchedule",
            {"key": "k", "value": "mem64", "effect": "NoSchedule"},
            id="value-effect",
        ),
        pytest.param(
            ":NoExecute", {"key": "k", "effect": "NoExecute"}, id="empty-value"
        ),
        pytest.param(
            "x:PreferNoSchedule",
            {"key": "k", "value": "x", "effect": "PreferNoSchedule"},
            id="prefer",
        ),
        pytest.param(
            "a:b:NoSchedule",
            {"key": "k", "value": "a:b", "effect": "NoSchedule"},
            id="colon-in-value",
        ),
        pytest.param("present", None, id="no-effect-ignored"),
        pytest.param("present:Bogus", None, id="unknown-effect-ignored"),
        pytest.param("NoSchedule", None, id="effect-without-colon-ignored"),
    ],
)
def test_parse_taint(value: str, expected: dict[str, str] | None) -> None:
    assert parse_taint("k", value) == expected


@pytest.mark.parametrize(
    ("tags", "cluster", "found"),
    [
        pytest.param(
            {
                "k8s.io/cluster-autoscaler/enabled": "true",
                "k8s.io/cluster-autoscaler/dev": "owned",
            },
            "dev",
            True,
            id="both",
        ),
        pytest.param(
            {
                "k8s.io/cluster-autoscaler/enabled": "",
                "k8s.io/cluster-autoscaler/dev": "",
            },
            "dev",
            True,
            id="values-ignored",
        ),
        pytest.param(
            {"k8s.io/cluster-autoscaler/enabled": "true"},
            "dev",
            False,
            id="no-cluster-tag",
        ),
        pytest.param(
            {
                "k8s.io/cluster-autoscaler/enabled": "true",
                "k8s.io/cluster-autoscaler/prod": "owned",
            },
            "dev",
            False,
            id="other-cluster",
        ),
        pytest.param(
            {"k8s.io/cluster-autoscaler/dev": "owned"}, "dev", False, id="not-enabled"
        ),
    ],
)
def test_is_discovered(tags: dict[str, str], cluster: str, found: bool) -> None:
    assert is_discovered(tags, cluster) is found


def test_template_from_tags() -> None:
    labels, taints, resources = template_from_tags(
        {
            T + "label/wbspawner.io/pool": "gpu-a10g",
            T + "label/wbspawner.io/capacity": "spot",
            T + "taint/wbspawner.io/pool": "gpu-a10g:NoSchedule",
            T + "taint/nvidia.com/gpu": "present:NoSchedule",
            T + "taint/broken": "present",
            T + "resources/nvidia.com/gpu": "1",
            T + "resources/ephemeral-storage": "100G",
            "Name": "ignored",
        }
    )
    assert labels == {"wbspawner.io/pool": "gpu-a10g", "wbspawner.io/capacity": "spot"}
    assert taints == (
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
        {"key": "wbspawner.io/pool", "value": "gpu-a10g", "effect": "NoSchedule"},
    )
    assert resources == {"nvidia.com/gpu": "1", "ephemeral-storage": "100G"}


def _asg(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "AutoScalingGroupName": "g",
        "MinSize": 0,
        "MaxSize": 5,
        "DesiredCapacity": 1,
        "AvailabilityZones": ["us-east-1b", "us-east-1a"],
        "Instances": [
            {"InstanceId": "i-1", "LifecycleState": "InService"},
            {"InstanceId": "i-2", "LifecycleState": "Terminating"},
        ],
        "Tags": [{"Key": T + "label/wbspawner.io/capacity", "Value": "spot"}],
    }
    return {**base, **extra}


def _mixed(
    pct: int, base: int = 0, types: tuple[str, ...] = ("r5.2xlarge", "r5a.2xlarge")
) -> dict[str, Any]:
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": "lt"},
            "Overrides": [{"InstanceType": t} for t in types],
        },
        "InstancesDistribution": {
            "OnDemandBaseCapacity": base,
            "OnDemandPercentageAboveBaseCapacity": pct,
        },
    }


@pytest.mark.parametrize(
    ("asg", "lt_type", "lt_spot", "capacity", "itype"),
    [
        pytest.param(
            _asg(MixedInstancesPolicy=_mixed(0)),
            "m5.large",
            False,
            "spot",
            "r5.2xlarge",
            id="mixed-zero-ondemand-is-spot",
        ),
        pytest.param(
            _asg(MixedInstancesPolicy=_mixed(100)),
            None,
            False,
            "on-demand",
            "r5.2xlarge",
            id="mixed-all-ondemand",
        ),
        pytest.param(
            _asg(MixedInstancesPolicy=_mixed(0, base=1)),
            None,
            False,
            "on-demand",
            "r5.2xlarge",
            id="mixed-with-base",
        ),
        pytest.param(
            _asg(),
            "r5.4xlarge",
            False,
            "spot",
            "r5.4xlarge",
            id="lt-type-and-capacity-label",
        ),
        pytest.param(
            _asg(Tags=[]),
            "r5.4xlarge",
            True,
            "spot",
            "r5.4xlarge",
            id="spot-launch-template",
        ),
        pytest.param(
            _asg(Tags=[]),
            "r5.4xlarge",
            False,
            "on-demand",
            "r5.4xlarge",
            id="plain-is-on-demand",
        ),
    ],
)
def test_group_from_asg(
    asg: dict[str, Any], lt_type: str | None, lt_spot: bool, capacity: str, itype: str
) -> None:
    group = group_from_asg(asg, lt_type, lt_spot)
    assert (group.capacity_type, group.instance_type) == (capacity, itype)
    assert group.zone == "us-east-1b"
    assert group.instances == ("i-1",)


def test_gpu_template_from_tags() -> None:
    catalog = load_catalog()
    _, taints, resources = template_from_tags(
        {
            T + "taint/nvidia.com/gpu": "present:NoSchedule",
            T + "resources/nvidia.com/gpu": "4",
        }
    )
    node = build_node(
        name="template",
        itype=catalog.types["g5.xlarge"],
        zone="us-east-1a",
        region="us-east-1",
        capacity_type="spot",
        taints=taints,
        resource_overrides=resources,
    )
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert node["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert node["metadata"]["labels"]["eks.amazonaws.com/capacityType"] == "SPOT"


def test_node_allocatable_is_the_kubelets_not_nominal() -> None:
    t = load_catalog().types["r5.2xlarge"]
    node = build_node(
        name="n",
        itype=t,
        zone="us-east-1a",
        region="us-east-1",
        capacity_type="on-demand",
    )
    alloc_ki = int(node["status"]["allocatable"]["memory"].removesuffix("Ki"))
    assert alloc_ki < t.memory_mib * 1024
    from wbspawner.catalog.sizing import allocatable

    assert alloc_ki == allocatable(t, SizingSettings()).memory_mib * 1024
    assert node["metadata"]["labels"]["topology.ebs.csi.aws.com/zone"] == "us-east-1a"


class _FakeAutoscaling:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def set_desired_capacity(self, **kw: Any) -> None:
        self.calls.append(("set_desired_capacity", kw))

    def terminate_instance_in_auto_scaling_group(self, **kw: Any) -> None:
        self.calls.append(("terminate", kw))


GROUP = NodeGroup(
    name="g",
    min_size=1,
    max_size=3,
    desired=1,
    zone="us-east-1a",
    instance_type="r5.large",
    capacity_type="spot",
)


@pytest.mark.parametrize(
    ("desired", "match"),
    [
        pytest.param(
            4, "New SetDesiredCapacity value 4 is above max value 3", id="above-max"
        ),
        pytest.param(
            0, "New SetDesiredCapacity value 0 is below min value 1", id="below-min"
        ),
    ],
)
def test_set_desired_is_checked_like_aws(desired: int, match: str) -> None:
    fake = _FakeAutoscaling()
    with pytest.raises(ClientError, match=match):
        AsgActuator(fake, None, "dev").set_desired(GROUP, desired)
    assert fake.calls == []


def test_set_desired_within_bounds_calls_aws() -> None:
    fake = _FakeAutoscaling()
    AsgActuator(fake, None, "dev").set_desired(GROUP, 3)
    assert fake.calls == [
        (
            "set_desired_capacity",
            {"AutoScalingGroupName": "g", "DesiredCapacity": 3, "HonorCooldown": False},
        )
    ]


def test_terminate_never_goes_below_min() -> None:
    fake = _FakeAutoscaling()
    with pytest.raises(ClientError, match="desiredSize equals minSize"):
        AsgActuator(fake, None, "dev").terminate(GROUP, "i-1")
    assert fake.calls == []


def test_tags_of_the_pool_generator_read_back() -> None:
    """The tags ``wbspawner pools apply`` writes give the template wbspawner expects."""
    import yaml

    from devcluster.controllers.autoscaler import decisions as ca
    from devcluster.controllers.scheduler.decisions import Snapshot
    from wbspawner import naming
    from wbspawner.catalog.sizing import full_node_request
    from wbspawner.model import Pool
    from wbspawner.pools import nodes

    t = load_catalog().types["g5.xlarge"]
    request = full_node_request([t], SizingSettings())
    pool = Pool(
        name="gpu-a10g",
        display_name="A10G",
        instance_types=("g5.xlarge",),
        capacity_types=("spot", "on-demand"),
        zones=("us-east-1a",),
        request=request,
        gpu_count=1,
        gpu_kind="A10G",
        vcpu=t.vcpu,
        memory_mib=t.memory_mib,
        price_per_hour=t.price_per_hour,
    )
    alloc = (request.cpu_m, request.memory_mib)
    tags = nodes.autoscaler_tags(
        "dev", pool, nodes.node_labels(pool, "spot"), nodes.node_taints(pool), alloc
    )
    assert is_discovered(tags, "dev")
    labels, taints, resources = template_from_tags(tags)
    assert labels["wbspawner.io/pool"] == "gpu-a10g"
    assert {t["key"] for t in taints} == {"wbspawner.io/pool", "nvidia.com/gpu"}
    group = NodeGroup(
        name=naming.group_name("dev", "gpu-a10g", "us-east-1a", "us-east-1", "spot"),
        min_size=0,
        max_size=2,
        desired=0,
        zone="us-east-1a",
        instance_type="g5.xlarge",
        capacity_type="spot",
        labels=labels,
        taints=taints,
        resources=resources,
    )
    template = build_node(
        name="t",
        itype=t,
        zone=group.zone,
        region="us-east-1",
        capacity_type="spot",
        labels=labels,
        taints=taints,
        resource_overrides=resources,
    )
    pod: dict[str, Any] = {
        "metadata": {"name": "u", "namespace": "jhub"},
        "spec": {
            "containers": [{"name": "n", "resources": {"requests": request.as_k8s()}}],
            "nodeSelector": {"wbspawner.io/pool": "gpu-a10g"},
            "tolerations": [{"operator": "Exists"}],
        },
    }
    priorities = ca.parse_priorities(
        yaml.safe_dump(
            {
                20: [naming.group_regex("dev", "gpu-a10g", "spot")],
                10: [naming.group_regex("dev", "gpu-a10g", "on-demand")],
            }
        )
    )
    plan = ca.plan_scale_up(
        [pod],
        [group],
        {group.name: template},
        Snapshot([], [pod]),
        {},
        priorities=priorities,
    )
    assert plan.option is not None
    assert (plan.option.group.name, plan.option.count) == (
        "wbspawner-dev-gpu-a10g-a-spot",
        1,
    )


def _stubbed(service: str) -> tuple[Any, Stubber]:
    """A real boto3 client whose answers come from a Stubber (no network)."""
    import boto3

    client = boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def _asg(name: str) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": name,
        "MinSize": 0,
        "MaxSize": 3,
        "DesiredCapacity": 0,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": "2026-01-01T00:00:00Z",
        "Tags": [
            {"Key": "k8s.io/cluster-autoscaler/enabled", "Value": "true"},
            {"Key": "k8s.io/cluster-autoscaler/dev", "Value": "owned"},
        ],
    }


def test_a_listing_whose_paging_token_went_stale_starts_over_once() -> None:
    """AWS's state lost between two pages (moto reset): the token of page two
    is refused; the groups are listed again from the first page."""
    client, stub = _stubbed("autoscaling")
    stub.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [_asg("a")], "NextToken": "a"},
        {},
    )
    stub.add_client_error(
        "describe_auto_scaling_groups",
        "InvalidNextToken",
        "The token 'a' is invalid.",
        400,
        expected_params={"NextToken": "a"},
    )
    stub.add_response(
        "describe_auto_scaling_groups", {"AutoScalingGroups": [_asg("b")]}, {}
    )
    with stub:
        found = AsgActuator(client, None, "dev").describe()
    assert [g["AutoScalingGroupName"] for g in found] == ["b"]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(0, id="first-page"),
        pytest.param(1, id="again-after-starting-over"),
    ],
)
def test_a_listing_that_keeps_failing_is_an_error(pages: int) -> None:
    client, stub = _stubbed("autoscaling")
    if pages:
        stub.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [_asg("a")], "NextToken": "a"},
            {},
        )
        stub.add_client_error(
            "describe_auto_scaling_groups", "InvalidNextToken", "stale", 400
        )
    stub.add_client_error(
        "describe_auto_scaling_groups", "ServiceUnavailable", "down", 503
    )
    with stub, pytest.raises(ClientError, match="down"):
        AsgActuator(client, None, "dev").describe()


def test_instances_unknown_to_ec2_are_left_out() -> None:
    """An instance gone while it was joining (or AWS's state lost): EC2 refuses
    the whole call; the ids it still knows are asked one by one."""
    client, stub = _stubbed("ec2")
    stub.add_client_error(
        "describe_instances",
        "InvalidInstanceID.NotFound",
        "The instance ID 'i-gone' does not exist",
        400,
        expected_params={"InstanceIds": ["i-gone", "i-here"]},
    )
    stub.add_client_error(
        "describe_instances",
        "InvalidInstanceID.NotFound",
        "The instance ID 'i-gone' does not exist",
        400,
        expected_params={"InstanceIds": ["i-gone"]},
    )
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [{"InstanceId": "i-here"}]}]},
        {"InstanceIds": ["i-here"]},
    )
    with stub:
        found = AsgActuator(None, client, "dev").instances(["i-gone", "i-here"])
    assert list(found) == ["i-here"]
    stub.assert_no_pending_responses()
