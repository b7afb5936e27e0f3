"""One pod's life on the kubelet: volumes, image pulls, process, readiness, exit.

``run_pod`` is the body of the per-pod task of ``devcluster.kubelet.kubelet.Kubelet``.
It reports every step through the pod's ``/status`` and Events worded like the
real kubelet's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.errors import ApiError
from devcluster.kubelet import containers as sandbox
from devcluster.kubelet import podspec
from devcluster.timestamps import now_iso

if TYPE_CHECKING:
    from devcluster.kubelet.kubelet import Kubelet, PodRun

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
                "imageID": podspec.container_status(c, {})["imageID"],
            }
        )
    return out


async def run_pod(kubelet: Kubelet, run: PodRun) -> None:
    """Bring one pod up, keep it running (with restarts) and tear it down."""
    pod = kubelet.pod_of(run)
    if pod is None:
        return
    first = pod["spec"]["containers"][0]
    plain = {e["name"]: str(e.get("value", "")) for e in first.get("env") or []}
    run.ip = kubelet.ips.allocate(podspec.readiness_port(first, plain))
    names = [c["name"] for c in pod["spec"]["containers"]]
    creating = [
        podspec.container_status(c, podspec.waiting("ContainerCreating"))
        for c in pod["spec"]["containers"]
    ]
    start_time = now_iso()
    kubelet.set_status(
        run,
        {
            "phase": "Pending",
            "hostIP": kubelet.host_ip(run.node),
            "hostIPs": [{"ip": kubelet.host_ip(run.node)}],
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": start_time,
            "conditions": podspec.pod_conditions(True, False, names),
            "containerStatuses": creating,
        },
    )
    dirs = await sandbox.volumes(kubelet, run, pod)
    if dirs is None or not await sandbox.pull(kubelet, run, pod):
        return await _terminate(kubelet, run, None)
    run.pod_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        run.log_paths[name] = run.pod_dir / f"{name}.log"
        run.log_paths[name].touch()
    restarts = 0
    last_state: dict[str, Any] = {}
    while True:
        pod = kubelet.pod_of(run) or pod
        outcome = await _one_run(kubelet, run, pod, dirs, restarts, last_state)
        if outcome is None:
            return await _terminate(kubelet, run, pod)
        exit_code, state = outcome
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and exit_code == 0):
            return await _finished(kubelet, run, pod, exit_code, state, restarts)
        restarts += 1
        last_state = state
        if not await _back_off(kubelet, run, pod, restarts, last_state):
            return await _terminate(kubelet, run, pod)


def _container_events(
    kubelet: Kubelet, run: PodRun, pod: dict[str, Any], reason: str, text: str
) -> None:
    """Emit one kubelet Event per container (``text`` gets the container name)."""
    for c in pod["spec"]["containers"]:
        kubelet.store.emit_event(
            pod,
            reason,
            text.format(c["name"]),
            "Normal",
            "kubelet",
            run.node,
            f"spec.containers{{{c['name']}}}",
        )


async def _one_run(
    kubelet: Kubelet,
    run: PodRun,
    pod: dict[str, Any],
    dirs: dict[str, Path],
    restarts: int,
    last_state: dict[str, Any],
) -> tuple[int, dict[str, Any]] | None:
    """Run the container once; (exit code, terminated state), or None when deleted."""
    first = pod["spec"]["containers"][0]
    names = [c["name"] for c in pod["spec"]["containers"]]
    _container_events(kubelet, run, pod, "Created", "Created container: {}")
    _argv, proc, port = await sandbox.spawn(kubelet, run, pod, dirs)
    run.proc = proc
    started_at = now_iso()
    cid = f"containerd://{uuid.uuid4().hex}"
    if port == -1:
        return 128, podspec.terminated(128, started_at, cid, "StartError")
    _container_events(kubelet, run, pod, "Started", "Started container {}")

    def report(ready: bool) -> None:
        status = podspec.container_status(
            first,
            podspec.running(started_at),
            ready=ready,
            restart_count=restarts,
            container_id=cid,
            last_state=last_state,
        )
        kubelet.set_status(
            run,
            {
                "phase": "Running",
                "conditions": podspec.pod_conditions(True, ready, names),
                "containerStatuses": _statuses(pod, status),
            },
        )

    report(False)
    exited = asyncio.ensure_future(proc.wait() if proc else asyncio.Event().wait())
    stop = asyncio.ensure_future(run.terminate.wait())
    try:
        if await _wait_ready(run, port, exited, stop):
            report(True)
        await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if run.terminate.is_set():
        exited.cancel()
        return None
    code = int(exited.result())
    code = 128 - code if code < 0 else code  # killed by a signal: 128 + signal number
    return code, podspec.terminated(code, started_at, cid)


async def _wait_ready(
    run: PodRun,
    port: int | None,
    exited: asyncio.Future[Any],
    stop: asyncio.Future[Any],
) -> bool:
    """Probe the port until it accepts TCP; False if the process ended first."""
    if port is None:
        return True
    interval = _POLL_S
    while not exited.done() and not stop.done():
        if await _probe(run.ip, port):
            return True
        await asyncio.wait({exited, stop}, timeout=interval)
        interval = min(interval * 1.5, 1.0)
    return False


async def _back_off(
    kubelet: Kubelet,
    run: PodRun,
    pod: dict[str, Any],
    restarts: int,
    last_state: dict[str, Any],
) -> bool:
    """Wait the CrashLoopBackOff delay; False if the pod was deleted meanwhile."""
    delay = min(10.0 * 2 ** (restarts - 1), _MAX_BACKOFF_S)
    first = pod["spec"]["containers"][0]
    name = first["name"]
    pod_ref = f"{run.name}_{run.namespace}({run.uid})"
    message = f"back-off {int(delay)}s restarting failed container={name} pod={pod_ref}"
    status = podspec.container_status(
        first,
        podspec.waiting("CrashLoopBackOff", message),
        restart_count=restarts,
        last_state=last_state,
    )
    names = [c["name"] for c in pod["spec"]["containers"]]
    kubelet.set_status(
        run,
        {
            "phase": "Running",
            "containerStatuses": _statuses(pod, status),
            "conditions": podspec.pod_conditions(True, False, names),
        },
    )
    kubelet.store.emit_event(
        pod,
        "BackOff",
        f"Back-off restarting failed container {name} in "
        f"pod {run.name}_{run.namespace}({run.uid})",
        "Warning",
        "kubelet",
        run.node,
        f"spec.containers{{{name}}}",
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.terminate.wait(), kubelet.config.real(delay))
    return not run.terminate.is_set()


async def _finished(
    kubelet: Kubelet,
    run: PodRun,
    pod: dict[str, Any],
    code: int,
    state: dict[str, Any],
    restarts: int,
) -> None:
    """Report a terminal phase, then wait for the pod to be deleted."""
    first = pod["spec"]["containers"][0]
    names = [c["name"] for c in pod["spec"]["containers"]]
    status = podspec.container_status(
        first,
        state,
        restart_count=restarts,
        container_id=state["terminated"]["containerID"],
    )
    done = "PodCompleted" if code == 0 else "PodFailed"
    kubelet.set_status(
        run,
        {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": podspec.pod_conditions(False, False, names, done),
            "containerStatuses": _statuses(pod, status),
        },
    )
    run.proc = None
    await run.terminate.wait()
    await _terminate(kubelet, run, pod)


async def _terminate(kubelet: Kubelet, run: PodRun, pod: dict[str, Any] | None) -> None:
    """Stop the process within the grace period, then let the store drop the pod."""
    current = kubelet.pod_of(run)
    grace = 0.0
    if current is not None:
        grace = float(current["metadata"].get("deletionGracePeriodSeconds") or 0)
        if run.proc is not None and run.proc.returncode is None:
            _container_events(kubelet, run, current, "Killing", "Stopping container {}")
    if run.proc is not None:
        await kubelet.kill(run.proc, kubelet.config.real(grace))
    if current is not None and current["metadata"].get("deletionTimestamp"):
        with contextlib.suppress(ApiError):
            kubelet.store.delete(
                "pods", run.namespace, run.name, grace_period_seconds=0
            )
