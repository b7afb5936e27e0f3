"""Dask network isolation: per-owner policies, the static baseline, the evaluator."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dask_gateway_server.models import User

from tests.paths import REPO
from wbspawner.gateway import netpol
from wbspawner.gateway.netpol import GatewaySelector, PodRef
from wbspawner.gateway.options import OptionsContext, cluster_options_for
from wbspawner.model import USER_LABEL, Profiles
from wbspawner.spawn.manifests import label_value

STATIC = REPO / "helm-values" / "dask-networkpolicy.yaml"
K8S = "1.33"
NS, HUB_NS = "dask-gateway", "jhub"
GATEWAY = GatewaySelector()
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ODD_USERS = [
    pytest.param("bob", id="plain"),
    pytest.param("Alice.Smith@example.org", id="email"),
    pytest.param("a_b", id="underscore"),
    pytest.param("jürgen", id="non-ascii"),
    pytest.param("-lead-", id="dashes"),
    pytest.param("x" * 80, id="long"),
    pytest.param("ALICE", id="upper"),
]


def _build(user: str) -> list[dict[str, Any]]:
    return netpol.dask_network_policies(
        NS, user, server_namespace=HUB_NS, gateway_selector=GATEWAY
    )


@pytest.fixture
def dask_pod_of(
    profiles: Profiles, dask_pod: Callable[..., dict[str, Any]]
) -> Callable[[str, bool], PodRef]:
    """``dask_pod_of(user, worker)``: labels of the pod the real dask-gateway
    controller makes for ``user`` (of jupyter-users) with default options."""

    def labels(user: str, worker: bool) -> PodRef:
        owner = User(user, groups=["jupyter-users"])
        options = cluster_options_for(profiles, owner, OptionsContext())
        overrides = options.get_configuration(options.parse_options({}), owner)
        return PodRef(
            NS, dask_pod(overrides, worker, namespace=NS)["metadata"]["labels"]
        )

    return labels


def _static() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(STATIC.read_text(encoding="utf-8")) if d]


def _peers(policy: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for rule in policy["spec"]["ingress"]:
        yield from rule.get("from", [])


# ------------------------------------------------------------- per-owner policies


@pytest.mark.parametrize("user", ODD_USERS)
def test_policies_validate_and_are_named_for_the_user(user: str) -> None:
    scheduler, worker = _build(user)
    for policy in (scheduler, worker):
        kubernetes_validate.validate(policy, K8S, strict=True)
        name = policy["metadata"]["name"]
        assert DNS1123.fullmatch(name) and len(name) <= 63, name
        assert policy["metadata"]["namespace"] == NS
        assert policy["metadata"]["labels"][USER_LABEL] == label_value(user)
        assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert scheduler["metadata"]["name"].startswith("dask-scheduler-")
    assert worker["metadata"]["name"].startswith("dask-worker-")


@pytest.mark.parametrize("user", ODD_USERS)
def test_every_selector_of_user_pods_names_the_owner(user: str) -> None:
    """No rule selects another user's server, scheduler or workers."""
    owner = label_value(user)
    gateway_peers = [GATEWAY.peer("traefik"), GATEWAY.peer("gateway")]
    for policy in _build(user):
        assert policy["spec"]["podSelector"]["matchLabels"][USER_LABEL] == owner
        assert "matchExpressions" not in policy["spec"]["podSelector"]
        for peer in _peers(policy):
            if peer in gateway_peers:
                continue
            assert peer["podSelector"]["matchLabels"][USER_LABEL] == owner, peer
            assert "matchExpressions" not in peer["podSelector"]


@pytest.mark.parametrize(
    ("role", "peer", "ports"),
    [
        pytest.param("scheduler", "worker", {8786}, id="scheduler-from-workers"),
        pytest.param("scheduler", "server", {8786, 8787}, id="scheduler-from-server"),
        pytest.param("scheduler", "traefik", {8786, 8787}, id="scheduler-from-proxy"),
        pytest.param("scheduler", "gateway", {8788}, id="scheduler-from-api"),
        pytest.param("worker", "scheduler", None, id="worker-from-scheduler"),
        pytest.param("worker", "worker", None, id="worker-from-workers"),
        pytest.param("worker", "server", {8787}, id="worker-from-server"),
    ],
)
def test_rules_name_their_ports(role: str, peer: str, ports: set[int] | None) -> None:
    policy = _build("bob")[0 if role == "scheduler" else 1]
    found = []
    for rule in policy["spec"]["ingress"]:
        for source in rule["from"]:
            labels = source["podSelector"]["matchLabels"]
            kind = labels.get("app.kubernetes.io/component") or labels.get(
                "wbspawner.io/dask-role", "server"
            )
            if kind == peer:
                got = rule.get("ports")
                found.append(None if got is None else {p["port"] for p in got})
                assert all(p["protocol"] == "TCP" for p in got or [])
    assert found == [ports]


