"""eksctl and Karpenter renderings of the example pools: expected structure (pure)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
import yaml

from tests.paths import REPO
from wbspawner.cli.main import main
from wbspawner.model import Catalog, Profiles
from wbspawner.pools.desired import desired_state
from wbspawner.pools.nodes import node_labels, node_taints
from wbspawner.pools.render import (
    eksctl_config,
    karpenter_manifests,
    node_class_name,
    to_yaml,
)

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
EKSCTL_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]*$")


def _taints(pool):
    return [
        {"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
        for t in node_taints(pool)
    ]


def test_eksctl_has_one_node_group_per_desired_group(
    profiles: Profiles, catalog: Catalog, cluster_spec: Callable
):
    cfg = eksctl_config(profiles, "prod", "1.33")
    assert (cfg["apiVersion"], cfg["kind"]) == ("eksctl.io/v1alpha5", "ClusterConfig")
    assert cfg["metadata"] == {"name": "prod", "region": "us-east-1", "version": "1.33"}
    desired = desired_state(
        profiles, catalog, cluster_spec(profiles, catalog, name="prod")
    )
    groups = cfg["nodeGroups"]
    assert [(g["availabilityZones"], g["minSize"], g["maxSize"]) for g in groups] == [
        ([d.zone], d.asg.min_size, d.asg.max_size) for d in desired.groups
    ]
    names = [g["name"] for g in groups]
    assert len(set(names)) == len(names)
    assert all(EKSCTL_NAME.match(n) for n in names)


def test_eksctl_node_groups_match_the_pool(profiles: Profiles, shipped_pool):
    p = profiles.pools[shipped_pool]
    groups = [
        g
        for g in eksctl_config(profiles, "prod")["nodeGroups"]
        if g["labels"]["wbspawner.io/pool"] == shipped_pool
    ]
    assert len(groups) == len(p.zones) * len(p.capacity_types)
    for g in groups:
        capacity = g["labels"]["wbspawner.io/capacity"]
        assert g["labels"] == node_labels(p, capacity)
        assert g["taints"] == _taints(p)
        assert g["amiFamily"] == "AmazonLinux2023"
        assert (g["volumeSize"], g["volumeType"], g["volumeEncrypted"]) == (
            p.root_volume_gib,
            "gp3",
            True,
        )
        assert g["disableIMDSv1"] is True and g["disablePodIMDS"] is True
        assert g["propagateASGTags"] is True
        dist = g["instancesDistribution"]
        assert dist["instanceTypes"] == list(p.instance_types)
        spot = capacity == "spot"
        assert dist["onDemandPercentageAboveBaseCapacity"] == (0 if spot else 100)
        assert dist.get("capacityRebalance", False) is spot
        assert g["tags"]["k8s.io/cluster-autoscaler/enabled"] == "true"
        assert g["tags"]["k8s.io/cluster-autoscaler/prod"] == "owned"
        assert g["tags"]["wbspawner.io/pool"] == shipped_pool
        assert "Name" not in g["tags"]
        gpu_tag = g["tags"].get(
            "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"
        )
        assert gpu_tag == (str(p.gpu_count) if p.is_gpu else None)


def _karpenter(profiles, catalog, **kw):
    docs = karpenter_manifests(profiles, catalog, "prod", **kw)
    return (
        {d["metadata"]["name"]: d for d in docs if d["kind"] == "EC2NodeClass"},
        {d["metadata"]["name"]: d for d in docs if d["kind"] == "NodePool"},
    )


def test_karpenter_node_pool_per_pool(
    catalog: Catalog, profiles: Profiles, shipped_pool
):
    p = profiles.pools[shipped_pool]
    classes, pools = _karpenter(profiles, catalog)
    np = pools[f"wbspawner-{shipped_pool}"]
    assert (np["apiVersion"], np["kind"]) == ("karpenter.sh/v1", "NodePool")
    spec = np["spec"]["template"]["spec"]
    req = {r["key"]: (r["operator"], r["values"]) for r in spec["requirements"]}
    assert req["node.kubernetes.io/instance-type"] == ("In", list(p.instance_types))
    assert req["topology.kubernetes.io/zone"] == ("In", list(p.zones))
    wanted = (
        ["on-demand"] if p.capacity_types[0] == "on-demand" else list(p.capacity_types)
    )
    assert req["karpenter.sh/capacity-type"] == ("In", wanted)
    assert spec["taints"] == _taints(p)
    labels = np["spec"]["template"]["metadata"]["labels"]
    assert (
        labels["wbspawner.io/pool"] == shipped_pool
        and "wbspawner.io/capacity" not in labels
    )
    nodes = p.max_nodes * len(p.zones) * len(p.capacity_types)
    limits = np["spec"]["limits"]
    assert limits["cpu"] == str(p.vcpu * nodes)
    assert limits["memory"] == f"{p.memory_mib * nodes}Mi"
    assert limits.get("nvidia.com/gpu") == (
        str(p.gpu_count * nodes) if p.is_gpu else None
    )
    ref = spec["nodeClassRef"]
    assert (ref["group"], ref["kind"]) == ("karpenter.k8s.aws", "EC2NodeClass")
    cls = classes[ref["name"]]
    assert ("gpu" in ref["name"]) == p.is_gpu
    assert (
        cls["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"]
        == f"{p.root_volume_gib}Gi"
    )
    assert DNS1123.match(np["metadata"]["name"]) and DNS1123.match(ref["name"])


def test_karpenter_node_classes(catalog: Catalog, profiles: Profiles):
    classes, pools = _karpenter(
        profiles, catalog, role="nodes", ami_alias="al2023@v20260801"
    )
    assert set(classes) == {node_class_name(p) for p in profiles.pools.values()}
    for cls in classes.values():
        assert (cls["apiVersion"], cls["kind"]) == (
            "karpenter.k8s.aws/v1",
            "EC2NodeClass",
        )
        spec = cls["spec"]
        assert spec["role"] == "nodes"
        assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260801"}]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert spec["subnetSelectorTerms"] == [
            {"tags": {"karpenter.sh/discovery": "prod"}}
        ]
        assert spec["blockDeviceMappings"][0]["ebs"]["encrypted"] is True
        assert "kubelet" not in spec  # no maxPods cap in the example profiles


def test_yaml_has_no_aliases_and_round_trips(profiles: Profiles, catalog: Catalog):
    docs = karpenter_manifests(profiles, catalog, "prod")
    text = to_yaml(docs)
    assert "&id" not in text and "*id" not in text
    assert list(yaml.safe_load_all(text)) == docs


@pytest.mark.parametrize("fmt", ["eksctl", "karpenter", "autoscaler"])
def test_cli_render(fmt, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "out.yaml"
    args = [
        "pools",
        "render",
        "--format",
        fmt,
        "--profiles",
        str(REPO / "profiles"),
        "--cluster",
        "prod",
        "--output",
        str(target),
    ]
    assert main(args, environ={}, stdout=out, stderr=err) == 0, err.getvalue()
    docs = list(yaml.safe_load_all(target.read_text()))
    assert docs and all(isinstance(d, dict) for d in docs)
    assert f"wrote {target}" in err.getvalue()
    if fmt == "autoscaler":
        assert docs[0]["autoDiscovery"]["clusterName"] == "prod"


def test_cli_pools_without_action_is_a_usage_error():
    err = io.StringIO()
    assert main(["pools"], environ={}, stdout=io.StringIO(), stderr=err) == 2
    assert "choose plan, apply or render" in err.getvalue()
