"""What the apiserver fills in on create: defaulting and admission, per kind.

Pure functions over (store view, new object). They mirror the defaulting of
the real apiserver and the admission plugins enabled on EKS that matter to
clients: Priority (``spec.priority`` from the PriorityClass),
DefaultTolerationSeconds, DefaultStorageClass, ServiceAccount (the name, and
the ``kube-api-access-*`` token volume every container mounts),
service cluster IP allocation, Secret ``stringData``, Event time keys, and the
apps/v1 defaults of Deployments and ReplicaSets.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from devcluster.errors import ApiError

Lister = Callable[[str], Iterable[dict[str, Any]]]
"""Returns the stored objects of a (cluster-scoped) plural name."""

_NOT_READY_TOLERATIONS = (
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
)


def _container_defaults(container: dict[str, Any]) -> None:
    image = str(container.get("image", ""))
    tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    container.setdefault(
        "imagePullPolicy",
        "Always" if tagless or image.endswith(":latest") else "IfNotPresent",
    )
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        requests = resources.setdefault("requests", {})
        for key, value in limits.items():
            requests.setdefault(key, value)
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def qos_class(spec: dict[str, Any]) -> str:
    """Return the pod's QoS class (Guaranteed, Burstable or BestEffort)."""
    containers = list(spec.get("containers") or []) + list(
        spec.get("initContainers") or []
    )
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for key in ("cpu", "memory"):
            if key not in limits or requests.get(key, limits[key]) != limits[key]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _priority(spec: dict[str, Any], classes: list[dict[str, Any]], name: str) -> None:
    wanted = spec.get("priorityClassName")
    if wanted:
        match = next((c for c in classes if c["metadata"]["name"] == wanted), None)
        if match is None:
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: no PriorityClass with name {wanted} '
                "was found",
            )
        spec["priority"] = int(match.get("value", 0))
        if "preemptionPolicy" in match:
            spec.setdefault("preemptionPolicy", match["preemptionPolicy"])
        return
    default = next((c for c in classes if c.get("globalDefault")), None)
    if default is not None:
        spec["priorityClassName"] = default["metadata"]["name"]
        spec["priority"] = int(default.get("value", 0))
    else:
        spec.setdefault("priority", 0)


def default_pod_spec(spec: dict[str, Any]) -> None:
    """Fill the defaults of a pod spec in place (pods and pod templates).

    Idempotent: the apiserver defaults every write, so an update that leaves a
    defaulted field out does not change it.
    """
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for container in list(spec.get("containers") or []) + list(
        spec.get("initContainers") or []
    ):
        _container_defaults(container)


SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_ALPHANUM = "bcdfghjklmnpqrstvwxz2456789"