def test_server_and_gateway_peers_name_their_namespaces() -> None:
    scheduler, _ = _build("bob")
    namespaces = {
        str(peer.get("namespaceSelector", {}).get("matchLabels"))
        for peer in _peers(scheduler)
    }
    assert namespaces == {
        "None",  # workers: the policy's own namespace
        str({"kubernetes.io/metadata.name": HUB_NS}),
        str({"kubernetes.io/metadata.name": NS}),
    }
    other = GatewaySelector(namespace="gw", release="dg")
    built = netpol.dask_network_policies(
        "clusters", "bob", server_namespace="hub", gateway_selector=other
    )
    proxy = built[0]["spec"]["ingress"][2]["from"][0]
    assert proxy["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "gw"
    }
    assert proxy["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "dg"
    assert built[0]["metadata"]["namespace"] == "clusters"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("alice", "Alice", id="case"),
        pytest.param("a.b", "a-b", id="dot-vs-dash"),
        pytest.param("x" * 70 + "1", "x" * 70 + "2", id="long-tails"),
    ],
)
def test_different_users_get_different_policies(first: str, second: str) -> None:
    a, b = _build(first), _build(second)
    assert a[0]["metadata"]["name"] != b[0]["metadata"]["name"]
    assert a[1]["metadata"]["name"] != b[1]["metadata"]["name"]
    assert a[0]["spec"] != b[0]["spec"]


def test_empty_user_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a user name"):
        _build("")
    with pytest.raises(ValueError, match="needs a user name"):
        netpol.policy_name("worker", "")


def test_builder_returns_fresh_dicts() -> None:
    first = _build("bob")
    first[0]["spec"]["ingress"].clear()
    first[1]["metadata"]["labels"]["x"] = "y"
    assert _build("bob")[0]["spec"]["ingress"]
    assert "x" not in _build("bob")[1]["metadata"]["labels"]


# ---------------------------------------------------- evaluation with real labels


def test_owner_reaches_own_scheduler_and_others_do_not(
    dask_pod_of: Callable[[str, bool], PodRef], profiles: Profiles
) -> None:
    policies = [*_static(), *_build("bob"), *_build("alice")]
    bob_sched = dask_pod_of("bob", worker=False)
    bob_worker = dask_pod_of("bob", worker=True)
    alice_worker = dask_pod_of("alice", worker=True)
    alice_sched = dask_pod_of("alice", worker=False)
    assert netpol.allows(policies, bob_worker, bob_sched, 8786)
    assert not netpol.allows(policies, alice_worker, bob_sched, 8786)
    assert not netpol.allows(policies, bob_worker, bob_sched, 8788)
    assert netpol.allows(policies, bob_sched, bob_worker, 41234)
    assert not netpol.allows(policies, alice_sched, bob_worker, 41234)
    assert not netpol.allows(policies, alice_worker, bob_worker, 41234)


def test_without_owner_policies_dask_pods_fail_closed(
    dask_pod_of: Callable[[str, bool], PodRef], profiles: Profiles
) -> None:
    static = _static()
    sched = dask_pod_of("bob", worker=False)
    worker = dask_pod_of("bob", worker=True)
    assert not netpol.allows(static, worker, sched, 8786)
    assert not netpol.allows(static, sched, worker, 41234)
    # Without any policy the same pods would accept anything.
    assert netpol.allows([], worker, sched, 8786)


# --------------------------------------------------------------- static baseline


def test_static_file_validates_strictly_and_matches_the_builder() -> None:
    docs = _static()
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert policies == netpol.baseline_policies(GATEWAY)
    assert {d["metadata"]["namespace"] for d in docs} == {NS}


