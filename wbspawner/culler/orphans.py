"""Which user-server pods run without a server in the hub: the sweep's decision.

A start that failed, or a stop whose delete was not answered, can leave a
server's pod behind: it runs (and its node is billed) while the hub has no
server for it, so nobody sees it and the idle culler, which works from the
hub's list, never stops it. This module decides which pods are such orphans,
from the server pods of the namespace (as KubeSpawner labels and annotates
them) and the servers the hub has running or starting:

- a pod is a user's server pod when it has KubeSpawner's component label and
  its user annotation (anything else in the namespace is not the sweep's);
- it is an orphan when the hub has no server, running or pending (starting,
  stopping), of that user and name, and it is older than the grace period
  (a start the hub made after it listed its servers is younger than that);
- a pod already being deleted is left to finish.

Pure: no I/O, the time is a parameter. The culler service lists, deletes,
closes the accounting and logs (:mod:`wbspawner.culler.app`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wbspawner.timestamps import parse_time

COMPONENT_LABEL = "component"
SERVER_COMPONENT = "singleuser-server"
"""KubeSpawner's ``component`` label of users' server pods."""
SERVER_PODS = f"{COMPONENT_LABEL}={SERVER_COMPONENT}"
"""The label selector of users' server pods."""
USER_ANNOTATION = "hub.jupyter.org/username"
SERVER_ANNOTATION = "hub.jupyter.org/servername"
"""KubeSpawner's annotations: the user's name and the server's, unescaped (no
server name: the default server)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerPod:
    """A user's server pod, as the sweep sees it."""

    name: str
    uid: str
    user: str
    server: str
    """The server's name (``""``: the default server)."""
    created: datetime | None
    phase: str
    node: str
    deleting: bool

    @property
    def key(self) -> tuple[str, str]:
        """``(user, server name)``, as the hub names the server."""
        return self.user, self.server


@dataclass(frozen=True, slots=True, kw_only=True)
class Orphan:
    """A server pod to delete, and why."""

    pod: ServerPod
    age_s: float


def server_pod(pod: Mapping[str, Any]) -> ServerPod | None:
    """Return a pod as a user's server pod; ``None`` when it is not one.

    Args:
        pod: a core/v1 Pod as JSON.

    Returns:
        The server pod (KubeSpawner's label and user annotation), else ``None``.
    """
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    user = notes.get(USER_ANNOTATION)
    if labels.get(COMPONENT_LABEL) != SERVER_COMPONENT or not user:
        return None
    return ServerPod(
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        user=str(user),
        server=str(notes.get(SERVER_ANNOTATION) or ""),
        created=parse_time(meta.get("creationTimestamp")),
        phase=str((pod.get("status") or {}).get("phase") or ""),
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def known_servers(users: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Return ``(user, server name)`` of every server in the hub's user models.

    Args:
        users: the hub's user models (``GET /users?state=active``: servers
            running, starting or stopping).

    Returns:
        The servers' keys.
    """
    found: set[tuple[str, str]] = set()
    for user in users:
        for name in user.get("servers") or {}:
            found.add((str(user.get("name") or ""), str(name)))
    return found


def orphans(
    pods: Iterable[ServerPod],
    known: Collection[tuple[str, str]],
    now: datetime,
    grace_s: float,
) -> list[Orphan]:
    """Return the server pods to delete: no server in the hub, past the grace.

    Args:
        pods: the namespace's server pods.
        known: the servers the hub has running or pending (listed *before*
            the pods, so that a server started in between has a young pod).
        now: the current time (aware).
        grace_s: how old a pod must be; ``<= 0``: no pod is an orphan.

    Returns:
        The orphans, oldest first.
    """
    if grace_s <= 0:
        return []
    found = []
    for pod in pods:
        if pod.deleting or pod.key in known or pod.created is None:
            continue
        age = (now - pod.created).total_seconds()
        if age >= grace_s:
            found.append(Orphan(pod=pod, age_s=age))
    return sorted(found, key=lambda o: -o.age_s)


def deletion_line(orphan: Orphan, namespace: str, record: int | None) -> str:
    """Return the one log line that says what was deleted and why.

    Args:
        orphan: the deleted pod.
        namespace: its namespace.
        record: the accounting record closed with it, if one was open.

    Returns:
        The line, e.g. ``deleted pod jhub/jupyter-bob (user bob, server
        default, Running on node ip-1, 412 s old): the hub has no server for
        it; accounting record 17 closed``.
    """
    pod = orphan.pod
    server = pod.server or "default"
    where = f"{pod.phase or 'no phase'} on node {pod.node}" if pod.node else pod.phase
    closed = f"accounting record {record} closed" if record else "no open record"
    return (
        f"deleted pod {namespace}/{pod.name} (user {pod.user}, server {server}, "
        f"{where or 'unscheduled'}, {orphan.age_s:.0f} s old): the hub has no "
        f"server for it; {closed}"
    )
