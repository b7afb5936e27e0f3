"""Desired launch templates and groups for the example profiles (pure)."""

from __future__ import annotations

import base64
import dataclasses
import email
import re
from collections.abc import Callable

import pytest
import yaml

from wbspawner.catalog import sizing
from wbspawner.model import Catalog, Pool, Profiles, SizingSettings
from wbspawner.pools import PoolsError
from wbspawner.pools.desired import ClusterSpec, DesiredState, GroupSpec, desired_state
from wbspawner.pools.nodes import (
    ami_parameter,
    is_managed_tag,
    node_labels,
    node_taints,
)

A, B = "us-east-1a", "us-east-1b"


def _groups(desired: DesiredState, pool: str) -> list[GroupSpec]:
    return [g for g in desired.groups if g.pool == pool]


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


def test_one_group_per_pool_zone_and_capacity_type(
    shipped_desired: DesiredState, profiles: Profiles
):
    wanted = {
        (p.name, z, c)
        for p in profiles.pools.values()
        for z in p.zones
        for c in p.capacity_types
    }
    got = [(g.pool, g.zone, g.capacity) for g in shipped_desired.groups]
    assert sorted(got) == sorted(wanted)
    assert len({g.asg.name for g in shipped_desired.groups}) == len(got)


def test_group_names_subnets_and_sizes(
    shipped_desired: DesiredState, profiles: Profiles, shipped_pool
):
    p = profiles.pools[shipped_pool]
    for g in _groups(shipped_desired, shipped_pool):
        suffix = "spot" if g.capacity == "spot" else "ondemand"
        assert g.asg.name == f"wbspawner-dev-{shipped_pool}-{g.zone[-1]}-{suffix}"
        assert g.launch_template.name == g.asg.name == g.asg.launch_template
        assert g.asg.subnets == (f"subnet-{g.zone[-1]}",)
        assert (g.asg.min_size, g.asg.max_size) == (p.min_nodes, p.max_nodes)


def test_mixed_instances_policy(
    shipped_desired: DesiredState, profiles: Profiles, shipped_pool
):
    p = profiles.pools[shipped_pool]
    for g in _groups(shipped_desired, shipped_pool):
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


def test_autoscaler_tags_describe_the_node_that_boots(
    shipped_desired: DesiredState, profiles: Profiles, shipped_pool
):
    """CA's node template (read back the way CA reads it) equals the kubelet's flags."""
    p = profiles.pools[shipped_pool]
    for g in _groups(shipped_desired, shipped_pool):
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


def test_template_allocatable_is_the_real_allocatable(
    profiles: Profiles, shipped_desired: DesiredState, catalog: Catalog, shipped_pool
):
    p = profiles.pools[shipped_pool]
    allocs = [
        sizing.allocatable(catalog.types[t], profiles.sizing) for t in p.instance_types
    ]
    g = _groups(shipped_desired, shipped_pool)[0]
    _, _, resources = ca_template(dict(g.asg.tags))
    assert resources["memory"] == f"{min(a.memory_mib for a in allocs)}Mi"
    assert resources["cpu"] == f"{min(a.cpu_m for a in allocs)}m"
    # The full-node request fits what the template promises, with the DaemonSets.
    assert p.request.memory_mib + profiles.sizing.daemonset_memory_mib <= min(
        a.memory_mib for a in allocs
    )


def test_cost_tags_propagate_and_autoscaler_tags_do_not(
    shipped_desired: DesiredState, shipped_pool
):
    for g in _groups(shipped_desired, shipped_pool):
        tags = g.asg.tags
        assert tags["wbspawner.io/pool"] == shipped_pool
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
        ] == shipped_pool


def test_launch_template_ami_imds_and_root_volume(
    shipped_desired: DesiredState, profiles: Profiles, spec: ClusterSpec, shipped_pool
):
    p = profiles.pools[shipped_pool]
    param = ami_parameter("1.33", "x86_64", p.is_gpu)
    for g in _groups(shipped_desired, shipped_pool):
        data = g.launch_template.data
        assert data["ImageId"] == spec.amis[param]
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


def test_node_config_joins_the_cluster(shipped_desired: DesiredState):
    cfg = _node_config(shipped_desired.groups[0])
    assert cfg["apiVersion"] == "node.eks.aws/v1alpha1"
    assert cfg["kind"] == "NodeConfig"
    assert cfg["spec"]["cluster"] == {
        "name": "dev",
        "apiServerEndpoint": "https://api.example.eks.amazonaws.com",
        "certificateAuthority": "Q0E=",
        "cidr": "10.100.0.0/16",
    }
    assert "maxPodsExpression" not in cfg["spec"]["kubelet"]


def test_max_pods_cap_becomes_a_max_pods_expression(
    make_pool: Callable[..., Pool],
    catalog: Catalog,
    spec: ClusterSpec,
    make_profiles: Callable[..., Profiles],
):
    pool = make_pool(name="big", instance_types=("r5.16xlarge",), zones=(A, B))
    capped = SizingSettings(max_pods=30)
    state = desired_state(make_profiles(pool, sizing=capped), catalog, spec)
    cfg = _node_config(state.groups[0])
    assert (
        cfg["spec"]["kubelet"]["maxPodsExpression"] == "max_pods < 30 ? max_pods : 30"
    )
    # kube-reserved follows the capped maxPods, so the template promises more memory.
    uncapped = desired_state(make_profiles(pool), catalog, spec)
    mem = "k8s.io/cluster-autoscaler/node-template/resources/memory"
    assert int(state.groups[0].asg.tags[mem][:-2]) > int(
        uncapped.groups[0].asg.tags[mem][:-2]
    )