def test_static_deny_selects_exactly_the_dask_pods(
    dask_pod_of: Callable[[str, bool], PodRef], profiles: Profiles
) -> None:
    deny = next(
        d for d in _static() if d["metadata"]["name"] == "dask-default-deny-ingress"
    )
    assert deny["spec"]["ingress"] == []
    selector = deny["spec"]["podSelector"]
    for worker in (False, True):
        assert netpol.selects(selector, dask_pod_of("bob", worker).labels)
    chart = {
        "app.kubernetes.io/name": "dask-gateway",
        "app.kubernetes.io/instance": "dask-gateway",
    }
    for component in ("gateway", "traefik", "controller"):
        labels = {**chart, "app.kubernetes.io/component": component}
        assert not netpol.selects(selector, labels), component
    assert not netpol.selects(selector, {"component": "singleuser-server"})


def test_hub_may_manage_policies_in_the_dask_namespace_only() -> None:
    docs = {d["kind"]: d for d in _static()}
    role, binding = docs["Role"], docs["RoleBinding"]
    assert role["rules"] == [
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["networkpolicies"],
            "verbs": ["get", "create", "update"],
        }
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hub", "namespace": HUB_NS}
    ]


def test_deploy_guide_says_how_to_apply_the_static_file() -> None:
    guide = (REPO / "docs" / "deploy-eks.md").read_text(encoding="utf-8")
    assert "kubectl apply -f helm-values/dask-networkpolicy.yaml" in guide


# ---------------------------------------------------------------------- evaluator


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param({}, {"a": "1"}, True, id="empty-selects-all"),
        pytest.param(
            {"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="labels-subset"
        ),
        pytest.param(
            {"matchLabels": {"a": "1"}}, {"a": "2"}, False, id="labels-differ"
        ),
        pytest.param(
            {
                "matchExpressions": [
                    {"key": "a", "operator": "In", "values": ["1", "2"]}
                ]
            },
            {"a": "2"},
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {},
            True,
            id="notin-missing",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
            {},
            False,
            id="exists",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {},
            True,
            id="does-not-exist",
        ),
    ],
)
def test_selects(selector: dict[str, Any], labels: dict[str, str], expected: bool):
    assert netpol.selects(selector, labels) is expected


def test_selects_refuses_unknown_operators() -> None:
    with pytest.raises(ValueError, match="unknown selector operator 'Near'"):
        netpol.selects({"matchExpressions": [{"key": "a", "operator": "Near"}]}, {})


def _policy(ns: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {"app": "t"}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


TARGET = PodRef("a", {"app": "t"})


@pytest.mark.parametrize(
    ("ingress", "source", "port", "expected"),
    [
        pytest.param([], PodRef("a", {}), 80, False, id="isolated-no-rules"),
        pytest.param([{}], PodRef("b", {}), 80, True, id="empty-rule-allows-all"),
        pytest.param(
            [{"from": [{"podSelector": {}}]}],
            PodRef("b", {}),
            80,
            False,
            id="pod-selector-is-own-namespace",
        ),
        pytest.param(
            [{"from": [{"podSelector": {}}]}],
            PodRef("a", {}),
            80,
            True,
            id="same-namespace",
        ),
        pytest.param(
            [{"from": [{"namespaceSelector": {}}]}],
            PodRef("b", {}),
            80,
            True,
            id="any-namespace",
        ),
        pytest.param(
            [{"ports": [{"port": 80, "endPort": 90, "protocol": "TCP"}]}],
            PodRef("a", {}),
            85,
            True,
            id="port-range",
        ),
        pytest.param(
            [{"ports": [{"port": 80, "protocol": "UDP"}]}],
            PodRef("a", {}),
            80,
            False,
            id="udp-is-not-tcp",
        ),
        pytest.param(
            [{"ports": [{"port": "http"}]}],
            PodRef("a", {}),
            80,
            False,
            id="named-port-never-matches",
        ),
        pytest.param(
            [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
            PodRef("a", {}),
            80,
            False,
            id="ipblock-never-matches",
        ),
    ],
)
def test_allows(ingress, source, port, expected):
    assert netpol.allows([_policy("a", ingress)], source, TARGET, port) is expected


def test_policies_of_other_namespaces_or_pods_do_not_isolate() -> None:
    source = PodRef("a", {})
    assert netpol.allows([_policy("b", [])], source, TARGET, 80)
    assert netpol.allows([_policy("a", [])], source, PodRef("a", {"app": "u"}), 80)
