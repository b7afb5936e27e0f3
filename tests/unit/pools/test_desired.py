"""Desired launch templates and groups for the example profiles (pure)."""

from __future__ import annotations

import base64
import dataclasses
import email
import re

import pytest
import yaml

from tests.unit.pools.conftest import (
    ami_for,
    ca_template,
    cluster_spec,
    example,
    make_pool,
    profiles_with,
)
from wbspawner.catalog import sizing
from wbspawner.model import SizingSettings
from wbspawner.pools import PoolsError
from wbspawner.pools.desired import GroupSpec, desired_state
from wbspawner.pools.nodes import (
    ami_parameter,
    is_managed_tag,
    node_labels,
    node_taints,
)

PROFILES, CATALOG = example()
POOLS = sorted(PROFILES.pools)


def _desired(**changes: object):
    return desired_state(PROFILES, CATALOG, cluster_spec(PROFILES, CATALOG, **changes))


DESIRED = _desired()


def _groups(pool: str) -> list[GroupSpec]:
    return [g for g in DESIRED.groups if g.pool == pool]


def _node_config(g: GroupSpec) -> dict:
    text = base64.b64decode(g.launch_template.data["UserData"]).decode()
    message = email.message_from_string(text)
    assert message.is_multipart()
    parts = [
        p for p in message.walk() if p.get_content_type() == "application/node.eks.aws"
    ]
    assert len(parts) == 1
    return yaml.safe_load(parts[0].get_payload())


