"""Network policies that keep one user's Dask clusters to that user.

This module owns which pods may open connections to Dask schedulers and workers:
the per-owner ``NetworkPolicy`` manifests the hub ensures at each spawn
(:func:`dask_network_policies`), the static baseline operators apply once
(:func:`baseline_policies`, shipped as ``helm-values/dask-networkpolicy.yaml``),
and a small evaluator of ingress rules (:func:`allows`) that tests use to check
who can reach what.

A static policy cannot say "the same owner as the selected pod", so each user
gets their own pair of policies, selecting their pods by the owner label
``wbspawner.io/user`` that both user servers (:mod:`wbspawner.spawn.manifests`) and Dask
pods (:mod:`wbspawner.gateway.pods`) carry, with the same escaping
(:func:`wbspawner.spawn.manifests.label_value`).

Ports are those of dask-gateway's Kubernetes backend (2026.3.0,
``KubeController.get_scheduler_command``): the scheduler's TLS comm on 8786, its
dashboard on 8787 and the gateway's scheduler API on 8788. ``dask worker`` binds
its worker and nanny comms to random ports (the backend passes no
``--worker-port``), so peer rules towards workers name no port.

Pure: returns new dicts, no I/O, no Kubernetes client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wbspawner.gateway.pods import ROLE_LABEL
from wbspawner.model import USER_LABEL
from wbspawner.spawn.manifests import label_value

Manifest = dict[str, Any]
"""A Kubernetes object as a plain camelCase dict."""

SCHEDULER_PORT = 8786
"""Scheduler comm (TLS): workers, clients through the proxy (SNI passthrough)."""
DASHBOARD_PORT = 8787
"""Dashboards of schedulers and workers (HTTP)."""
API_PORT = 8788
"""The scheduler's dask-gateway API: the gateway's API server posts to it."""
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
"""Label every namespace carries (Kubernetes 1.22+), with its own name."""
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
DASK_COMPONENTS = ("dask-scheduler", "dask-worker")
"""``app.kubernetes.io/component`` of the pods dask-gateway's controller makes."""
SERVER_COMPONENT = ("component", "singleuser-server")
"""The label KubeSpawner puts on every user server pod."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "wbspawner"}
_NAME_MAX = 63
_NAME_BAD = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySelector:
    """Where the Dask Gateway's own pods run and how the chart labels them."""

    namespace: str = "dask-gateway"
    """Namespace of the gateway release (its API server and traefik proxy)."""
    release: str = "dask-gateway"
    """Helm release name (``app.kubernetes.io/instance``)."""
    chart: str = "dask-gateway"
    """Chart name (``app.kubernetes.io/name``, also on Dask pods)."""

    def peer(self, component: str) -> Manifest:
        """Return a ``from`` peer selecting one component of the release.

        Args:
            component: ``traefik`` (the proxy) or ``gateway`` (the API server).

        Returns:
            A namespace and pod selector.
        """
        labels = {
            NAME_LABEL: self.chart,
            INSTANCE_LABEL: self.release,
            COMPONENT_LABEL: component,
        }
        return {
            "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: self.namespace}},
            "podSelector": {"matchLabels": labels},
        }


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod as network policies see it: its namespace and labels."""

    namespace: str
    labels: Mapping[str, str]


def policy_name(role: str, user: str) -> str:
    """Return the name of a user's policy for one Dask role.

    Characters outside ``[a-z0-9-]`` (after lower-casing) become ``-``; a name
    that had to change or be cut gets a short hash of the user name, so that
    ``Alice`` and ``alice`` get different policies, as they get different
    owner labels.

    Args:
        role: ``scheduler`` or ``worker``.
        user: the hub user name.

    Returns:
        A DNS-1123 name of at most 63 characters, ``dask-<role>-<user>``.

    Raises:
        ValueError: the user name is empty.
    """
    if not user:
        raise ValueError("a network policy needs a user name")
    prefix = f"dask-{role}-"
    safe = _NAME_BAD.sub("-", user.lower()).strip("-")
    room = _NAME_MAX - len(prefix)
    if safe == user and len(safe) <= room:
        return prefix + safe
    digest = hashlib.sha256(user.encode()).hexdigest()[:8]
    head = safe[: room - len(digest) - 1].strip("-")
    return prefix + (f"{head}-{digest}" if head else digest)


def _tcp(*ports: int) -> list[Manifest]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


def _dask_pods(role: str, owner: str) -> Manifest:
    return {"matchLabels": {ROLE_LABEL: role, USER_LABEL: owner}}


def _policy(role: str, user: str, namespace: str, rules: list[Manifest]) -> Manifest:
    owner = label_value(user)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(role, user),
            "namespace": namespace,
            "labels": {**MANAGED_BY, USER_LABEL: owner},
        },
        "spec": {
            "podSelector": _dask_pods(role, owner),
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def _gateway_rules(gateway: GatewaySelector) -> list[Manifest]:
    """Proxy to comm and dashboard, API server to the scheduler API."""
    return [
        {
            "from": [gateway.peer("traefik")],
            "ports": _tcp(SCHEDULER_PORT, DASHBOARD_PORT),
        },
        {"from": [gateway.peer("gateway")], "ports": _tcp(API_PORT)},
    ]


def dask_network_policies(
    namespace: str,
    user: str,
    *,
    server_namespace: str,
    gateway_selector: GatewaySelector,
) -> list[Manifest]:
    """Return the two ingress policies of one user's Dask pods.

    The **scheduler** of the user accepts:

    - the user's own Dask workers on the comm port;
    - the user's own server on the comm and dashboard ports: the one server
      allowed directly (the user servers' egress in
      ``helm-values/jupyterhub.yaml`` admits only the gateway proxy today);
    - the gateway's traefik proxy on the comm and dashboard ports: clients reach
      a scheduler through the proxy, which routes TLS by SNI
      (``daskgateway-<cluster>``) without terminating it, so behind the proxy
      the cluster's own TLS credentials, handed only to its owner, tell users
      apart, not the network;
    - the gateway's API server on the scheduler API port (scale and adapt).

    The gateway's controller only talks to the Kubernetes API and is not let in.

    The **workers** of the user accept their own scheduler and workers on any
    port (worker and nanny comms listen on random ports; the scheduler calls
    them, workers fetch data from each other), and the user's own server on
    the dashboard port (the scheduler's dashboard links to worker dashboards).

    Args:
        namespace: namespace of the Dask pods (the gateway's cluster namespace).
        user: the hub user name (escaped as the pods' owner label).
        server_namespace: namespace of the user servers (the hub's).
        gateway_selector: where the gateway's proxy and API server run.

    Returns:
        ``[scheduler policy, worker policy]``, new dicts.

    Raises:
        ValueError: the user name is empty.
    """
    owner = label_value(user)
    if not owner:
        raise ValueError("a network policy needs a user name")
    server_labels = {SERVER_COMPONENT[0]: SERVER_COMPONENT[1], USER_LABEL: owner}
    server = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: server_namespace}},
        "podSelector": {"matchLabels": server_labels},
    }
    workers = {"podSelector": _dask_pods("worker", owner)}
    scheduler = {"podSelector": _dask_pods("scheduler", owner)}
    scheduler_rules = [
        {"from": [workers], "ports": _tcp(SCHEDULER_PORT)},
        {"from": [server], "ports": _tcp(SCHEDULER_PORT, DASHBOARD_PORT)},
        *_gateway_rules(gateway_selector),
    ]
    worker_rules = [
        {"from": [scheduler, workers]},
        {"from": [server], "ports": _tcp(DASHBOARD_PORT)},
    ]
    return [
        _policy("scheduler", user, namespace, scheduler_rules),
        _policy("worker", user, namespace, worker_rules),
    ]


def _all_dask(gateway: GatewaySelector, components: Sequence[str]) -> Manifest:
    return {
        "matchLabels": {NAME_LABEL: gateway.chart},
        "matchExpressions": [
            {"key": COMPONENT_LABEL, "operator": "In", "values": list(components)}
        ],
    }


def baseline_policies(gateway: GatewaySelector) -> list[Manifest]:
    """Return the static policies that protect every Dask pod of the gateway.

    ``dask-default-deny-ingress`` isolates all schedulers and workers (and no
    other pod: the gateway's own pods carry other components), so a pod is
    reachable only where some policy allows it. ``dask-scheduler-from-gateway``
    lets the gateway's proxy and API server reach every scheduler, as in
    :func:`dask_network_policies`. Until a user has their own policies, their
    workers cannot reach their scheduler: the baseline fails closed.

    Args:
        gateway: the gateway release; Dask pods run in its namespace.

    Returns:
        The two policies, new dicts.
    """

    def meta(name: str) -> Manifest:
        return {"name": name, "namespace": gateway.namespace, "labels": {**MANAGED_BY}}

    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("dask-default-deny-ingress"),
        "spec": {
            "podSelector": _all_dask(gateway, DASK_COMPONENTS),
            "policyTypes": ["Ingress"],
            "ingress": [],
        },
    }
    from_gateway = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("dask-scheduler-from-gateway"),
        "spec": {
            "podSelector": _all_dask(gateway, ("dask-scheduler",)),
            "policyTypes": ["Ingress"],
            "ingress": _gateway_rules(gateway),
        },
    }
    return [deny, from_gateway]


# --------------------------------------------------------------------- evaluator


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Return whether a ``LabelSelector`` matches a set of labels.

    Args:
        selector: ``matchLabels`` and/or ``matchExpressions`` (empty: everything).
        labels: the object's labels.

    Returns:
        True when every requirement holds.

    Raises:
        ValueError: an unknown expression operator.
    """
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = labels.get(key) not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"unknown selector operator {op!r}")
        if not ok:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], policy_ns: str, source: PodRef) -> bool:
    if "ipBlock" in peer:
        return False  # pods are known by labels here, not by address
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is None:
        in_namespace = source.namespace == policy_ns
    else:
        in_namespace = selects(ns_selector, {NAMESPACE_LABEL: source.namespace})
    return in_namespace and selects(peer.get("podSelector") or {}, source.labels)


def _port_matches(ports: Sequence[Mapping[str, Any]] | None, port: int) -> bool:
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != "TCP":
            continue
        first = item.get("port")
        if first is None:
            return True
        if isinstance(first, int) and first <= port <= item.get("endPort", first):
            return True
    return False


def allows(
    policies: Sequence[Mapping[str, Any]], source: PodRef, target: PodRef, port: int
) -> bool:
    """Return whether ingress policies let ``source`` open TCP ``port`` on ``target``.

    Follows ``networking.k8s.io/v1`` semantics for ingress: a pod no policy
    selects accepts everything; a selected pod accepts a connection that at
    least one rule of one selecting policy allows. Namespaces are assumed to
    carry only their ``kubernetes.io/metadata.name`` label; named ports and
    ``ipBlock`` peers never match. Egress policies are not evaluated.

    Args:
        policies: NetworkPolicy manifests (other kinds are ignored).
        source: the connecting pod.
        target: the pod connected to.
        port: the TCP port on the target.

    Returns:
        True when the connection is allowed.
    """
    isolating = [
        p
        for p in policies
        if p.get("kind") == "NetworkPolicy"
        and p["metadata"].get("namespace") == target.namespace
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"].get("podSelector") or {}, target.labels)
    ]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            from_ok = not peers or any(
                _peer_matches(peer, target.namespace, source) for peer in peers
            )
            if from_ok and _port_matches(rule.get("ports"), port):
                return True
    return False
