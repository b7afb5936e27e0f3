"""One pod's life on the kubelet: sandbox, init containers, containers, teardown.

``PodWorker.run_pod`` is the body of the per-pod task of the ``Kubelet``, in the
order the kubelet follows: the sandbox (pod IP, volumes, image pulls), the init
containers one after the other, each to completion (a sidecar, an init
container with ``restartPolicy: Always``, only until it has started), then every
app container at once, each a ``ContainerRunner`` (``devcluster.kubelet.runner``).
It reports the pod's status through ``/status`` after every change: phase (as
the kubelet's getPhase computes it), conditions, init and app container
statuses. When the pod is deleted (or its node goes) every container stops at
once within the grace period (preStop hooks, SIGTERM, SIGKILL; sidecars after the
app containers), the pod reports a terminal phase (Succeeded or Failed, as the
kubelet does since Kubernetes 1.27) and only then does the kubelet delete it with
grace 0, which lets the store drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from devcluster.errors import ApiError
from devcluster.kubelet import containers, podspec, status
from devcluster.kubelet.images import Images, PullError
from devcluster.kubelet.ips import IpPool
from devcluster.kubelet.pod import PodRun, PodSandbox
from devcluster.kubelet.runner import ContainerRunner
from devcluster.kubelet.runtime import Runtime
from devcluster.kubelet.volumes import volumes
from devcluster.timestamps import now_iso

log = logging.getLogger(__name__)

_SYNC_S = 1.0
"""Simulated seconds from a pod's containers stopping to its final delete (the
kubelet's status sync), so a deleted pod stays visible with its deletionTimestamp."""


def _ports(pod: dict[str, Any]) -> list[int]:
    """Every port the pod's containers listen on (declared, or in their env)."""
    found: list[int] = []
    for container in pod["spec"].get("containers") or []:
        declared = [int(p["containerPort"]) for p in container.get("ports") or []]
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
        fallback = podspec.readiness_port(container, env)
        found += declared or ([fallback] if fallback else [])
    return found