def service_account_token(obj: dict[str, Any], lister: Lister) -> None:
    """Add the ServiceAccount admission's token volume, as the apiserver does.

    Unless the pod (or, when the pod does not say, its ServiceAccount) sets
    ``automountServiceAccountToken: false``: a projected volume
    ``kube-api-access-<5 chars>`` (the token, ``ca.crt`` from
    ``kube-root-ca.crt``, the namespace) mounted read-only at
    ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container
    that mounts nothing there already.
    """
    spec = obj["spec"]
    namespace = obj["metadata"].get("namespace")
    wanted = spec.get("automountServiceAccountToken")
    if wanted is None:
        account = next(
            (
                sa
                for sa in lister("serviceaccounts")
                if sa["metadata"].get("namespace") == namespace
                and sa["metadata"]["name"] == spec.get("serviceAccountName")
            ),
            {},
        )
        wanted = account.get("automountServiceAccountToken")
    if wanted is False:
        return
    name = "kube-api-access-" + "".join(secrets.choice(_ALPHANUM) for _ in range(5))
    spec.setdefault("volumes", []).append(
        {
            "name": name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {
                        "serviceAccountToken": {
                            "expirationSeconds": 3607,
                            "path": "token",
                        }
                    },
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in list(spec.get("containers") or []) + list(
        spec.get("initContainers") or []
    ):
        mounts = container.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == SA_MOUNT_PATH for m in mounts):
            mounts.append({"name": name, "mountPath": SA_MOUNT_PATH, "readOnly": True})


def default_pod(obj: dict[str, Any], lister: Lister) -> None:
    """Fill pod defaults in place (the object is a fresh copy owned by the store)."""
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    service_account_token(obj, lister)
    tolerations = spec.setdefault("tolerations", [])
    keys = {
        t.get("key") for t in tolerations if t.get("effect") in (None, "", "NoExecute")
    }
    for tol in _NOT_READY_TOLERATIONS:
        if tol["key"] not in keys:
            tolerations.append(dict(tol))
    _priority(spec, list(lister("priorityclasses")), obj["metadata"]["name"])
    obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def default_pvc(obj: dict[str, Any], lister: Lister) -> None:
    """Fill PVC defaults: volumeMode, default StorageClass, Pending status."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    if "storageClassName" not in spec:
        for sc in lister("storageclasses"):
            annotations = sc["metadata"].get("annotations") or {}
            if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
                spec["storageClassName"] = sc["metadata"]["name"]
                break
    obj["status"] = {"phase": "Pending"}


def default_pv(obj: dict[str, Any]) -> None:
    """Fill PV defaults (status is kept when the creator set one)."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {"phase": "Pending"})


SERVICE_CIDR = "127.100.0.0/16"
"""The default service range (``ClusterConfig.service_cidr``)."""


def allocate_ip(cidr: str, taken: set[str]) -> str:
    """Return the lowest free address of ``cidr`` (not its first nor last).

    Raises:
        ApiError: 422 when the range is full.
    """
    network = ipaddress.IPv4Network(cidr)
    for address in network.hosts():
        ip = str(address)
        if ip not in taken and not ip.endswith((".0", ".255")):
            return ip
    raise ApiError(
        422,
        "Invalid",
        f"Service is invalid: spec.clusterIPs: Internal error: failed to allocate "
        f"a serviceIP: range is full ({cidr})",
    )


def default_service(
    obj: dict[str, Any], taken: set[str], cidr: str = SERVICE_CIDR
) -> None:
    """Fill service defaults and allocate a cluster IP from ``cidr``.

    A headless Service (``clusterIP: None``) gets none. NodePort and
    LoadBalancer Services keep their ``nodePort``s as given (devcluster's
    nodes are this machine: nothing listens on node ports).
    """
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    if spec.get("clusterIP") in (None, ""):
        spec["clusterIP"] = allocate_ip(cidr, taken)
    spec["clusterIPs"] = [spec["clusterIP"]]
    obj["status"] = {"loadBalancer": {}}


def default_workload(plural: str, obj: dict[str, Any]) -> None:
    """Fill apps/v1 Deployment and ReplicaSet defaults in place (idempotent).

    ``replicas`` 1, ``revisionHistoryLimit`` 10, the pod template's spec
    defaults, and for Deployments the RollingUpdate strategy (25% surge, 25%
    unavailable) and ``progressDeadlineSeconds`` 600, as ``SetDefaults_Deployment``.
    Every write is defaulted, so an update leaving a default out changes nothing.
    """
    if plural not in ("deployments", "replicasets"):
        return
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])
    if plural == "replicasets":
        return
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")


def default_secret(obj: dict[str, Any]) -> None:
    """Fold ``stringData`` into base64 ``data`` and default the type."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def default_event(obj: dict[str, Any]) -> None:
    """Give events every timestamp key (null when unset), as the apiserver renders."""
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        obj.setdefault(key, None)
    obj.setdefault("count", 1)
    obj.setdefault("type", "Normal")
    obj.setdefault("source", {})
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


def apply_defaults(
    plural: str,
    obj: dict[str, Any],
    lister: Lister,
    service_ips: set[str],
    service_cidr: str = SERVICE_CIDR,
) -> None:
    """Apply the create-time defaulting and admission of one kind, in place.

    Raises:
        ApiError: an admission plugin rejected the object (e.g. unknown PriorityClass).
    """
    if plural == "pods":
        default_pod(obj, lister)
    elif plural == "persistentvolumeclaims":
        default_pvc(obj, lister)
    elif plural == "persistentvolumes":
        default_pv(obj)
    elif plural == "services":
        default_service(obj, service_ips, service_cidr)
    elif plural == "secrets":
        default_secret(obj)
    elif plural in ("deployments", "replicasets"):
        default_workload(plural, obj)
    elif plural == "events":
        default_event(obj)
    elif plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
    elif plural == "priorityclasses":
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif plural == "storageclasses":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
