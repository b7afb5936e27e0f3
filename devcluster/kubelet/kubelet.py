"""The kubelet: runs pods bound to nodes as local processes and reports their status.

One ``Kubelet`` serves every node of the cluster. It watches the store: a pod
with ``spec.nodeName`` set (by the scheduler) on an existing node gets a
``PodWorker`` (``devcluster.kubelet.worker``) that assigns it a pod IP (a
loopback address of its own), prepares its volumes, pulls its images, runs its
init containers and containers as processes and reports its status until it is
deleted. Nodes without a Ready condition are marked Ready (and lose the
not-ready taint); when a node vanishes its pods die with it and are
force-deleted. It also serves what the apiserver proxies to a kubelet:
``GET pods/{name}/log`` (``read_log``) and ``pods/{name}/exec``, ``attach`` and
``portforward`` (``stream``, see ``devcluster.kubelet.streaming``). A pod the
kubelet runs is removed from the store only by the kubelet's own final delete,
once its processes are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError
from devcluster.kubelet import logs, podbind, status, streaming
from devcluster.kubelet.hosts import HostsFiles
from devcluster.kubelet.images import Images
from devcluster.kubelet.ips import IpPool
from devcluster.kubelet.pod import PodRun
from devcluster.kubelet.runtime import Runtime
from devcluster.kubelet.worker import PodWorker
from devcluster.tokens import TokenIssuer

log = logging.getLogger(__name__)


class Kubelet:
    """One kubelet for every node of the cluster.

    Args:
        store: the cluster's objects.
        config: delays (scaled by ``time_factor``), mode and pod IP base.
        state_dir: where logs, pod directories and volume directories live.
        ca_pem: the cluster CA, which token volumes hold as ``ca.crt``.
        issuer: signs the tokens of token volumes (None: unsigned tokens).
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        state_dir: Path,
        ca_pem: str = "",
        issuer: TokenIssuer | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.state_dir = Path(state_dir)
        self.ips = IpPool(config.pod_ip_base)
        self.images = Images(config)
        self.runtime = Runtime(
            config,
            self.state_dir,
            hosts=HostsFiles(store),
            ca_pem=ca_pem,
            issuer=issuer,
        )
        self._hosts_pending = False
        self.runs: dict[str, PodRun] = {}
        self.workers: dict[str, PodWorker] = {}
        self._unsubscribe: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_name: dict[tuple[str, str], PodRun] = {}
        self._stopping = False

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Subscribe to the store and pick up nodes and pods already there.

        Raises:
            PodBindError: ``pod_binds`` is on and its library cannot be built.
        """
        if self.config.pod_binds:
            self.runtime.preload = str(podbind.build(podbind.CACHE))
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.store.subscribe(self._on_change)
        self.store.attach_kubelet(self._runs_pod)
        for node in self.store.list("nodes")[0]:
            self._on_change("ADDED", "nodes", node)
        for pod in self.store.list("pods")[0]:
            self._on_change("ADDED", "pods", pod)

    async def stop(self) -> None:
        """Stop every pod (2 s of grace at most), its processes and all tasks."""
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        for uid, run in list(self.runs.items()):
            worker = self.workers.get(uid)
            if worker is not None:
                worker.max_grace = 2.0
            run.terminate.set()
        tasks = [r.task for r in self.runs.values() if r.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.to_thread(self.runtime.close)

    def _runs_pod(self, pod: dict[str, Any]) -> bool:
        return not self._stopping and pod["metadata"]["uid"] in self.runs

    def pids(self) -> list[int]:
        """Return the PIDs of the pod processes now running."""
        return [pid for w in self.workers.values() for pid in w.pids()]

    def volume_dir(self, pv_name: str) -> Path:
        """Return the directory backing a PersistentVolume (created on first use)."""
        return self.state_dir / "volumes" / pv_name

    def pod_ip(self, namespace: str, name: str) -> str | None:
        """Return the IP of a pod this kubelet runs, or None."""
        run = self._by_name.get((namespace, name))
        return run.ip if run else None

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        """Return the worker of a pod this kubelet runs, or None."""
        run = self._by_name.get((namespace, name))
        return self.workers.get(run.uid) if run else None

    async def read_log(
        self, namespace: str, name: str, query: dict[str, str]
    ) -> AsyncIterator[bytes]:
        """Serve ``GET pods/{name}/log`` (see ``devcluster.kubelet.logs``).

        Raises:
            ApiError: 400 when that container (or its previous run) has no log.
        """
        pod = self.store.get("pods", namespace, name)
        q = logs.parse_query(name, pod, query)
        worker = self.worker(namespace, name)
        runner = worker.runner(q.container) if worker else None
        waiting = (
            ((runner.status.get("state") or {}).get("waiting") or {}) if runner else {}
        )
        return await logs.read_log(
            name,
            q,
            runner.logs if runner else None,
            runner.restarts if runner else 0,
            str(waiting.get("reason") or "ContainerCreating"),
        )

    async def stream(
        self, request: web.Request, subresource: str, namespace: str, name: str
    ) -> web.StreamResponse:
        """Serve ``pods/{name}/exec``, ``attach`` and ``portforward`` (websockets)."""
        pod = self.store.get("pods", namespace, name)
        return await streaming.serve(
            request, subresource, pod, self.worker(namespace, name)
        )

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
        elif kind == "services" or (kind == "endpointslices" and self._headless(obj)):
            if not self._hosts_pending:
                self._hosts_pending = True
                # coalesce a burst of changes into one rewrite
                self._loop.call_later(0.05, self._refresh_hosts)

    def _headless(self, slice_: dict[str, Any]) -> bool:
        """Tell whether an EndpointSlice belongs to a headless Service (names pods)."""
        meta = slice_.get("metadata") or {}
        name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if not name:
            return False
        service = self.store.get_or_none("services", meta.get("namespace"), name)
        return (service or {}).get("spec", {}).get("clusterIP") == "None"

    def _refresh_hosts(self) -> None:
        """Services changed: the pods' hosts files follow (as DNS answers do)."""
        self._hosts_pending = False
        if self.runtime.hosts is not None:
            self.runtime.hosts.refresh()

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
            self._by_name[(run.namespace, run.name)] = run
            self.workers[uid] = PodWorker(
                run, self.runtime, self.ips, self.images, self.state_dir / "volumes"
            )
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
        worker = self.workers[run.uid]
        try:
            await worker.run_pod()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s failed", run.namespace, run.name)
        finally:
            # whatever happened above, nothing of the pod may outlive it
            await self.runtime.reap(run.uid)
            self._cleanup(run)
            current = run.current()
            if current is not None and current["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(ApiError):
                    self.store.delete(
                        "pods", run.namespace, run.name, grace_period_seconds=0
                    )

    def _cleanup(self, run: PodRun) -> None:
        self.runs.pop(run.uid, None)
        self.workers.pop(run.uid, None)
        self.runtime.forget(run.uid)
        if self.runtime.hosts is not None:
            self.runtime.hosts.forget(run.uid)
        if self._by_name.get((run.namespace, run.name)) is run:
            del self._by_name[(run.namespace, run.name)]
        if run.ip:
            self.ips.release(run.ip)
        shutil.rmtree(run.pod_dir / "volumes", ignore_errors=True)
        shutil.rmtree(run.pod_dir / "rootfs", ignore_errors=True)