def test_measured_capacity_changes_the_template_memory(
    make_pool: Callable[..., Pool],
    catalog: Catalog,
    spec: ClusterSpec,
    make_profiles: Callable[..., Profiles],
):
    pool = make_pool(name="m64", instance_types=("r5.2xlarge",), zones=(A, B))
    measured = SizingSettings(measured_capacity_mib={"r5.2xlarge": 60_000})
    state = desired_state(make_profiles(pool, sizing=measured), catalog, spec)
    t = dataclasses.replace(catalog.types["r5.2xlarge"], measured_capacity_mib=60_000)
    want = sizing.allocatable(t, measured).memory_mib
    assert (
        state.groups[0].asg.tags[
            "k8s.io/cluster-autoscaler/node-template/resources/memory"
        ]
        == f"{want}Mi"
    )


def test_pool_labels_reach_kubelet_and_template(
    make_pool: Callable[..., Pool],
    catalog: Catalog,
    spec: ClusterSpec,
    make_profiles: Callable[..., Profiles],
):
    pool = make_pool(
        name="m64", instance_types=("r5.2xlarge",), zones=(A, B), labels={"team": "geo"}
    )
    state = desired_state(make_profiles(pool), catalog, spec)
    g = state.groups[0]
    assert "team=geo" in _flag(g, "node-labels").split(",")
    assert g.asg.tags["k8s.io/cluster-autoscaler/node-template/label/team"] == "geo"


def test_instance_profile_arn_and_hop_limit(
    spec: ClusterSpec, profiles: Profiles, catalog: Catalog
):
    arn = "arn:aws:iam::123456789012:instance-profile/nodes"
    changed = dataclasses.replace(spec, instance_profile=arn, imds_hop_limit=2)
    state = desired_state(profiles, catalog, changed)
    data = state.groups[0].launch_template.data
    assert data["IamInstanceProfile"] == {"Arn": arn}
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2


def test_zone_without_subnet_is_refused(
    profiles: Profiles, catalog: Catalog, spec: ClusterSpec
):
    subnets = {z: s for z, s in spec.subnets.items() if z != "us-east-1c"}
    with pytest.raises(
        PoolsError, match="uses zone us-east-1c, but cluster dev has no node subnet"
    ):
        desired_state(profiles, catalog, dataclasses.replace(spec, subnets=subnets))


def test_unresolved_gpu_ami_is_refused(
    profiles: Profiles, catalog: Catalog, spec: ClusterSpec
):
    amis = {k: v for k, v in spec.amis.items() if "/nvidia/" not in k}
    with pytest.raises(
        PoolsError, match=r"no AMI resolved for .*/x86_64/nvidia/recommended/image_id"
    ):
        desired_state(profiles, catalog, dataclasses.replace(spec, amis=amis))


def test_unknown_instance_type_is_refused(
    make_pool: Callable[..., Pool],
    catalog: Catalog,
    spec: ClusterSpec,
    make_profiles: Callable[..., Profiles],
):
    pool = dataclasses.replace(
        make_pool(name="x", instance_types=("r5.large",), zones=(A, B)),
        instance_types=("r99.huge",),
    )
    with pytest.raises(
        PoolsError, match="instance types not in the catalogue: r99.huge"
    ):
        desired_state(make_profiles(pool), catalog, spec)


def test_gpu_taint_has_empty_value_and_pool_taint_the_pool(profiles: Profiles):
    gpu = profiles.pools["gpu-t4"]
    taints = {t.key: t for t in node_taints(gpu)}
    assert (
        taints["wbspawner.io/pool"].kubelet() == "wbspawner.io/pool=gpu-t4:NoSchedule"
    )
    assert taints["nvidia.com/gpu"].kubelet() == "nvidia.com/gpu:NoSchedule"
    assert taints["nvidia.com/gpu"].ca_tag_value() == ":NoSchedule"


_CA_TAINT = re.compile(r"^(.*):(NoSchedule|NoExecute|PreferNoSchedule)$")
_TEMPLATE = "k8s.io/cluster-autoscaler/node-template/"


def ca_template(
    tags: dict[str, str],
) -> tuple[dict[str, str], list[dict[str, str]], dict[str, str]]:
    """Read node-template tags the way Cluster Autoscaler's AWS provider does.

    (``aws_manager.go``: labels and resources by key suffix; a taint only when its
    value matches ``(.*):(NoSchedule|NoExecute|PreferNoSchedule)``.)
    """
    labels: dict[str, str] = {}
    taints: list[dict[str, str]] = []
    resources: dict[str, str] = {}
    for key, value in tags.items():
        if not key.startswith(_TEMPLATE):
            continue
        kind, _, name = key[len(_TEMPLATE) :].partition("/")
        if kind == "label":
            labels[name] = value
        elif kind == "resources":
            resources[name] = value
        elif kind == "taint" and (m := _CA_TAINT.match(value)):
            taint = {"key": name, "effect": m.group(2)}
            if m.group(1):
                taint["value"] = m.group(1)
            taints.append(taint)
    return labels, taints, resources
