"""helm-values/cluster-autoscaler.yaml rendered by the real chart with the real helm.

Besides the flags and priorities, the autoscaler's pod is locked down (non-root
high uid, no capabilities, read-only root, requests and limits) and isolated by
the NetworkPolicy the values add through the chart's ``extraObjects``.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from tests.integration.helm_support import HELM_VALUES, K8S, REPO, helm_template
from wbspawner.catalog.instances import load_catalog
from wbspawner.gateway.netpol import selects
from wbspawner.pools.autoscaler_values import FLAGS, expander_priorities
from wbspawner.profiles.loader import load_profiles

pytestmark = pytest.mark.integration

VALUES = HELM_VALUES / "cluster-autoscaler.yaml"
CHART_NAME = "cluster-autoscaler-9.59.0.tgz"


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return helm_template("cluster-autoscaler", CHART_NAME, VALUES, "kube-system")


def test_every_rendered_object_is_valid(rendered):
    kinds = sorted(d["kind"] for d in rendered)
    assert {"Deployment", "ConfigMap", "ServiceAccount", "ClusterRole"} <= set(kinds)
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S, strict=True)


def _one(rendered, kind, name=None):
    found = [
        d
        for d in rendered
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def test_priority_expander_config_map(rendered):
    cm = _one(rendered, "ConfigMap", "cluster-autoscaler-priority-expander")
    assert cm["metadata"]["namespace"] == "kube-system"
    priorities = yaml.safe_load(cm["data"]["priorities"])
    profiles = load_profiles([REPO / "profiles"], load_catalog())
    assert priorities == expander_priorities(profiles, "wbspawner")


def test_deployment_flags(rendered):
    deployment = _one(rendered, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["command"]
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
        "k8s.io/cluster-autoscaler/wbspawner" in args
    )
    for flag, value, _ in FLAGS:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert f"--{flag}={text}" in args
    assert container["image"].endswith(":v1.33.0")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("AWS_REGION") == "us-east-1"


def test_service_account_can_read_the_priority_config_map(rendered):
    role = _one(rendered, "Role")
    names = [n for rule in role["rules"] for n in rule.get("resourceNames", [])]
    assert "cluster-autoscaler-priority-expander" in names


def test_autoscaler_pod_is_locked_down(rendered):
    pod = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}, bound


def test_autoscaler_pod_admits_nothing_and_reaches_no_instance_metadata(rendered):
    deployment = _one(rendered, "Deployment")
    policy = _one(rendered, "NetworkPolicy", "cluster-autoscaler")
    assert policy["metadata"]["namespace"] == "kube-system"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["spec"]["podSelector"], labels)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    peers = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
    assert peers == [
        {"namespaceSelector": {}},
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}},
    ]
