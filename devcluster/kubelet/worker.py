"""One pod's life on the kubelet: volumes, image pulls, process, readiness, exit.

``PodWorker.run_pod`` is the body of the per-pod task of the ``Kubelet``. It
reports every step through the pod's ``/status`` and Events worded like the real
kubelet's: ContainerCreating, then Running (Ready once the container port
accepts TCP on the pod IP), exit codes and restarts by ``restartPolicy``
(CrashLoopBackOff), a terminal phase, and on delete SIGTERM, the grace period,
SIGKILL, and a delete with grace 0 that lets the store drop the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

from devcluster.config import ClusterConfig
from devcluster.errors import ApiError
from devcluster.kubelet import containers, podspec, status
from devcluster.kubelet.images import Images
from devcluster.kubelet.ips import IpPool
from devcluster.kubelet.pod import PodRun
from devcluster.kubelet.volumes import volumes
from devcluster.timestamps import now_iso

_POLL_S = 0.05
_MAX_BACKOFF_S = 300.0


async def _probe(ip: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _statuses(pod: dict[str, Any], first: dict[str, Any]) -> list[dict[str, Any]]:
    """Statuses of all containers; the ones after the first copy its state."""
    out = [first]
    for c in pod["spec"]["containers"][1:]:
        out.append(
            {
                **first,
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": status.container_status(c, {})["imageID"],
            }
        )
    return out


class PodWorker:
    """Runs one pod: brings it up, keeps it running (with restarts), tears it down.

    Args:
        run: the pod's run record (and its calls to the store).
        config: delays (scaled by ``time_factor``) and the kubelet mode.
        ips: the pod IP pool.
        images: the images pulled per node.
        volume_root: where PersistentVolume directories live.
    """

    def __init__(
        self,
        run: PodRun,
        config: ClusterConfig,
        ips: IpPool,
        images: Images,
        volume_root: Path,
    ) -> None:
        self.run = run
        self.config = config
        self.ips = ips
        self.images = images
        self.volume_root = volume_root

    async def run_pod(self) -> None:
        """Bring the pod up, keep it running (with restarts) and tear it down."""
        run = self.run
        pod = run.current()
        if pod is None:
            return
        first = pod["spec"]["containers"][0]
        plain = {e["name"]: str(e.get("value", "")) for e in first.get("env") or []}
        run.ip = self.ips.allocate(podspec.readiness_port(first, plain))
        names = [c["name"] for c in pod["spec"]["containers"]]
        creating = [
            status.container_status(c, status.waiting("ContainerCreating"))
            for c in pod["spec"]["containers"]
        ]
        start_time = now_iso()
        run.set_status(
            {
                "phase": "Pending",
                "hostIP": run.host_ip(),
                "hostIPs": [{"ip": run.host_ip()}],
                "podIP": run.ip,
                "podIPs": [{"ip": run.ip}],
                "startTime": start_time,
                "conditions": status.pod_conditions(True, False, names),
                "containerStatuses": creating,
            }
        )
        dirs = await volumes(run, pod, self.volume_root)
        if dirs is None or not await self.images.pull(run, pod):
            return await self._terminate()
        run.pod_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            run.log_paths[name] = run.pod_dir / f"{name}.log"
            run.log_paths[name].touch()
        restarts = 0
        last_state: dict[str, Any] = {}
        while True:
            pod = run.current() or pod
            outcome = await self._one_run(pod, dirs, restarts, last_state)
            if outcome is None:
                return await self._terminate()
            exit_code, state = outcome
            policy = pod["spec"].get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and exit_code == 0):
                return await self._finished(pod, exit_code, state, restarts)
            restarts += 1
            last_state = state
            if not await self._back_off(pod, restarts, last_state):
                return await self._terminate()

    def _container_events(self, pod: dict[str, Any], reason: str, text: str) -> None:
        """Emit one kubelet Event per container (``text`` gets the container name)."""
        for c in pod["spec"]["containers"]:
            self.run.event(
                pod,
                reason,
                text.format(c["name"]),
                "Normal",
                f"spec.containers{{{c['name']}}}",
            )

    async def _one_run(
        self,
        pod: dict[str, Any],
        dirs: dict[str, Path],
        restarts: int,
        last_state: dict[str, Any],
    ) -> tuple[int, dict[str, Any]] | None:
        """Run the container once; (exit code, terminated state), or None if deleted."""
        run = self.run
        first = pod["spec"]["containers"][0]
        names = [c["name"] for c in pod["spec"]["containers"]]
        self._container_events(pod, "Created", "Created container: {}")
        _argv, proc, port = await containers.spawn(
            run, pod, dirs, self.config.kubelet_mode
        )
        run.proc = proc
        started_at = now_iso()
        cid = f"containerd://{uuid.uuid4().hex}"
        if port == -1:
            return 128, status.terminated(128, started_at, cid, "StartError")
        self._container_events(pod, "Started", "Started container {}")

        def report(ready: bool) -> None:
            container = status.container_status(
                first,
                status.running(started_at),
                ready=ready,
                restart_count=restarts,
                container_id=cid,
                last_state=last_state,
            )
            run.set_status(
                {
                    "phase": "Running",
                    "conditions": status.pod_conditions(True, ready, names),
                    "containerStatuses": _statuses(pod, container),
                }
            )

        report(False)
        exited = asyncio.ensure_future(proc.wait() if proc else asyncio.Event().wait())
        stop = asyncio.ensure_future(run.terminate.wait())
        try:
            if await self._wait_ready(port, exited, stop):
                report(True)
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if run.terminate.is_set():
            exited.cancel()
            return None
        code = int(exited.result())
        # killed by a signal: 128 + signal number, as a container runtime reports it
        code = 128 - code if code < 0 else code
        return code, status.terminated(code, started_at, cid)

    async def _wait_ready(
        self,
        port: int | None,
        exited: asyncio.Future[Any],
        stop: asyncio.Future[Any],
    ) -> bool:
        """Probe the port until it accepts TCP; False if the process ended first."""
        if port is None:
            return True
        interval = _POLL_S
        while not exited.done() and not stop.done():
            if await _probe(self.run.ip, port):
                return True
            await asyncio.wait({exited, stop}, timeout=interval)
            interval = min(interval * 1.5, 1.0)
        return False

    async def _back_off(
        self, pod: dict[str, Any], restarts: int, last_state: dict[str, Any]
    ) -> bool:
        """Wait the CrashLoopBackOff delay; False if the pod was deleted meanwhile."""
        run = self.run
        delay = min(10.0 * 2 ** (restarts - 1), _MAX_BACKOFF_S)
        first = pod["spec"]["containers"][0]
        name = first["name"]
        pod_ref = f"{run.name}_{run.namespace}({run.uid})"
        message = (
            f"back-off {int(delay)}s restarting failed container={name} pod={pod_ref}"
        )
        container = status.container_status(
            first,
            status.waiting("CrashLoopBackOff", message),
            restart_count=restarts,
            last_state=last_state,
        )
        names = [c["name"] for c in pod["spec"]["containers"]]
        run.set_status(
            {
                "phase": "Running",
                "containerStatuses": _statuses(pod, container),
                "conditions": status.pod_conditions(True, False, names),
            }
        )
        run.event(
            pod,
            "BackOff",
            f"Back-off restarting failed container {name} in "
            f"pod {run.name}_{run.namespace}({run.uid})",
            "Warning",
            f"spec.containers{{{name}}}",
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.terminate.wait(), self.config.real(delay))
        return not run.terminate.is_set()

    async def _finished(
        self,
        pod: dict[str, Any],
        code: int,
        state: dict[str, Any],
        restarts: int,
    ) -> None:
        """Report a terminal phase, then wait for the pod to be deleted."""
        run = self.run
        first = pod["spec"]["containers"][0]
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = status.container_status(
            first,
            state,
            restart_count=restarts,
            container_id=state["terminated"]["containerID"],
        )
        done = "PodCompleted" if code == 0 else "PodFailed"
        run.set_status(
            {
                "phase": "Succeeded" if code == 0 else "Failed",
                "conditions": status.pod_conditions(False, False, names, done),
                "containerStatuses": _statuses(pod, container),
            }
        )
        run.proc = None
        await run.terminate.wait()
        await self._terminate()

    async def _terminate(self) -> None:
        """Stop the process within the grace period, then let the store drop the pod."""
        run = self.run
        current = run.current()
        grace = 0.0
        if current is not None:
            grace = float(current["metadata"].get("deletionGracePeriodSeconds") or 0)
            if run.proc is not None and run.proc.returncode is None:
                self._container_events(current, "Killing", "Stopping container {}")
        if run.proc is not None:
            await containers.kill(run.proc, self.config.real(grace))
        if current is not None and current["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(ApiError):
                run.store.delete(
                    "pods", run.namespace, run.name, grace_period_seconds=0
                )