def _flag(g: GroupSpec, name: str) -> str:
    flags = _node_config(g)["spec"]["kubelet"]["flags"]
    found = [f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")]
    assert len(found) == 1, flags
    return found[0]


def test_one_group_per_pool_zone_and_capacity_type():
    wanted = {
        (p.name, z, c)
        for p in PROFILES.pools.values()
        for z in p.zones
        for c in p.capacity_types
    }
    got = [(g.pool, g.zone, g.capacity) for g in DESIRED.groups]
    assert sorted(got) == sorted(wanted)
    assert len({g.asg.name for g in DESIRED.groups}) == len(got)


@pytest.mark.parametrize("pool", POOLS, ids=POOLS)
def test_group_names_subnets_and_sizes(pool):
    p = PROFILES.pools[pool]
    for g in _groups(pool):
        suffix = "spot" if g.capacity == "spot" else "ondemand"
        assert g.asg.name == f"wbspawner-dev-{pool}-{g.zone[-1]}-{suffix}"
        assert g.launch_template.name == g.asg.name == g.asg.launch_template
        assert g.asg.subnets == (f"subnet-{g.zone[-1]}",)
        assert (g.asg.min_size, g.asg.max_size) == (p.min_nodes, p.max_nodes)


@pytest.mark.parametrize("pool", POOLS, ids=POOLS)
def test_mixed_instances_policy(pool):
    p = PROFILES.pools[pool]
    for g in _groups(pool):
        mip = g.asg.mixed_instances_policy
        spec = mip["LaunchTemplate"]["LaunchTemplateSpecification"]
        assert spec == {"LaunchTemplateName": g.asg.name, "Version": "$Default"}
        types = [o["InstanceType"] for o in mip["LaunchTemplate"]["Overrides"]]
        assert types == list(p.instance_types)
        dist = mip["InstancesDistribution"]
        assert dist["OnDemandBaseCapacity"] == 0
        if g.capacity == "spot":
            assert dist["OnDemandPercentageAboveBaseCapacity"] == 0
            assert dist["SpotAllocationStrategy"] == "price-capacity-optimized"
            assert g.asg.capacity_rebalance is True
        else:
            assert dist["OnDemandPercentageAboveBaseCapacity"] == 100
            assert "SpotAllocationStrategy" not in dist
            assert g.asg.capacity_rebalance is False


@pytest.mark.parametrize("pool", POOLS, ids=POOLS)
def test_autoscaler_tags_describe_the_node_that_boots(pool):
    """CA's node template (read back the way CA reads it) equals the kubelet's flags."""
    p = PROFILES.pools[pool]
    for g in _groups(pool):
        tags = g.asg.tags
        assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
        assert "k8s.io/cluster-autoscaler/dev" in tags
        labels, taints, resources = ca_template(dict(tags))
        kubelet_labels = dict(
            kv.split("=", 1) for kv in _flag(g, "node-labels").split(",")
        )
        assert labels == kubelet_labels == node_labels(p, g.capacity)
        registered = _flag(g, "register-with-taints").split(",")
        as_kubelet = [
            f"{t['key']}={t['value']}:{t['effect']}"
            if "value" in t
            else f"{t['key']}:{t['effect']}"
            for t in taints
        ]
        assert sorted(as_kubelet) == sorted(registered)
        assert resources["ephemeral-storage"] == f"{p.root_volume_gib}Gi"
        if p.is_gpu:
            assert resources["nvidia.com/gpu"] == str(p.gpu_count)
            assert labels["k8s.amazonaws.com/accelerator"].startswith("nvidia-")
            assert "nvidia.com/gpu:NoSchedule" in registered
        else:
            assert "nvidia.com/gpu" not in resources
            assert not any(t["key"] == "nvidia.com/gpu" for t in taints)


@pytest.mark.parametrize("pool", POOLS, ids=POOLS)
def test_template_allocatable_is_the_real_allocatable(pool):
    p = PROFILES.pools[pool]
    allocs = [
        sizing.allocatable(CATALOG.types[t], PROFILES.sizing) for t in p.instance_types
    ]
    g = _groups(pool)[0]
    _, _, resources = ca_template(dict(g.asg.tags))
    assert resources["memory"] == f"{min(a.memory_mib for a in allocs)}Mi"
    assert resources["cpu"] == f"{min(a.cpu_m for a in allocs)}m"
    # The full-node request fits what the template promises, with the DaemonSets.
    assert p.request.memory_mib + PROFILES.sizing.daemonset_memory_mib <= min(
        a.memory_mib for a in allocs
    )


@pytest.mark.parametrize("pool", POOLS, ids=POOLS)
def test_cost_tags_propagate_and_autoscaler_tags_do_not(pool):
    for g in _groups(pool):
        tags = g.asg.tags
        assert tags["wbspawner.io/pool"] == pool
        assert tags["wbspawner.io/capacity"] == g.capacity
        assert tags["wbspawner.io/cluster"] == "dev"
        assert tags["Name"] == g.asg.name
        assert re.fullmatch(r"\d+GiB(-\d+x\w+)?", tags["wbspawner.io/size"])
        assert {
            "Name",
            "wbspawner.io/pool",
            "wbspawner.io/size",
            "wbspawner.io/capacity",
        } <= (g.asg.propagate_at_launch)
        assert not any(k.startswith("k8s.io/") for k in g.asg.propagate_at_launch)
        assert all(is_managed_tag(k) for k in tags)
        volume_tags = g.launch_template.data["TagSpecifications"][0]
        assert volume_tags["ResourceType"] == "volume"
        assert {t["Key"]: t["Value"] for t in volume_tags["Tags"]}[
            "wbspawner.io/pool"
        ] == pool


@pytest.mark.parametrize("pool", POOLS, ids=POOLS)
def test_launch_template_ami_imds_and_root_volume(pool):
    p = PROFILES.pools[pool]
    param = ami_parameter("1.33", "x86_64", p.is_gpu)
    for g in _groups(pool):
        data = g.launch_template.data
        assert data["ImageId"] == ami_for(param)
        assert ("/nvidia/" in param) == p.is_gpu
        assert data["InstanceType"] == p.instance_types[0]
        assert "InstanceMarketOptions" not in data
        assert data["MetadataOptions"] == {
            "HttpEndpoint": "enabled",
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 1,
        }
        assert data["BlockDeviceMappings"] == [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "VolumeSize": p.root_volume_gib,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ]
        assert data["IamInstanceProfile"] == {"Name": "node-profile"}
        assert data["SecurityGroupIds"] == ["sg-cluster"]


def test_node_config_joins_the_cluster():
    cfg = _node_config(DESIRED.groups[0])
    assert cfg["apiVersion"] == "node.eks.aws/v1alpha1"
    assert cfg["kind"] == "NodeConfig"
    assert cfg["spec"]["cluster"] == {
        "name": "dev",
        "apiServerEndpoint": "https://api.example.eks.amazonaws.com",
        "certificateAuthority": "Q0E=",
        "cidr": "10.100.0.0/16",
    }
    assert "maxPodsExpression" not in cfg["spec"]["kubelet"]


def test_max_pods_cap_becomes_a_max_pods_expression():
    pool = make_pool(CATALOG, "big", ("r5.16xlarge",))
    capped = SizingSettings(max_pods=30)
    state = desired_state(
        profiles_with(pool, settings=capped), CATALOG, cluster_spec(PROFILES, CATALOG)
    )
    cfg = _node_config(state.groups[0])
    assert (
        cfg["spec"]["kubelet"]["maxPodsExpression"] == "max_pods < 30 ? max_pods : 30"
    )
    # kube-reserved follows the capped maxPods, so the template promises more memory.
    uncapped = desired_state(
        profiles_with(pool), CATALOG, cluster_spec(PROFILES, CATALOG)
    )
    mem = "k8s.io/cluster-autoscaler/node-template/resources/memory"
    assert int(state.groups[0].asg.tags[mem][:-2]) > int(
        uncapped.groups[0].asg.tags[mem][:-2]
    )


def test_measured_capacity_changes_the_template_memory():
    pool = make_pool(CATALOG, "m64", ("r5.2xlarge",))
    measured = SizingSettings(measured_capacity_mib={"r5.2xlarge": 60_000})
    state = desired_state(
        profiles_with(pool, settings=measured), CATALOG, cluster_spec(PROFILES, CATALOG)
    )
    t = dataclasses.replace(CATALOG.types["r5.2xlarge"], measured_capacity_mib=60_000)
    want = sizing.allocatable(t, measured).memory_mib
    assert (
        state.groups[0].asg.tags[
            "k8s.io/cluster-autoscaler/node-template/resources/memory"
        ]
        == f"{want}Mi"
    )


def test_pool_labels_reach_kubelet_and_template():
    pool = make_pool(CATALOG, "m64", ("r5.2xlarge",), labels={"team": "geo"})
    state = desired_state(profiles_with(pool), CATALOG, cluster_spec(PROFILES, CATALOG))
    g = state.groups[0]
    assert "team=geo" in _flag(g, "node-labels").split(",")
    assert g.asg.tags["k8s.io/cluster-autoscaler/node-template/label/team"] == "geo"


def test_instance_profile_arn_and_hop_limit():
    arn = "arn:aws:iam::123456789012:instance-profile/nodes"
    state = _desired(instance_profile=arn, imds_hop_limit=2)
    data = state.groups[0].launch_template.data
    assert data["IamInstanceProfile"] == {"Arn": arn}
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2


def test_zone_without_subnet_is_refused():
    spec = cluster_spec(PROFILES, CATALOG)
    subnets = {z: s for z, s in spec.subnets.items() if z != "us-east-1c"}
    with pytest.raises(
        PoolsError, match="uses zone us-east-1c, but cluster dev has no node subnet"
    ):
        desired_state(PROFILES, CATALOG, dataclasses.replace(spec, subnets=subnets))


def test_unresolved_gpu_ami_is_refused():
    spec = cluster_spec(PROFILES, CATALOG)
    amis = {k: v for k, v in spec.amis.items() if "/nvidia/" not in k}
    with pytest.raises(
        PoolsError, match=r"no AMI resolved for .*/x86_64/nvidia/recommended/image_id"
    ):
        desired_state(PROFILES, CATALOG, dataclasses.replace(spec, amis=amis))


def test_unknown_instance_type_is_refused():
    pool = dataclasses.replace(
        make_pool(CATALOG, "x", ("r5.large",)), instance_types=("r99.huge",)
    )
    with pytest.raises(
        PoolsError, match="instance types not in the catalogue: r99.huge"
    ):
        desired_state(profiles_with(pool), CATALOG, cluster_spec(PROFILES, CATALOG))


def test_gpu_taint_has_empty_value_and_pool_taint_the_pool():
    gpu = PROFILES.pools["gpu-t4"]
    taints = {t.key: t for t in node_taints(gpu)}
    assert (
        taints["wbspawner.io/pool"].kubelet() == "wbspawner.io/pool=gpu-t4:NoSchedule"
    )
    assert taints["nvidia.com/gpu"].kubelet() == "nvidia.com/gpu:NoSchedule"
    assert taints["nvidia.com/gpu"].ca_tag_value() == ":NoSchedule"