class PodWorker:
    """Runs one pod: brings it up, keeps its containers running, tears it down.

    Args:
        run: the pod's run record (and its calls to the store).
        runtime: the kubelet's runtime (settings, cgroups, identity).
        ips: the pod IP pool.
        images: the images pulled per node.
        volume_root: where PersistentVolume directories live.
    """

    def __init__(
        self,
        run: PodRun,
        runtime: Runtime,
        ips: IpPool,
        images: Images,
        volume_root: Path,
    ) -> None:
        self.run = run
        self.runtime = runtime
        self.config = runtime.config
        self.ips = ips
        self.images = images
        self.volume_root = volume_root
        self.init: list[ContainerRunner] = []
        self.apps: list[ContainerRunner] = []
        self.sandbox: PodSandbox | None = None
        self._pod: dict[str, Any] = {}
        self._base: dict[str, Any] = {}
        self._sent: dict[str, Any] = {}
        self._terminal = False
        self._tearing_down = False
        self.max_grace: float | None = None
        """Real seconds the teardown may take at most (the kubelet is stopping)."""

    # ------------------------------------------------------------ queries
    def runners(self) -> list[ContainerRunner]:
        """Every container of the pod, init containers first."""
        return self.init + self.apps

    def runner(self, name: str) -> ContainerRunner | None:
        """The runner of a container (app or init) by name."""
        for candidate in self.runners():
            if candidate.name == name:
                return candidate
        return None

    def pids(self) -> list[int]:
        """The PIDs of the pod's running processes."""
        return [pid for r in self.runners() for pid in r.pids()]

    # ------------------------------------------------------------- status
    def publish(self) -> None:
        """Report the pod's status (only when something changed)."""
        if not self._pod:
            return
        spec = self._pod["spec"]
        init = {r.name: r.status for r in self.init}
        apps = {r.name: r.status for r in self.apps}
        phase = status.pod_phase(spec, init, apps, self._terminal)
        done = {"Succeeded": "PodCompleted", "Failed": "PodFailed"}.get(phase, "")
        unready = [r.name for r in self.apps if not r.ready]
        uninitialized = [
            r.name
            for r in self.init
            if not (
                r.status.get("started")
                if r.kind == "sidecar"
                else "terminated" in (r.status.get("state") or {})
                and r.status["state"]["terminated"].get("exitCode") == 0
            )
        ]
        conditions = status.pod_conditions(
            not self._terminal, not unready and not done, unready, done, uninitialized
        )
        update: dict[str, Any] = {
            **self._base,
            "phase": phase,
            "conditions": status.keep_transitions(
                conditions, self._sent.get("conditions") or []
            ),
            "containerStatuses": [r.status for r in self.apps],
        }
        if self.init:
            update["initContainerStatuses"] = [r.status for r in self.init]
        if update != self._sent and not self._tearing_down:
            # the store copies what it merges, and runners replace (never
            # change) their status dicts: keeping ``update`` itself is safe
            self._sent = update
            self.run.set_status(update)

    # ------------------------------------------------------------ running
    async def run_pod(self) -> None:
        """Bring the pod up, keep it running, tear it down when it goes."""
        run = self.run
        pod = run.current()
        if pod is None:
            return
        self._pod = pod
        run.ip = self.ips.allocate(*_ports(pod))
        mode = containers.mode_of(pod, self.config.kubelet_mode)
        self._base = {
            "hostIP": run.host_ip(),
            "hostIPs": [{"ip": run.host_ip()}],
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": now_iso(),
        }
        sandbox = self.sandbox = PodSandbox(
            run, pod, {}, self.runtime, mode, self.publish
        )
        for c in pod["spec"].get("initContainers") or []:
            kind = "sidecar" if c.get("restartPolicy") == "Always" else "init"
            self.init.append(ContainerRunner(sandbox, c, kind, "PodInitializing"))
        waiting = "PodInitializing" if self.init else "ContainerCreating"
        self.apps = [
            ContainerRunner(sandbox, c, "app", waiting)
            for c in pod["spec"]["containers"]
        ]
        self.publish()
        try:
            dirs = await volumes(
                run, pod, self.volume_root, self.runtime.ca_pem, self.runtime.issuer
            )
        except OSError as exc:
            run.event(pod, "FailedMount", f"MountVolume.SetUp failed: {exc}", "Warning")
            dirs = None
            await run.terminate.wait()
        if dirs is None or not await self._pull(pod):
            return await self._teardown()
        sandbox.dirs = dirs
        sandbox.images = {
            str(c.get("image", "")): self.images.environment(str(c.get("image", "")))
            for c in [
                *pod["spec"]["containers"],
                *(pod["spec"].get("initContainers") or []),
            ]
        }
        run.pod_dir.mkdir(parents=True, exist_ok=True)
        if self.runtime.hosts is not None and mode == "run":
            run.hosts = self.runtime.hosts.write(
                run.uid, run.pod_dir / "etc-hosts", pod, run.ip
            )
        tasks: list[asyncio.Task[None]] = []
        try:
            if await self._initialize(tasks):
                tasks += [asyncio.ensure_future(r.run()) for r in self.apps]
                await self._wait(tasks)
        finally:
            await self._teardown(tasks)

    async def _pull(self, pod: dict[str, Any]) -> bool:
        """Pull the pod's images, backing off while one cannot be pulled.

        As the kubelet: the container waits in ``ErrImagePull``, then
        ``ImagePullBackOff`` (``BackOff`` Events) for 10 s doubling to 300 s
        (simulated) before the next try. False if the pod went away.
        """
        backoff = 10.0
        while True:
            outcome = await self.images.pull(self.run, pod)
            if not isinstance(outcome, PullError):
                return outcome
            runner = self.runner(outcome.container)
            if runner is None or self.sandbox is None:
                return False
            runner.set_waiting("ErrImagePull", outcome.message)
            if not await self.sandbox.sleep(1.0):  # the next sync backs off
                return False
            message = f'Back-off pulling image "{outcome.image}"'
            runner.event("BackOff", message)
            runner.event("Failed", "Error: ImagePullBackOff", "Warning")
            runner.set_waiting("ImagePullBackOff", message)
            if not await self.sandbox.sleep(backoff):
                return False
            backoff = min(backoff * 2, 300.0)

    async def _initialize(self, tasks: list[asyncio.Task[None]]) -> bool:
        """Run the init containers in order; False if the pod cannot go on."""
        for runner in self.init:
            if runner.kind == "sidecar":
                tasks.append(asyncio.ensure_future(runner.run()))
                started = asyncio.ensure_future(runner.has_started.wait())
                stop = asyncio.ensure_future(self.run.terminate.wait())
                await asyncio.wait({started, stop}, return_when=asyncio.FIRST_COMPLETED)
                started.cancel()
                stop.cancel()
                if self.run.terminate.is_set():
                    return False
                continue
            code = await runner.run_to_completion()
            if code is None:
                return False
            if code != 0:
                # restartPolicy Never: the pod has failed; it waits to be deleted
                self.publish()
                await self.run.terminate.wait()
                return False
        for runner in self.apps:
            runner.set_waiting("ContainerCreating")
        return True

    async def _wait(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait until the pod is deleted (its containers may all finish first)."""
        stop = asyncio.ensure_future(self.run.terminate.wait())
        apps = tasks[-len(self.apps) :]
        try:
            done: asyncio.Future[list[Any]] = asyncio.ensure_future(
                asyncio.gather(*apps, return_exceptions=True)
            )
            waits: list[asyncio.Future[Any]] = [stop, done]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not stop.done():
                for result in done.result():
                    if isinstance(result, Exception):
                        log.error(
                            "kubelet: a container of %s/%s failed",
                            self.run.namespace,
                            self.run.name,
                            exc_info=result,
                        )
                # every container has finished for good: a terminal phase
                self.publish()
                await stop
        finally:
            stop.cancel()

    async def _teardown(self, tasks: list[asyncio.Task[None]] | None = None) -> None:
        """Stop every container within the grace period, report, then delete the pod."""
        run = self.run
        for task in tasks or []:
            if not task.done():
                task.cancel()
        await asyncio.gather(*(tasks or []), return_exceptions=True)
        # one status at the end, not one per stopped container
        self._tearing_down = True
        grace = 0.0
        if self.sandbox is not None and run.current() is not None:
            # a pod already gone (force-deleted, or its node went) gets none
            grace = self.config.real(self.sandbox.grace())
        if self.max_grace is not None:
            grace = min(grace, self.max_grace)
        began = asyncio.get_running_loop().time()
        await asyncio.gather(*(r.stop(grace) for r in self.apps))
        left = grace - (asyncio.get_running_loop().time() - began)
        await asyncio.gather(
            *(r.stop(max(left, 0.0)) for r in self.init if r.kind == "sidecar")
        )
        await self.runtime.reap(run.uid)
        current = run.current()
        if current is None:
            return
        self._terminal = True
        self._tearing_down = False
        self.publish()
        if current["metadata"].get("deletionTimestamp"):
            await asyncio.sleep(self.config.real(_SYNC_S))
            with contextlib.suppress(ApiError):
                run.store.delete(
                    "pods", run.namespace, run.name, grace_period_seconds=0
                )
