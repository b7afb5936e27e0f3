"""A ``readOnly`` volume mount refuses writes in the pod, without container paths.

Kubernetes behaviour followed: a container whose ``volumeMounts`` entry says
``readOnly: true`` gets the volume read-only ("Read-only file system", errno
30) whatever its user, while another mount of the pod stays writable and
whoever provides the volume (here: this machine, outside the pod) still
writes to it. devcluster without ``container_paths`` runs the pod's process
on the volume's host directory (its paths rewritten); the directory is bound
read-only on itself in the process's mount namespace.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from tests.devcluster.cluster_support import ended

pytestmark = pytest.mark.integration

NS = "jhub"

CODE = """
import os
shared, scratch = os.environ["SHARED"], os.environ["SCRATCH"]
print(open(os.path.join(shared, "seed.txt")).read().strip())
try:
    open(os.path.join(shared, "new.txt"), "w").write("no")
except OSError as exc:
    print("refused", exc.errno, exc.strerror)
open(os.path.join(scratch, "out.txt"), "w").write("yes")
print("scratch written")
"""


@pytest.fixture
def volumes_cluster(full_cluster: Cluster) -> Cluster:
    """The cluster with its controllers (the PV controller binds the claim)."""
    if os.geteuid() != 0:
        pytest.fail("read-only mounts need root (mount namespaces); run as root")
    return full_cluster


def _static_claim(cluster: Cluster, name: str) -> None:
    """A PersistentVolume and its claim bound to it by name (as for EFS)."""
    assert cluster.store is not None
    cluster.store.create(
        "persistentvolumes",
        None,
        {
            "metadata": {"name": f"pv-{name}"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "csi": {"driver": "efs.csi.aws.com", "volumeHandle": "fs-1"},
            },
        },
    )
    cluster.store.create(
        "persistentvolumeclaims",
        NS,
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": f"pv-{name}",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )


async def test_a_read_only_mount_refuses_writes_in_the_pod(
    volumes_cluster: Cluster, fast_config: ClusterConfig
) -> None:
    cluster = volumes_cluster
    assert cluster.store is not None
    _static_claim(cluster, "shared")
    host = Path(str(fast_config.state_dir)) / "volumes" / "pv-shared"
    host.mkdir(parents=True, exist_ok=True)
    (host / "seed.txt").write_text("seeded\n")
    container = {
        "name": "main",
        "image": "python:3.11",
        "command": [sys.executable, "-c", CODE],
        "env": [
            {"name": "SHARED", "value": "/data/shared"},
            {"name": "SCRATCH", "value": "/data/scratch"},
        ],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 100},
        "volumeMounts": [
            {"name": "shared", "mountPath": "/data/shared", "readOnly": True},
            {"name": "scratch", "mountPath": "/data/scratch"},
        ],
    }
    cluster.store.create(
        "pods",
        NS,
        {
            "metadata": {"name": "reader"},
            "spec": {
                "nodeName": "core",
                "restartPolicy": "Never",
                "securityContext": {"fsGroup": 100},
                "containers": [container],
                "volumes": [
                    {
                        "name": "shared",
                        "persistentVolumeClaim": {
                            "claimName": "shared",
                            "readOnly": True,
                        },
                    },
                    {"name": "scratch", "emptyDir": {}},
                ],
            },
        },
    )
    phase, out = await ended(cluster, NS, "reader")
    assert phase == "Succeeded", out
    assert out.splitlines()[:3] == [
        "seeded",
        "refused 30 Read-only file system",
        "scratch written",
    ]
    assert not (host / "new.txt").exists()
    # outside the pod the directory stays writable (whoever provides the data)
    (host / "later.txt").write_text("updated")
    assert (host / "later.txt").read_text() == "updated"
