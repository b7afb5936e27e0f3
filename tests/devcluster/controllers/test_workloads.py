"""Deployments and ReplicaSets on a running devcluster (API, kubelet, controllers).

Each test names the Kubernetes behaviour it checks. Pods name their node
(``core``): these clusters run no scheduler (it comes with moto).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devcluster.apiserver.store import Store
from devcluster.cluster import Cluster
from devcluster.controllers.workloads.replicasets import is_ready
from devcluster.controllers.workloads.rollouts import REVISION

pytestmark = pytest.mark.integration

NS = "jhub"


def web(
    image: str = "web:1",
    replicas: int = 2,
    strategy: dict[str, Any] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    labels = {"app": "web"}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "nodeName": "core",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "main",
                        "image": image,
                        "command": command or ["sleep", "600"],
                    }
                ],
            },
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": spec,
    }


def store_of(cluster: Cluster) -> Store:
    assert cluster.store is not None
    return cluster.store


def pods(store: Store, **labels: str) -> list[dict[str, Any]]:
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    return store.list("pods", NS, label_selector=selector)[0]


def rses(store: Store) -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["name"]: rs for rs in store.list("replicasets", NS)[0]}


def rolled_out(store: Store, image: str, replicas: int) -> Any:
    """The Deployment's status says the rollout of ``image`` is done."""

    def check() -> Any:
        deploy = store.get("deployments", NS, "web")
        status = deploy.get("status") or {}
        running = [
            p
            for p in pods(store, app="web")
            if not p["metadata"].get("deletionTimestamp")
        ]
        return (
            status.get("observedGeneration") == deploy["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas
            and status.get("replicas") == replicas
            and len(running) == replicas
            and all(p["spec"]["containers"][0]["image"] == image for p in running)
            and status
        )

    return check


def set_image(store: Store, image: str) -> None:
    """Change the image of deployment web's container, as ``kubectl set image`` does."""
    template = {"spec": {"containers": [{"name": "main", "image": image}]}}
    store.patch("deployments", NS, "web", {"spec": {"template": template}}, "strategic")


def reasons(store: Store, name: str) -> list[str]:
    return [
        e["reason"]
        for e in store.list("events", NS)[0]
        if e["involvedObject"]["name"] == name
    ]


async def test_deployment_runs_its_pods_through_a_replicaset(
    workload_cluster: Cluster, eventually: Any
) -> None:
    """Deployment → ReplicaSet ``web-<hash>`` → pods, all owned, Available."""
    store = store_of(workload_cluster)
    store.create("deployments", NS, web())
    status = await eventually(rolled_out(store, "web:1", 2))
    (rs,) = rses(store).values()
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    for pod in pods(store, app="web"):
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
        assert pod["metadata"]["labels"]["pod-template-hash"] == pod_hash
        assert pod["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
        assert pod["status"]["phase"] == "Running"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert rs["status"]["readyReplicas"] == 2
    assert "ScalingReplicaSet" in reasons(store, "web")
    assert reasons(store, rs["metadata"]["name"]).count("SuccessfulCreate") == 2


async def test_template_change_rolls_out_a_new_replicaset(
    workload_cluster: Cluster, eventually: Any
) -> None:
    """RollingUpdate: a new revision, the old ReplicaSet scaled to 0 and kept."""
    store = store_of(workload_cluster)
    store.create("deployments", NS, web(replicas=3))
    await eventually(rolled_out(store, "web:1", 3))
    set_image(store, "web:2")
    await eventually(rolled_out(store, "web:2", 3), 30)
    by_revision = {
        rs["metadata"]["annotations"][REVISION]: rs for rs in rses(store).values()
    }
    assert set(by_revision) == {"1", "2"}
    assert by_revision["1"]["spec"]["replicas"] == 0  # kept for a rollback
    assert by_revision["2"]["spec"]["replicas"] == 3
    messages = [
        e["message"]
        for e in store.list("events", NS)[0]
        if e["reason"] == "ScalingReplicaSet"
    ]
    old_name = by_revision["1"]["metadata"]["name"]
    assert any(
        m.startswith(f"Scaled down replica set {old_name} to ") for m in messages
    )


async def test_recreate_stops_every_old_pod_before_a_new_one_starts(
    workload_cluster: Cluster, eventually: Any
) -> None:
    """Recreate: old pods are gone before the new ReplicaSet gets any."""
    store = store_of(workload_cluster)
    store.create("deployments", NS, web(strategy={"type": "Recreate"}))
    await eventually(rolled_out(store, "web:1", 2))
    overlaps: list[str] = []

    def watch(event: str, kind: str, obj: dict[str, Any]) -> None:
        if kind != "pods" or event != "ADDED":
            return
        live_old = [
            p["metadata"]["name"]
            for p in pods(store, app="web")
            if p["spec"]["containers"][0]["image"] == "web:1"
        ]
        if live_old:
            overlaps.append(f"{obj['metadata']['name']} created beside {live_old}")

    unsubscribe = store.subscribe(watch)
    try:
        set_image(store, "web:2")
        await eventually(rolled_out(store, "web:2", 2), 30)
    finally:
        unsubscribe()
    assert overlaps == []


async def test_replicaset_adopts_orphans_and_deletes_the_surplus(
    workload_cluster: Cluster, eventually: Any
) -> None:
    """A matching orphan pod is adopted; above replicas, pods are deleted."""
    store = store_of(workload_cluster)
    orphan = {
        "metadata": {"name": "orphan", "labels": {"app": "solo", "tier": "x"}},
        "spec": {
            "nodeName": "core",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "solo:1", "command": ["sleep", "600"]}
            ],
        },
    }
    store.create("pods", NS, orphan)
    # Ready before the ReplicaSet's pods, in an earlier second (the API's
    # timestamps have whole seconds): it has been ready longer, which the
    # ReplicaSet's deletion ranking keeps, so the order is not left to a tie.
    await eventually(lambda: is_ready(store.get("pods", NS, "orphan")))
    await asyncio.sleep(1.1)
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "solo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "solo"}},
            "template": {
                "metadata": {"labels": {"app": "solo"}},
                "spec": orphan["spec"],
            },
        },
    }
    store.create("replicasets", NS, rs)

    def two_owned() -> bool:
        found = [
            p for p in pods(store, app="solo") if p["metadata"].get("ownerReferences")
        ]
        return len(found) == 2

    await eventually(two_owned)
    adopted = store.get("pods", NS, "orphan")
    assert adopted["metadata"]["ownerReferences"][0]["name"] == "solo"
    store.patch("replicasets", NS, "solo", {"spec": {"replicas": 1}})

    def one_left() -> Any:
        current = store.get("replicasets", NS, "solo")
        alive = [
            p
            for p in pods(store, app="solo")
            if not p["metadata"].get("deletionTimestamp")
        ]
        return len(alive) == 1 and (current.get("status") or {}).get("replicas") == 1

    await eventually(one_left)
    # The newest pod goes first among equally ready ones: the orphan stays.
    assert store.exists("pods", NS, "orphan")
    assert "SuccessfulDelete" in reasons(store, "solo")


