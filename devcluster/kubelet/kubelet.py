"""The kubelet: runs pods bound to nodes as local processes and reports their status.

For a pod with ``spec.nodeName`` set (by the scheduler) on an existing node it
assigns a pod IP (a loopback address of its own), prepares the volumes
(a PVC-backed volume is ``<state_dir>/volumes/<pv name>`` and persists; an
emptyDir is per pod), pulls images (a delay, cached per node and image), then
starts the first container's ``command + args`` with the container's env
(see ``devcluster.kubelet.podspec`` for the path and address translation). The pod is
Ready once the container port accepts TCP on the pod IP. On delete it sends
SIGTERM to the process group, waits the grace period, sends SIGKILL and tells
the store the pod is gone. Exit codes, restarts (restartPolicy) and logs are
reported like a real kubelet. In ``sim`` mode, and for containers with neither
command nor args (e.g. ``pause`` placeholders), nothing runs: the container is
Ready after the delays. Nodes without a Ready condition are marked Ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError
from devcluster.kubelet import podspec
from devcluster.kubelet.worker import run_pod

log = logging.getLogger(__name__)

SIM_ANNOTATION = "devcluster.io/kubelet-mode"
"""Pod annotation overriding ``config.kubelet_mode`` for one pod (run|sim)."""


class IpPool:
    """Pod IPs from ``base`` + 1 upward; the lowest free one is reused first."""

    def __init__(self, base: str) -> None:
        self._base = ipaddress.IPv4Address(base)
        self._used: set[int] = set()

    def allocate(self, port: int | None = None) -> str:
        """Return a free address; with ``port``, one where that port can be bound.

        Other programs on this machine (another devcluster, a test server) may
        already listen on a loopback address of ours; such addresses are skipped.
        """
        n, skipped = 1, 0
        while n in self._used or (
            port and skipped < 256 and _port_taken(str(self._base + n), port)
        ):
            skipped += n not in self._used
            n += 1
        self._used.add(n)
        return str(self._base + n)

    def release(self, ip: str) -> None:
        """Return an address to the pool."""
        self._used.discard(int(ipaddress.IPv4Address(ip)) - int(self._base))


@dataclass
class PodRun:
    """What the kubelet knows about one pod it runs."""

    uid: str
    namespace: str
    name: str
    node: str
    pod_dir: Path
    ip: str = ""
    task: asyncio.Task[None] | None = None
    proc: asyncio.subprocess.Process | None = None
    terminate: asyncio.Event = field(default_factory=asyncio.Event)
    log_paths: dict[str, Path] = field(default_factory=dict)


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
        self.runs: dict[str, PodRun] = {}
        self._pulled: set[tuple[str, str]] = set()
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
        await asyncio.gather(*(self.kill(p, 2.0) for p in procs))
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

    def host_ip(self, node_name: str) -> str:
        """Return a node's InternalIP (127.0.0.1 when it has none)."""
        node = self.store.get_or_none("nodes", None, node_name) or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP" and address.get("address"):
                return str(address["address"])
        return "127.0.0.1"

    def pod_ip(self, namespace: str, name: str) -> str | None:
        """Return the IP of a pod this kubelet runs, or None."""
        run = self._logs.get((namespace, name))
        return run.ip if run else None

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
            run = PodRun(uid, meta["namespace"], meta["name"], node, pod_dir)
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
        status = node.get("status") or {}
        if any(c.get("type") == "Ready" for c in status.get("conditions") or []):
            return
        patch = podspec.node_ready_status(name, status)
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
    def mode_of(self, pod: dict[str, Any]) -> str:
        """Return ``run`` or ``sim`` for a pod (annotation, else the config)."""
        annotations = pod["metadata"].get("annotations") or {}
        return str(annotations.get(SIM_ANNOTATION) or self.config.kubelet_mode)

    def set_status(self, run: PodRun, status: dict[str, Any]) -> bool:
        """Merge ``status`` into the pod's status; False when the pod is gone."""
        try:
            self.store.patch(
                "pods",
                run.namespace,
                run.name,
                {"status": status},
                subresource="status",
            )
            return True
        except ApiError:
            return False

    def pod_of(self, run: PodRun) -> dict[str, Any] | None:
        """Return the current pod of a run, or None once it (this uid) is gone."""
        try:
            pod = self.store.get("pods", run.namespace, run.name)
        except ApiError:
            return None
        return pod if pod["metadata"]["uid"] == run.uid else None

    async def _run(self, run: PodRun) -> None:
        try:
            await run_pod(self, run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s failed", run.namespace, run.name)
        finally:
            if run.proc is not None and run.proc.returncode is None:
                await self.kill(run.proc, 0)
            self._cleanup(run)

    def _cleanup(self, run: PodRun) -> None:
        self.runs.pop(run.uid, None)
        if self._logs.get((run.namespace, run.name)) is run:
            del self._logs[(run.namespace, run.name)]
        if run.ip:
            self.ips.release(run.ip)
        shutil.rmtree(run.pod_dir / "volumes", ignore_errors=True)

    async def kill(self, proc: asyncio.subprocess.Process, grace: float) -> None:
        """SIGTERM the process group, wait ``grace`` seconds, then SIGKILL it."""
        if proc.returncode is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            pass
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5.0)

    async def read_log(self, namespace: str, name: str, query: dict[str, str]) -> str:
        """Serve ``GET pods/{name}/log`` (``container``, ``tailLines``, ``limitBytes``).

        Raises:
            ApiError: 400 when the container has not started or is ambiguous.
        """
        pod = self.store.get("pods", namespace, name)
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = query.get("container") or ""
        if not container:
            if len(names) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified "
                    f"for pod {name}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiError(
                400, "BadRequest", f"container {container} is not valid for pod {name}"
            )
        run = self._logs.get((namespace, name))
        path = run.log_paths.get(container) if run else None
        if path is None or not path.exists():
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is '
                "waiting to start: ContainerCreating",
            )
        data = await asyncio.to_thread(path.read_bytes)
        text = data.decode(errors="replace")
        tail = query.get("tailLines")
        if tail not in (None, ""):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail) :]) if int(tail) > 0 else ""
        limit = query.get("limitBytes")
        if limit not in (None, ""):
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return text

    # ------------------------------------------------------------- helpers
    def base_env(self, run: PodRun, home: str) -> dict[str, str]:
        """Return the environment every pod process starts from."""
        path = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        )
        tmp = run.pod_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": path,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": home,
            "TMPDIR": str(tmp),
            "HOSTNAME": run.name,
            "DEVCLUSTER_POD_IP": run.ip,
            "PYTHONUNBUFFERED": "1",
        }

    def image_cached(self, node: str, image: str) -> bool:
        """Tell whether ``image`` was pulled on ``node`` (and remember it now)."""
        key = (node, image)
        if key in self._pulled:
            return True
        self._pulled.add(key)
        return False


def _port_taken(ip: str, port: int) -> bool:
    """Tell whether ``ip:port`` cannot be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return True
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
