"""Cluster Autoscaler helm values for the pools, with the reason for every flag.

This module owns ``helm-values/cluster-autoscaler.yaml`` (for the
kubernetes/autoscaler ``cluster-autoscaler`` chart 9.59.0): auto-discovery of the
pools' groups, the flags wbspawner depends on, the priority expander's
``priorities`` (the chart's ``expanderPriorities`` renders the
``cluster-autoscaler-priority-expander`` ConfigMap), and the hardening of the
autoscaler's own pod (:func:`pod_hardening`). The values are data
(:func:`autoscaler_values`); :func:`render_values` writes them as YAML with the
reasons as comments, and a test keeps the committed file equal to a fresh render.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import yaml

from wbspawner.model import Profiles
from wbspawner.naming import group_regex
from wbspawner.pools.desired import JsonDict
from wbspawner.pools.nodes import CA_ENABLED_TAG, CA_PREFIX

PRIORITY_STEP = 10
"""Gap between priorities, so admins can slot their own groups in between."""

FLAGS: tuple[tuple[str, Any, str], ...] = (
    (
        "expander",
        "priority",
        (
            "Pick groups by the pools' capacity preference (spot before on-demand "
            "unless a pool says otherwise), from expanderPriorities below. least-waste "
            "scores CPU and memory waste as fractions, so a pod without requests ties "
            "every group and a GPU pod can land on any GPU-less group that fits."
        ),
    ),
    (
        "expendable-pods-priority-cutoff",
        -10,
        (
            "Warm-capacity placeholders run at priority -10. Pods *below* the cutoff "
            "neither trigger scale-ups nor keep nodes, so -10 itself still does both. "
            "This is the default; it is set here because warm capacity depends on it."
        ),
    ),
    (
        "scale-down-unneeded-time",
        "10m",
        (
            "A node freed by a stopped server stays 10 minutes, so a user who "
            "restarts gets it back at once; longer costs a whole idle node."
        ),
    ),
    (
        "scale-down-delay-after-add",
        "5m",
        (
            "Every login can scale up; with the default 10m a busy morning would "
            "block all scale-down for hours, paying for nodes nobody uses."
        ),
    ),
    (
        "balance-similar-node-groups",
        False,
        (
            "Each group is one pool in one zone for one capacity type, and a pod "
            "with a home is pinned to its zone: there is nothing to balance, and "
            "balancing would split scale-ups across groups the priorities rank "
            "differently."
        ),
    ),
    (
        "skip-nodes-with-local-storage",
        False,
        (
            "Homes live on EBS volumes, not node storage; emptyDir scratch space of "
            "notebooks and Dask workers must not keep idle nodes forever."
        ),
    ),
    (
        "max-node-provision-time",
        "10m",
        (
            "Nodes join in about 3 minutes; a spot request that is not filled after "
            "10 minutes is given up so the on-demand group gets its turn sooner "
            "(default 15m)."
        ),
    ),
)
"""``extraArgs`` of the chart: (flag, value, reason)."""


def expander_priorities(profiles: Profiles, cluster: str) -> dict[int, list[str]]:
    """Return the priority expander's priorities for the pools.

    A pool's first capacity type gets the highest priority, its second the next.
    A pod can only use its own pool (node selector and taints), so only the
    order within a pool matters.

    Args:
        profiles: the profiles.
        cluster: cluster name.

    Returns:
        Priority → group regexes, highest first.
    """
    depth = max((len(p.capacity_types) for p in profiles.pools.values()), default=0)
    out: dict[int, list[str]] = {}
    for pool in sorted(profiles.pools.values(), key=lambda p: p.name):
        for rank, capacity in enumerate(pool.capacity_types):
            priority = (depth - rank) * PRIORITY_STEP
            out.setdefault(priority, []).append(
                group_regex(cluster, pool.name, capacity)
            )
    return dict(sorted(out.items(), reverse=True))


def image_tag(k8s_version: str) -> str:
    """Return the Cluster Autoscaler image tag for a Kubernetes minor version.

    CA supports the Kubernetes minor it is built for; the chart's default image
    (v1.35.0) is meant for clusters on 1.35.

    Args:
        k8s_version: e.g. ``1.33``.

    Returns:
        E.g. ``v1.33.0``.
    """
    return f"v{k8s_version}.0"


POD_UID = 65532
"""uid and gid of the autoscaler: ``nonroot`` of its distroless base image."""
METADATA_CIDR = "169.254.169.254/32"
"""The node's instance metadata address, which the pod must not reach."""


