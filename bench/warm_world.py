"""A devcluster world for the warmer: pools in moto, homes, user pods.

Shared by ``tests/integration/test_warmer.py`` and ``bench/bench_warmer.py``:

- node groups, the StorageClass, PriorityClasses and the priority expander
  come from ``devcluster.demo.workbench`` (``create_node_groups``, ``prepare_cluster``);
- ``home_objects``: a user's home as a bound PV + PVC in a zone (a returning
  user);
- ``user_pod``: the pod KubeSpawner makes for a size (pool selector, the home's
  zone, tolerations, full-node request = limit, labels, the home claim), and
  ``new_home``: the claim it makes for a new user;
- ``z2jh_placeholder``: a zero-to-jupyterhub user placeholder (one shape);
- ``ScaledClock``: the warmer's clock on devcluster's simulated time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from wbspawner.model import POOL_LABEL, SIZE_LABEL, USER_LABEL, Profiles
from wbspawner.spawn.manifests import HOME_VOLUME, label_value, node_placement

ZONE_KEY = "topology.kubernetes.io/zone"


def home_objects(
    user: str, zone: str, namespace: str, storage: str, volume_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a returning user's home: a PV pinned to ``zone`` and its bound PVC.

    Args:
        user: hub user name.
        zone: the home's zone.
        namespace: the hub's namespace.
        storage: StorageClass name.
        volume_id: the EBS volume id (``vol-…``).

    Returns:
        (PersistentVolume, PersistentVolumeClaim).
    """
    claim = f"home-{user}"
    pv_name = f"pv-{user}"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "labels": {ZONE_KEY: zone}},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage,
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id},
            "claimRef": {"namespace": namespace, "name": claim},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": ZONE_KEY, "operator": "In", "values": [zone]}
                            ]
                        }
                    ]
                }
            },
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim,
            "namespace": namespace,
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage,
            "resources": {"requests": {"storage": "10Gi"}},
            "volumeName": pv_name,
        },
    }
    return pv, pvc


def user_pod(
    user: str,
    size_slug: str,
    profiles: Profiles,
    zone: str | None,
    namespace: str,
    command: Sequence[str] = ("sleep", "infinity"),
) -> dict[str, Any]:
    """Return the server pod KubeSpawner would make for a user and size.

    Args:
        user: hub user name.
        size_slug: the size picked.
        profiles: the profiles.
        zone: the home's zone (pinned), or ``None`` for a new user.
        namespace: the hub's namespace.
        command: the container command (devcluster runs it).

    Returns:
        A Pod.
    """
    size = profiles.size(size_slug)
    assert size is not None, size_slug
    pool = profiles.pool_of(size)
    placement = node_placement(pool, zone)
    request = pool.request.as_k8s()
    image = next((i.image for i in size.images if i.default), size.images[0].image)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-{user}",
            "namespace": namespace,
            "labels": {
                "component": "singleuser-server",
                "hub.jupyter.org/username": label_value(user),
                USER_LABEL: label_value(user),
                POOL_LABEL: pool.name,
                SIZE_LABEL: label_value(size.slug),
            },
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {
            "nodeSelector": placement["node_selector"],
            "tolerations": placement["tolerations"],
            "containers": [
                {
                    "name": "notebook",
                    "image": image,
                    "command": list(command),
                    "resources": {"requests": dict(request), "limits": dict(request)},
                    "volumeMounts": [
                        {"name": HOME_VOLUME, "mountPath": "/home/jovyan"}
                    ],
                }
            ],
            "volumes": [
                {
                    "name": HOME_VOLUME,
                    "persistentVolumeClaim": {"claimName": f"home-{user}"},
                }
            ],
        },
    }


class ScaledClock:
    """The warmer's clock on devcluster's scaled time (simulated seconds).

    ``now()`` starts at ``start`` and advances ``1 / time_factor`` simulated
    seconds per real second; API timestamps (real wall time) are mapped the same
    way, so ages and windows are in simulated seconds.
    """

    def __init__(self, start: datetime, time_factor: float) -> None:
        self.start = start
        self.factor = time_factor
        self.real0 = time.monotonic()
        self.wall0 = datetime.now(UTC)

    def sim_seconds(self) -> float:
        """Return simulated seconds since the start."""
        return (time.monotonic() - self.real0) / self.factor

    def now(self) -> datetime:
        """Return the simulated time."""
        return self.start + timedelta(seconds=self.sim_seconds())

    def from_api(self, stamp: datetime) -> datetime:
        """Return a real API timestamp on the simulated clock."""
        return self.start + (stamp - self.wall0) / self.factor


def new_home(user: str, profiles: Profiles, namespace: str) -> dict[str, Any]:
    """The claim KubeSpawner makes for a new user (bound where the pod lands)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": f"home-{user}",
            "namespace": namespace,
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": profiles.homes.storage_class,
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }


def z2jh_placeholder(
    profiles: Profiles, index: int, image: str, namespace: str
) -> dict[str, Any]:
    """A z2jh user-placeholder pod: the default size's shape, no zone, pause."""
    size = next(s for s in profiles.sizes if s.default)
    pool = profiles.pool_of(size)
    request = pool.request.as_k8s()
    placement = node_placement(pool)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"user-placeholder-{index}",
            "namespace": namespace,
            "labels": {"component": "user-placeholder"},
        },
        "spec": {
            "priorityClassName": "wbspawner-placeholder",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": placement["node_selector"],
            "tolerations": placement["tolerations"],
            "containers": [
                # z2jh's continuous image puller has the user image on every node
                {"name": "image-puller", "image": image},
                {
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": dict(request), "limits": dict(request)},
                },
            ],
        },
    }
