"""One pod the kubelet runs: its run record, and the pod's own calls to the store.

``PodRun`` is what the kubelet knows about a pod it runs (uid, node, pod IP,
process, container log files, the signal to stop) and how the kubelet reads and
reports that pod: its current object (None once this uid is gone), its status
(through the ``/status`` subresource) and its Events, from source ``kubelet`` on
the pod's node, worded like the real kubelet's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.errors import ApiError


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
    task: asyncio.Task[None] | None = None
    proc: asyncio.subprocess.Process | None = None
    terminate: asyncio.Event = field(default_factory=asyncio.Event)
    log_paths: dict[str, Path] = field(default_factory=dict)

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
