"""One container of a pod: its runs, restarts, hooks, probes and status.

``ContainerRunner`` does for one container what the kubelet's pod worker and
container runtime do together: create the container (Events ``Created``,
``Started``; ``Failed`` with CreateContainerConfigError or StartError), run its
``postStart`` hook before it counts as running (``FailedPostStartHook`` kills
it), run its startup, readiness and liveness probes (``Unhealthy`` events; a
failed liveness or startup probe kills it and it restarts), and when its main
process exits, kill what is left of it and restart it by the restart policy
after the CrashLoopBackOff delay (10 s doubling to 300 s, simulated). ``stop``
is how it ends with its pod: ``preStop`` hook, SIGTERM, the rest of the grace
period, SIGKILL. Init containers run once to completion (``run_to_completion``);
an init container with ``restartPolicy: Always`` is a sidecar and runs like an
app container.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

from devcluster.kubelet import (
    containers,
    logs,
    mountns,
    probes,
    probing,
    process,
    status,
)
from devcluster.kubelet.cgroups import Cgroup
from devcluster.kubelet.containers import ContainerConfigError, Prepared
from devcluster.kubelet.identity import RunAsError
from devcluster.kubelet.pod import PodSandbox
from devcluster.timestamps import now_iso

_MAX_BACKOFF_S = 300.0
_LAST_RUN_WAIT_S = 10.0
"""Real seconds a restart waits for the last run's processes to exit."""