async def test_deleting_a_deployment_collects_its_replicasets_and_pods(
    workload_cluster: Cluster, eventually: Any
) -> None:
    """Background propagation: the garbage collector removes the dependents."""
    store = store_of(workload_cluster)
    store.create("deployments", NS, web())
    await eventually(rolled_out(store, "web:1", 2))
    store.delete("deployments", NS, "web", propagation_policy="Background")
    await eventually(lambda: not rses(store) and not pods(store, app="web"), 20)


async def test_kubectl_rollout_status_and_undo(
    workload_cluster: Cluster, kubectl: Path, tmp_path: Path
) -> None:
    """``kubectl rollout status`` waits for the rollout; ``undo`` goes back."""
    kubeconfig = workload_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    store = store_of(workload_cluster)
    store.create("deployments", NS, web())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", "-n", NS, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = await asyncio.to_thread(
        run, "rollout", "status", "deployment/web", "--timeout=30s"
    )
    assert done.returncode == 0, done.stderr
    assert 'deployment "web" successfully rolled out' in done.stdout
    changed = await asyncio.to_thread(
        run, "set", "image", "deployment/web", "main=web:2"
    )
    assert changed.returncode == 0, changed.stderr
    done = await asyncio.to_thread(
        run, "rollout", "status", "deployment/web", "--timeout=30s"
    )
    assert done.returncode == 0, done.stderr
    assert 'deployment "web" successfully rolled out' in done.stdout
    undone = await asyncio.to_thread(run, "rollout", "undo", "deployment/web")
    assert undone.returncode == 0, undone.stderr
    done = await asyncio.to_thread(
        run, "rollout", "status", "deployment/web", "--timeout=30s"
    )
    assert done.returncode == 0, done.stderr
    image = store.get("deployments", NS, "web")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert image["image"] == "web:1"
    revisions = sorted(
        int(rs["metadata"]["annotations"][REVISION]) for rs in rses(store).values()
    )
    assert revisions == [2, 3]  # the first template is revision 3 again
    history = await asyncio.to_thread(run, "rollout", "history", "deployment/web")
    assert history.returncode == 0, history.stderr
    assert "REVISION" in history.stdout


async def test_kubectl_get_prints_workload_and_service_columns(
    workload_cluster: Cluster, kubectl: Path, tmp_path: Path, eventually: Any
) -> None:
    """The apiserver's printers: READY/UP-TO-DATE/AVAILABLE, CLUSTER-IP, PORT(S)."""
    kubeconfig = workload_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    store = store_of(workload_cluster)
    store.create("deployments", NS, web())
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    ip = store.create("services", NS, service)["spec"]["clusterIP"]
    await eventually(rolled_out(store, "web:1", 2))
    done = await asyncio.to_thread(
        subprocess.run,
        [str(kubectl), f"--kubeconfig={kubeconfig}", "-n", NS, "get", "deploy,rs,svc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] in lines
    assert any(row[:4] == ["deployment.apps/web", "2/2", "2", "2"] for row in lines)
    assert ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] in lines
    assert ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] in lines
    assert any(
        row[:5] == ["service/web", "ClusterIP", ip, "<none>", "80/TCP"] for row in lines
    )
