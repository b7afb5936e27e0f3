"""One pod the kubelet runs: its run record, the pod's calls to the store, its sandbox.

``PodRun`` is what the kubelet knows about a pod it runs (uid, node, pod IP, the
signal to stop) and how the kubelet reads and reports that pod: its current
object (None once this uid is gone), its status (through the ``/status``
subresource) and its Events, from source ``kubelet`` on the pod's node, worded
like the real kubelet's. ``PodSandbox`` is what the pod's containers share once
it is up: its volumes, its mode (run or sim), the runtime and how to report.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.errors import ApiError
from devcluster.kubelet.runtime import Runtime


@dataclass
class PodRun:
    """What the kubelet knows about one pod it runs."""

    store: Store
    uid: str
    namespace: str
    name: str
    node: str
    pod_dir: Path
    ip: str = ""
    hosts: Path | None = None
    """The pod's ``/etc/hosts`` (``devcluster.kubelet.hosts``), once written."""
    task: asyncio.Task[None] | None = None
    terminate: asyncio.Event = field(default_factory=asyncio.Event)

    def current(self) -> dict[str, Any] | None:
        """Return the pod now, or None once it (this uid) is gone."""
        try:
            pod = self.store.get("pods", self.namespace, self.name)
        except ApiError:
            return None
        return pod if pod["metadata"]["uid"] == self.uid else None

    def set_status(self, status: dict[str, Any]) -> bool:
        """Merge ``status`` into the pod's status; False when the pod is gone."""
        try:
            self.store.patch(
                "pods",
                self.namespace,
                self.name,
                {"status": status},
                subresource="status",
            )
            return True
        except ApiError:
            return False

    def host_ip(self) -> str:
        """Return the InternalIP of the pod's node (127.0.0.1 when it has none)."""
        node = self.store.get_or_none("nodes", None, self.node) or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP" and address.get("address"):
                return str(address["address"])
        return "127.0.0.1"

    def event(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        type_: str = "Normal",
        field_path: str = "",
    ) -> None:
        """Record an Event about ``pod`` from the kubelet of its node."""
        self.store.emit_event(
            pod, reason, message, type_, "kubelet", self.node, field_path
        )


Publish = Callable[[], None]


class PodSandbox:
    """What the containers of one pod share: the pod, its volumes, its mode.

    Args:
        run: the pod's run record.
        pod: the pod as it was when it started.
        dirs: the host directory of every pod volume.
        runtime: the kubelet's runtime.
        mode: ``run`` or ``sim``.
        publish: reports the pod's status after a container changed.
    """

    def __init__(
        self,
        run: PodRun,
        pod: dict[str, Any],
        dirs: dict[str, Any],
        runtime: Runtime,
        mode: str,
        publish: Publish,
    ) -> None:
        self.run = run
        self.pod = pod
        self.dirs = dirs
        self.runtime = runtime
        self.mode = mode
        self.publish = publish
        self.images: dict[str, Any] = {}
        """Image → its local environment (``ImageEnvironment``), once pulled."""

    @property
    def stopping(self) -> bool:
        """The pod is being deleted (or its node went)."""
        return self.run.terminate.is_set()

    def grace(self) -> float:
        """The pod's termination grace period (simulated seconds)."""
        current = self.run.current() or self.pod
        meta_grace = current["metadata"].get("deletionGracePeriodSeconds")
        if meta_grace is not None:
            return float(meta_grace)
        return float(current["spec"].get("terminationGracePeriodSeconds", 30))

    async def sleep(self, simulated: float) -> bool:
        """Sleep ``simulated`` seconds; False if the pod started stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self.run.terminate.wait(), self.runtime.config.real(simulated)
            )
        return not self.stopping