class ContainerRunner:
    """One container of a pod, from creation to its last exit.

    Args:
        sandbox: the pod's shared parts.
        spec: the container spec.
        kind: ``init``, ``sidecar`` or ``app``.
        waiting: why it waits before it first starts.
    """

    def __init__(
        self,
        sandbox: PodSandbox,
        spec: dict[str, Any],
        kind: str,
        waiting: str = "ContainerCreating",
    ) -> None:
        self.sandbox = sandbox
        self.spec = spec
        self.name: str = spec["name"]
        self.kind = kind
        self.restarts = 0
        self.last_state: dict[str, Any] = {}
        self.status = status.container_status(spec, status.waiting(waiting))
        self.prepared: Prepared | None = None
        self.started: process.Started | None = None
        self.cgroup: Cgroup | None = None
        self.logs = logs.ContainerLogs()
        self.has_started = asyncio.Event()
        self._kill_reason = ""
        self._kill = asyncio.Event()
        self._stopped = False
        self._pumps: list[asyncio.Future[None]] = []
        self._last_exit: dict[str, Any] = {}
        self._cid = ""
        self._started_at = ""

    # ----------------------------------------------------------- reporting
    @property
    def field_path(self) -> str:
        """The container's field path in Events."""
        section = "initContainers" if self.kind != "app" else "containers"
        return f"spec.{section}{{{self.name}}}"

    @property
    def ready(self) -> bool:
        """The container is ready (its readiness, as reported)."""
        return bool(self.status.get("ready"))

    def event(self, reason: str, message: str, type_: str = "Normal") -> None:
        """Record an Event about this container."""
        self.sandbox.run.event(
            self.sandbox.pod, reason, message, type_, self.field_path
        )

    def _set(
        self, state: dict[str, Any], ready: bool = False, started: bool | None = None
    ) -> None:
        self.status = status.container_status(
            self.spec,
            state,
            ready=ready,
            restart_count=self.restarts,
            container_id=self._cid,
            last_state=self.last_state,
            started=started,
        )
        self.sandbox.publish()

    def set_waiting(self, reason: str, message: str = "") -> None:
        """Report the container as waiting (e.g. ``ContainerCreating``)."""
        self._set(status.waiting(reason, message))

    @property
    def mount_ns(self) -> int | None:
        """The mount namespace of the running container (None: none runs)."""
        if self.started is None or self.started.proc.returncode is not None:
            return None
        return self.started.mount_ns

    def pids(self) -> list[int]:
        """The PIDs of the container's processes (its main process first)."""
        if self.started is None or self.started.proc.returncode is not None:
            return []
        found = [self.started.pid]
        if self.cgroup is not None:
            found += [p for p in self.cgroup.pids() if p != self.started.pid]
        return found

    @property
    def running(self) -> bool:
        """The container's main process runs (or, in sim mode, it counts as running)."""
        return "running" in (self.status.get("state") or {})

    # ------------------------------------------------------------- running
    async def run(self) -> None:
        """Run an app container or sidecar: restart it by policy until the pod stops."""
        while not self.sandbox.stopping:
            code = await self._run_once(with_probes=True)
            if code is None:
                return
            if not self._restarts(code):
                self.has_started.set()  # a finished sidecar holds nobody up
                return
            self._restart()
            if not await self._back_off():
                return

    async def run_to_completion(self) -> int | None:
        """Run an init container until it succeeds; its last exit code.

        None when the pod stops first.
        """
        while True:
            code = await self._run_once(with_probes=False)
            if code is None or code == 0:
                return code
            if (self.sandbox.pod["spec"].get("restartPolicy") or "Always") == "Never":
                return code
            self._restart()
            if not await self._back_off():
                return None

    def _restart(self) -> None:
        self.restarts += 1
        self.last_state = self._last_exit

    def _restarts(self, code: int) -> bool:
        if self.kind == "sidecar":
            return True
        policy = self.sandbox.pod["spec"].get("restartPolicy") or "Always"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _back_off(self) -> bool:
        """Wait the CrashLoopBackOff delay; False if the pod started stopping."""
        run = self.sandbox.run
        delay = min(10.0 * 2 ** (self.restarts - 1), _MAX_BACKOFF_S)
        pod_ref = f"{run.name}_{run.namespace}({run.uid})"
        self.set_waiting(
            "CrashLoopBackOff",
            f"back-off {int(delay)}s restarting failed container={self.name} "
            f"pod={pod_ref}",
        )
        self.event(
            "BackOff",
            f"Back-off restarting failed container {self.name} in pod {pod_ref}",
            "Warning",
        )
        return await self.sandbox.sleep(delay)

    def _terminated(self, code: int, reason: str = "", message: str = "") -> int:
        state = status.terminated(code, self._started_at, self._cid, reason, message)
        self._last_exit = state  # becomes lastState when the container restarts
        self._set(state)
        return code

    async def _prepare(self) -> Prepared | None:
        """Build the container's process; wait and retry while its config is wrong."""
        sb = self.sandbox
        while True:
            try:
                return containers.prepare(
                    sb.run,
                    sb.pod,
                    self.spec,
                    sb.dirs,
                    sb.runtime.current,
                    sb.runtime.can_switch,
                    sb.images.get(str(self.spec.get("image", ""))),
                    sb.runtime.preload,
                )
            except (ContainerConfigError, RunAsError) as exc:
                self.set_waiting("CreateContainerConfigError", str(exc))
                self.event("Failed", f"Error: {exc}", "Warning")
            # the kubelet retries on its next sync; nothing ran, so no restart
            if not await sb.sleep(10.0):
                return None

    def _check_identity(self, prepared: Prepared) -> None:
        """Warn when the user cannot be honoured; open the state dir when it is."""
        runtime = self.sandbox.runtime
        wanted = prepared.wanted
        if runtime.warn_identity(self.sandbox.run.uid, wanted):
            self.event(
                "DevclusterNotRoot",
                f"devcluster runs as uid {runtime.current.uid}, not root: container "
                f"{self.name} runs as uid {runtime.current.uid}, not as "
                f"{wanted.describe()}",
                "Warning",
            )
        if prepared.launch.identity is not None:
            runtime.open_state_dir()

    async def _run_once(self, with_probes: bool) -> int | None:
        """Create, start and watch the container once; its exit code.

        None when the pod stops first.
        """
        sb = self.sandbox
        self._kill.clear()
        self._kill_reason = ""
        self.prepared = await self._prepare()
        if self.prepared is None:
            return None
        self._check_identity(self.prepared)
        log = self.logs.begin(sb.run.pod_dir / "logs" / self.name, self.restarts)
        self._cid = f"containerd://{uuid.uuid4().hex}"
        self._started_at = now_iso()
        self.event("Created", f"Created container: {self.name}")
        if sb.mode == "sim" or not self.prepared.launch.argv:
            return await self._pretend(log)
        if self.started is not None:
            await self._wait_for_last_run(log)
        self.cgroup = sb.runtime.cgroups.container(sb.run.uid, self.name)
        launch = self.prepared.launch
        launch.cgroup = self.cgroup
        why = containers.unreachable(launch)
        try:
            if why:
                raise PermissionError(f"permission denied: {why}")
            self.started = await process.start(launch)
        except OSError as exc:
            message = (
                "failed to create containerd task: failed to create shim task: OCI "
                f"runtime create failed: exec: {launch.argv[0]!r}: {exc}"
            )
            log.note(f"devcluster: cannot start {launch.argv[0]!r}: {exc}")
            log.close()
            self.event("Failed", f"Error: {message}", "Warning")
            return self._terminated(128, "StartError", message)
        if launch.view is not None:
            # pinned now: a command run in the container later joins this
            # namespace, whatever becomes of the main process's PID
            with contextlib.suppress(OSError):  # it has ended already
                self.started.mount_ns = mountns.pin(self.started.pid)
        self._pumps = [
            asyncio.ensure_future(logs.pump(self.started.proc.stdout, log, "stdout")),
            asyncio.ensure_future(logs.pump(self.started.proc.stderr, log, "stderr")),
        ]
        code = await self._watch(with_probes)
        if self.started.proc.returncode is not None:
            # the main process is gone: so is the rest of the container
            process.kill_rest(self.started)
            await self._finish_log()
        return code

    async def _wait_for_last_run(self, log: logs.LogWriter) -> None:
        """Start a restart only once the last run's processes are gone.

        A process killed a moment ago holds the container's port until it has
        exited; the new run would fail to bind it (bounded: a process that
        will not go is killed once more, then the new run starts anyway).
        """
        last = self.started
        assert last is not None
        if await process.wait_gone(last, _LAST_RUN_WAIT_S):
            return
        process.kill_rest(last)
        if not await process.wait_gone(last, 1.0):
            log.note(
                "devcluster: processes of the container's last run are still "
                "there; starting the new run anyway"
            )

    async def _finish_log(self) -> None:
        """Let the output pumps drain, then close the run's log."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._pumps), 2.0)
        if self.logs.current is not None:
            self.logs.current.close()

    async def _pretend(self, log: logs.LogWriter) -> int | None:
        """Sim mode (or nothing to run): the container runs until the pod stops."""
        self.event("Started", f"Started container {self.name}")
        self._set(status.running(self._started_at), ready=True)
        self.has_started.set()
        if self.kind == "init":
            log.close()
            return self._terminated(0)
        await self.sandbox.run.terminate.wait()
        log.close()
        return None

    async def _watch(self, with_probes: bool) -> int | None:
        """Hooks, probes and the wait for the main process; its exit code."""
        assert self.started is not None and self.prepared is not None
        exited = asyncio.ensure_future(process.wait_exit(self.started))
        stop = asyncio.ensure_future(self.sandbox.run.terminate.wait())
        kill = asyncio.ensure_future(self._kill.wait())
        probe_task: asyncio.Future[None] | None = None
        try:
            # as the kubelet: Started, then the postStart hook, and only then
            # does the status say running
            self.event("Started", f"Started container {self.name}")
            hook = (self.spec.get("lifecycle") or {}).get("postStart")
            if hook and not await self._post_start(hook, exited, stop):
                await self._kill_process("FailedPostStartHook")
            elif not exited.done() and not stop.done():
                has_startup = with_probes and bool(self.spec.get("startupProbe"))
                self._set(status.running(self._started_at), started=not has_startup)
                if not has_startup:
                    self.has_started.set()
                if with_probes:
                    probe_task = asyncio.ensure_future(
                        probing.watch(self._probe_target())
                    )
            await asyncio.wait(
                {exited, stop, kill}, return_when=asyncio.FIRST_COMPLETED
            )
            if kill.done() and not exited.done() and not stop.done():
                await self._kill_process(self._kill_reason)
        finally:
            for task in (stop, kill, probe_task):
                if task is not None:
                    task.cancel()
        if self.sandbox.stopping and not exited.done():
            exited.cancel()
            return None
        code = await exited
        # killed by a signal: 128 + signal number, as a container runtime reports it
        code = 128 - code if code < 0 else code
        if self._stopped:
            return None
        return self._terminated(code)

    # --------------------------------------------------------------- hooks
    async def _post_start(
        self,
        hook: dict[str, Any],
        exited: asyncio.Future[Any],
        stop: asyncio.Future[Any],
    ) -> bool:
        """Run the postStart hook (the container is not running before it ends)."""
        task = asyncio.ensure_future(self._handle(hook, 30.0))
        await asyncio.wait({task, exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            return True  # the container ended (or the pod stops) first
        result = task.result()
        if result.ok:
            return True
        self.event(
            "FailedPostStartHook",
            f"PostStartHook failed: {result.message}".strip(),
            "Warning",
        )
        self._kill_reason = "FailedPostStartHook"
        return False

    async def _handle(
        self, handler: Mapping[str, Any], timeout: float
    ) -> probes.Result:
        sb = self.sandbox
        return await probes.handle(
            handler,
            self.spec,
            sb.run.ip,
            self.exec_command,
            timeout,
            sleep=lambda s: asyncio.sleep(sb.runtime.config.real(s)),
        )

    async def exec_command(
        self, command: list[str], timeout: float
    ) -> tuple[int, bytes]:
        """Run ``command`` in the container; (exit code, output).

        Raises:
            TimeoutError: it ran longer than ``timeout`` seconds (it is killed).
            OSError: it could not be started.
        """
        if self.prepared is None:
            raise OSError("the container is not running")
        launch = containers.exec_launch(
            self.prepared, command, self.cgroup, mount_ns=self.mount_ns
        )
        launch.stdin = False
        started = await process.start(launch)
        try:
            out, err = await asyncio.wait_for(started.proc.communicate(), timeout)
        except TimeoutError:
            process.kill_session(started)
            await process.wait_exit(started)
            raise
        return int(started.proc.returncode or 0), out + err

    # -------------------------------------------------------------- probes
    def _probe_target(self) -> probing.ProbeTarget:
        assert self.prepared is not None
        config = self.sandbox.runtime.config
        return probing.ProbeTarget(
            name=self.name,
            spec=self.spec,
            port=self.prepared.port,
            handle=self._handle,
            event=self.event,
            report=self._report,
            kill=self._request_kill,
            real=config.real,
            time_factor=config.time_factor,
        )

    def _report(self, ready: bool, started: bool) -> None:
        self._set(status.running(self._started_at), ready=ready, started=started)
        if started:
            self.has_started.set()

    def _request_kill(self, message: str) -> None:
        self.event("Killing", message)
        self._kill_reason = "probe"
        self._kill.set()

    async def _kill_process(self, reason: str) -> None:
        """Kill the container for a failed hook or probe (preStop, then the signals)."""
        override = None
        for key in ("livenessProbe", "startupProbe"):
            value = (self.spec.get(key) or {}).get("terminationGracePeriodSeconds")
            if reason == "probe" and value is not None:
                override = float(value)
        grace = override if override is not None else self.sandbox.grace()
        await self._terminate_process(self.sandbox.runtime.config.real(grace))

    # ------------------------------------------------------------ stopping
    async def stop(self, real_grace: float) -> None:
        """Stop the container with its pod: preStop hook, SIGTERM, grace, SIGKILL.

        Args:
            real_grace: the grace period in real seconds.
        """
        self._stopped = True
        started = self.started
        alive = started is not None and started.proc.returncode is None
        if alive:
            self.event("Killing", f"Stopping container {self.name}")
            await self._terminate_process(real_grace)
            assert started is not None
            code = started.proc.returncode or 0
            self._terminated(128 - code if code < 0 else code)
        elif self.running:
            # sim mode: nothing to kill; it stops as a process would, cleanly
            self.event("Killing", f"Stopping container {self.name}")
            self._terminated(0)
        await self._finish_log()

    async def _terminate_process(self, real_grace: float) -> None:
        started = self.started
        if started is None:
            return
        began = time.monotonic()
        hook = (self.spec.get("lifecycle") or {}).get("preStop")
        if hook and started.proc.returncode is None:
            task = asyncio.ensure_future(self._handle(hook, max(real_grace, 0.1)))
            exited = asyncio.ensure_future(process.wait_exit(started))
            await asyncio.wait(
                {task, exited}, timeout=real_grace, return_when=asyncio.FIRST_COMPLETED
            )
            exited.cancel()
            if task.done() and not task.result().ok:
                self.event(
                    "FailedPreStopHook",
                    f"PreStopHook failed: {task.result().message}".strip(),
                    "Warning",
                )
            task.cancel()
        left = real_grace - (time.monotonic() - began)
        await process.stop(started, left)
