"""The kubelet: runs pods bound to nodes as local processes and reports their status.

One ``Kubelet`` serves every node of the cluster. It watches the store: a pod
with ``spec.nodeName`` set (by the scheduler) on an existing node gets a
``PodWorker`` (``devcluster.kubelet.worker``) that assigns it a pod IP (a
loopback address of its own), prepares its volumes, pulls its images, runs its
container as a process and reports its status until it is deleted. Nodes
without a Ready condition are marked Ready (and lose the not-ready taint); when
a node vanishes its pods die with it and are force-deleted. ``read_log`` serves
``GET pods/{name}/log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError
from devcluster.kubelet import logs, status
from devcluster.kubelet.containers import kill
from devcluster.kubelet.images import Images
from devcluster.kubelet.ips import IpPool
from devcluster.kubelet.pod import PodRun
from devcluster.kubelet.worker import PodWorker

log = logging.getLogger(__name__)


class Kubelet:
    """One kubelet for every node of the cluster.

    Args:
        store: the cluster's objects.
        config: delays (scaled by ``time_factor``), mode and pod IP base.
        state_dir: where logs, pod directories and volume directories live.
    """

    def __init__(self, store: Store, config: ClusterConfig, state_dir: Path) -> None:
        self.store = store
        self.config = config
        self.state_dir = Path(state_dir)
        self.ips = IpPool(config.pod_ip_base)
        self.images = Images(config)
        self.runs: dict[str, PodRun] = {}
        self._unsubscribe: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logs: dict[tuple[str, str], PodRun] = {}

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Subscribe to the store and pick up nodes and pods already there."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.store.subscribe(self._on_change)
        for node in self.store.list("nodes")[0]:
            self._on_change("ADDED", "nodes", node)
        for pod in self.store.list("pods")[0]:
            self._on_change("ADDED", "pods", pod)

    async def stop(self) -> None:
        """Kill every pod process (SIGTERM, then SIGKILL) and stop all tasks."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        procs = [run.proc for run in self.runs.values() if run.proc is not None]
        await asyncio.gather(*(kill(p, 2.0) for p in procs))
        for run in list(self.runs.values()):
            if run.task is not None:
                run.task.cancel()
        tasks = [r.task for r in self.runs.values() if r.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    def pids(self) -> list[int]:
        """Return the PIDs of the pod processes now running."""
        return [
            r.proc.pid
            for r in self.runs.values()
            if r.proc and r.proc.returncode is None
        ]

    def volume_dir(self, pv_name: str) -> Path:
        """Return the directory backing a PersistentVolume (created on first use)."""
        return self.state_dir / "volumes" / pv_name

    def pod_ip(self, namespace: str, name: str) -> str | None:
        """Return the IP of a pod this kubelet runs, or None."""
        run = self._logs.get((namespace, name))
        return run.ip if run else None

    async def read_log(self, namespace: str, name: str, query: dict[str, str]) -> str:
        """Serve ``GET pods/{name}/log`` (``container``, ``tailLines``, ``limitBytes``).

        Raises:
            ApiError: 400 when the container has not started or is ambiguous.
        """
        pod = self.store.get("pods", namespace, name)
        run = self._logs.get((namespace, name))
        return await logs.read_log(name, pod, run.log_paths if run else {}, query)

    # -------------------------------------------------------------- events
    def _on_change(self, event_type: str, kind: str, obj: dict[str, Any]) -> None:
        if self._loop is None:
            return
        if kind == "nodes" and event_type == "ADDED":
            self._loop.call_soon(self._node_added, obj["metadata"]["name"])
        elif kind == "nodes" and event_type == "DELETED":
            self._loop.call_soon(self._node_gone, obj["metadata"]["name"])
        elif kind == "pods":
            self._on_pod(event_type, obj)

    def _on_pod(self, event_type: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        run = self.runs.get(uid)
        if event_type == "DELETED":
            if run is not None:
                run.terminate.set()
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if run is None and node and not meta.get("deletionTimestamp"):
            if (pod.get("status") or {}).get("phase") not in ("Pending", None):
                return
            if not self.store.exists("nodes", None, node):
                return
            pod_dir = (
                self.state_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{uid}"
            )
            run = PodRun(
                self.store, uid, meta["namespace"], meta["name"], node, pod_dir
            )
            self.runs[uid] = run
            self._logs[(run.namespace, run.name)] = run
            run.task = asyncio.get_running_loop().create_task(self._run(run))
        elif run is not None and meta.get("deletionTimestamp"):
            run.terminate.set()

    def _node_added(self, name: str) -> None:
        """A node joined: mark it Ready if nobody did, then run its bound pods."""
        with contextlib.suppress(ApiError):
            self._mark_node_ready(self.store.get("nodes", None, name))
        for pod in self.store.list("pods", field_selector=f"spec.nodeName={name}")[0]:
            self._on_pod("ADDED", pod)

    def _mark_node_ready(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        node_status = node.get("status") or {}
        if any(c.get("type") == "Ready" for c in node_status.get("conditions") or []):
            return
        patch = status.node_ready_status(name, node_status)
        self.store.patch("nodes", None, name, {"status": patch}, subresource="status")
        taints = (node.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t.get("key") != "node.kubernetes.io/not-ready"]
        if len(kept) != len(taints):
            self.store.patch("nodes", None, name, {"spec": {"taints": kept or None}})

    def _node_gone(self, name: str) -> None:
        """A node vanished: its pods die with it and are force-deleted (pod GC)."""
        for run in list(self.runs.values()):
            if run.node == name:
                run.terminate.set()
                with contextlib.suppress(ApiError):
                    self.store.delete(
                        "pods", run.namespace, run.name, grace_period_seconds=0
                    )

    # ------------------------------------------------------------- running
    async def _run(self, run: PodRun) -> None:
        worker = PodWorker(
            run, self.config, self.ips, self.images, self.state_dir / "volumes"
        )
        try:
            await worker.run_pod()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s failed", run.namespace, run.name)
        finally:
            if run.proc is not None and run.proc.returncode is None:
                await kill(run.proc, 0)
            self._cleanup(run)

    def _cleanup(self, run: PodRun) -> None:
        self.runs.pop(run.uid, None)
        if self._logs.get((run.namespace, run.name)) is run:
            del self._logs[(run.namespace, run.name)]
        if run.ip:
            self.ips.release(run.ip)
        shutil.rmtree(run.pod_dir / "volumes", ignore_errors=True)
