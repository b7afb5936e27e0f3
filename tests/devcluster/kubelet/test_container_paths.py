"""Containers see their volumes at their mount paths, and the API as in a cluster.

Kubernetes behaviour followed: volume mounts (read-only ones too, and
``subPath`` files) appear at ``mountPath`` in the container; the ServiceAccount
admission plugin gives every pod a ``kube-api-access-*`` projected volume at
``/var/run/secrets/kubernetes.io/serviceaccount`` unless
``automountServiceAccountToken`` is false, and an in-cluster client
(``load_incluster_config``) reaches the API with it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.kubelet.mountns import Bind, overlays
from tests.devcluster.cluster_support import ended, wait_for

pytestmark = pytest.mark.integration

NS = "jhub"


@pytest.fixture
async def paths_cluster(fast_config: ClusterConfig) -> AsyncIterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("container paths need root (mount namespaces); run as root")
    config = dataclasses.replace(fast_config, container_paths=True)
    async with Cluster(config, controllers=True) as cluster:
        yield cluster


def pod(name: str, code: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "python:3.11"}
    container.update(spec.pop("container", {}))
    container["command"] = [sys.executable, "-c", code]
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": "core",
            "restartPolicy": "Never",
            "containers": [container],
            **spec,
        },
    }


def test_overlays_only_where_a_mount_point_is_missing(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "srv").mkdir()
    binds = (
        Bind("/x", str(tmp_path / "etc" / "app" / "conf")),
        Bind("/x", str(tmp_path / "etc" / "app" / "conf" / "inner")),  # inside it
        Bind("/x", str(tmp_path / "srv")),  # exists: bound as it is
        Bind("/x", str(tmp_path / "srv" / "sub")),  # made inside the bind above
        Bind("/x", "/no-such-top-level-dir/data"),  # would need / itself
    )
    assert overlays(binds) == [str(tmp_path / "etc")]


async def test_volumes_appear_at_their_mount_paths(paths_cluster: Cluster) -> None:
    assert paths_cluster.store is not None
    paths_cluster.store.create(
        "configmaps",
        NS,
        {"metadata": {"name": "cfg"}, "data": {"a.py": "X = 1\n", "v.yaml": "k: v\n"}},
    )
    code = (
        "import os\n"
        "print(open('/usr/local/etc/devcluster-test/v.yaml').read().strip())\n"
        "print(open('/usr/local/etc/devcluster-test/single.py').read().strip())\n"
        "open('/srv/devcluster-test/x', 'w').write('y')\n"
        "print(sorted(os.listdir('/srv/devcluster-test')))\n"
        "try:\n"
        "    open('/usr/local/etc/devcluster-test/new', 'w')\n"
        "except OSError as exc:\n"
        "    print('read-only', exc.errno)\n"
    )
    spec = pod(
        "paths",
        code,
        volumes=[
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "data", "emptyDir": {}},
        ],
        container={
            "volumeMounts": [
                {
                    "name": "cfg",
                    "mountPath": "/usr/local/etc/devcluster-test",
                    "readOnly": True,
                },
                {
                    "name": "cfg",
                    "mountPath": "/usr/local/etc/devcluster-test/single.py",
                    "subPath": "a.py",
                },
                {"name": "data", "mountPath": "/srv/devcluster-test"},
            ]
        },
    )
    paths_cluster.store.create("pods", NS, spec)
    phase, out = await ended(paths_cluster, NS, "paths")
    assert phase == "Succeeded", out
    assert out.split("\n")[:4] == ["k: v", "X = 1", "['x']", "read-only 30"]
    # this machine's own directories did not change
    assert not Path("/usr/local/etc/devcluster-test").exists()
    assert not Path("/srv/devcluster-test").exists()


async def test_in_cluster_clients_reach_the_api_with_the_mounted_token(
    paths_cluster: Cluster,
) -> None:
    assert paths_cluster.store is not None
    code = (
        "import asyncio\n"
        "from kubernetes_asyncio import client, config\n"
        "async def main():\n"
        "    config.load_incluster_config()\n"
        "    async with client.ApiClient() as api:\n"
        "        pods = await client.CoreV1Api(api).list_namespaced_pod('jhub')\n"
        "        print(sorted(p.metadata.name for p in pods.items))\n"
        "asyncio.run(main())\n"
    )
    created = paths_cluster.store.create("pods", NS, pod("client", code))
    (volume,) = created["spec"]["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert created["spec"]["containers"][0]["volumeMounts"] == [
        {
            "name": volume["name"],
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }
    ]
    phase, out = await ended(paths_cluster, NS, "client")
    assert phase == "Succeeded", out
    assert out.strip() == "['client']"


async def test_no_token_where_automount_is_off(paths_cluster: Cluster) -> None:
    assert paths_cluster.store is not None
    store = paths_cluster.store
    quiet = store.create(
        "pods", NS, pod("quiet", "pass", automountServiceAccountToken=False)
    )
    assert "volumes" not in quiet["spec"] or not quiet["spec"]["volumes"]
    store.create(
        "serviceaccounts",
        NS,
        {"metadata": {"name": "tokenless"}, "automountServiceAccountToken": False},
    )
    by_account = store.create(
        "pods", NS, pod("by-account", "pass", serviceAccountName="tokenless")
    )
    assert not by_account["spec"].get("volumes")


async def test_exec_sees_what_the_container_wrote_outside_its_volumes(
    paths_cluster: Cluster,
) -> None:
    """A command run in the container (here its exec readiness probe; kubectl
    exec alike) shares the container's filesystem: it reads a file the main
    process wrote where no volume is (the suite's hub unpacks its
    certificates into /etc/jupyterhub), which this machine never sees."""
    assert paths_cluster.store is not None
    store = paths_cluster.store
    # the volume's mount point makes /etc/devcluster-test an overlay in the
    # container (the hub's /etc/jupyterhub is one for its config file)
    written = "/etc/devcluster-test/ready"
    code = f"import time; open({written!r}, 'w').write('yes'); time.sleep(60)"
    probe = f"assert open({written!r}).read() == 'yes'"
    spec = pod(
        "writer",
        code,
        volumes=[{"name": "data", "emptyDir": {}}],
        container={
            "volumeMounts": [{"name": "data", "mountPath": "/etc/devcluster-test/v"}],
            "readinessProbe": {
                "exec": {"command": [sys.executable, "-c", probe]},
                "periodSeconds": 1,
            },
        },
    )
    store.create("pods", NS, spec)

    def ready() -> bool:
        found = store.get_or_none("pods", NS, "writer") or {}
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    await wait_for(ready, 15)
    assert not Path(written).parent.exists()