def pod_hardening() -> JsonDict:
    """Return the chart values that lock the autoscaler's pod down.

    Requests and limits, a non-root high uid with seccomp ``RuntimeDefault``, no
    privilege escalation, no capabilities, a read-only root filesystem (the
    binary writes nothing; it logs to stderr), and a NetworkPolicy (the chart's
    ``extraObjects``) that admits no connection and lets the pod reach any pod
    and any address but the instance metadata. The kubelet's liveness probe comes from
    the node, which NetworkPolicy always lets through.

    Returns:
        ``resources``, ``securityContext``, ``containerSecurityContext`` and
        ``extraObjects`` of the cluster-autoscaler chart 9.59.0.
    """
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "cluster-autoscaler",
            "namespace": "{{ .Release.Namespace }}",
        },
        "spec": {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": "{{ .Release.Name }}",
                    "app.kubernetes.io/name": "aws-cluster-autoscaler",
                }
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            # Pods by selector (plugins differ on whether ipBlock matches pod
            # addresses), everything else by address.
            "egress": [
                {"to": [{"namespaceSelector": {}}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_CIDR]}}]},
            ],
        },
    }
    return {
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": POD_UID,
            "runAsGroup": POD_UID,
            "fsGroup": POD_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "extraObjects": [policy],
    }


def autoscaler_values(
    profiles: Profiles, cluster: str, k8s_version: str = "1.33"
) -> JsonDict:
    """Return the chart values for the pools.

    Args:
        profiles: the profiles (pools, region).
        cluster: cluster name (auto-discovery and group names).
        k8s_version: Kubernetes minor version (image tag).

    Returns:
        Values for the cluster-autoscaler chart 9.59.0.
    """
    return {
        "cloudProvider": "aws",
        "awsRegion": profiles.cost.region,
        "fullnameOverride": "cluster-autoscaler",
        "autoDiscovery": {
            "clusterName": cluster,
            "tags": [
                CA_ENABLED_TAG,
                f"{CA_PREFIX}/{{{{ .Values.autoDiscovery.clusterName }}}}",
            ],
        },
        "image": {"tag": image_tag(k8s_version)},
        "extraArgs": {flag: value for flag, value, _ in FLAGS},
        "expanderPriorities": expander_priorities(profiles, cluster),
        **pod_hardening(),
    }


def _dump(data: JsonDict) -> list[str]:
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=88)
    return text.rstrip("\n").split("\n")


def _comment(text: str, indent: str = "") -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + 2 + len(line) + 1 + len(word) > 88:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return [f"{indent}# {x}" for x in lines]


_NOTES = {
    "cloudProvider": "AWS Auto Scaling groups, found by their tags.",
    "fullnameOverride": "A stable name for the Deployment and its ServiceAccount "
    "(annotate the ServiceAccount with an IAM role: rbac.serviceAccount."
    "annotations.eks.amazonaws.com/role-arn).",
    "autoDiscovery": "Every pool group carries both tags (wbspawner pools apply).",
    "image": "Match the cluster's Kubernetes minor version.",
    "expanderPriorities": "Rendered into the ConfigMap "
    "cluster-autoscaler-priority-expander. Higher wins; within a pool the "
    "profiles' capacity_types order decides (spot first, on-demand as fallback, "
    "unless the pool lists on-demand first).",
    "resources": "The autoscaler's memory grows with the number of nodes and "
    "pods; these fit a few hundred nodes. The CPU limit only stops a runaway.",
    "securityContext": "Run as nonroot, the distroless image's own user (a high "
    "uid no host user has), with the runtime's default seccomp profile; fsGroup "
    "lets it read the projected IRSA token.",
    "containerSecurityContext": "No privilege escalation, no capabilities, and a "
    "read-only root filesystem: the binary writes no file (it logs to stderr).",
    "extraObjects": "A NetworkPolicy for the autoscaler's pod: nothing may connect "
    "to it (allow your Prometheus here if you scrape its metrics on 8085), and it "
    "may reach the Kubernetes and AWS APIs but not the node's instance metadata "
    "(its IAM role comes from IRSA or Pod Identity, never the node's).",
}


def render_values(profiles: Profiles, cluster: str, k8s_version: str = "1.33") -> str:
    """Return ``helm-values/cluster-autoscaler.yaml`` with a reason per setting.

    Args:
        profiles: the profiles.
        cluster: cluster name.
        k8s_version: Kubernetes minor version.

    Returns:
        YAML text; ``yaml.safe_load`` of it equals :func:`autoscaler_values`.
    """
    values = autoscaler_values(profiles, cluster, k8s_version)
    lines = [
        "# Cluster Autoscaler (chart cluster-autoscaler 9.59.0) for wbspawner's pools.",
        "# Generated from the profiles by:",
        (
            f"#   wbspawner pools render --format autoscaler --cluster {cluster} "
            f"--k8s-version {k8s_version}"
        ),
        "# Do not edit by hand: change the profiles and render again.",
    ]
    for key, value in values.items():
        lines.append("")
        if key in _NOTES:
            lines += _comment(_NOTES[key])
        if key != "extraArgs":
            lines += _dump({key: value})
            continue
        lines.append("extraArgs:")
        for flag, flag_value, reason in FLAGS:
            lines += _comment(reason, "  ")
            lines += ["  " + x for x in _dump({flag: flag_value})]
    return "\n".join(lines) + "\n"
