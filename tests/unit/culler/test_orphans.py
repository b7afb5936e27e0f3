"""Which server pods the sweep deletes: no server in the hub, past the grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wbspawner.culler.orphans import (
    deletion_line,
    known_servers,
    orphans,
    server_pod,
)

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def pod(
    user: str,
    server: str = "",
    age_s: float = 600,
    *,
    component: str = "singleuser-server",
    deleting: bool = False,
) -> dict[str, Any]:
    notes = {"hub.jupyter.org/username": user}
    if server:
        notes["hub.jupyter.org/servername"] = server
    meta: dict[str, Any] = {
        "name": f"jupyter-{user}" + (f"--{server}" if server else ""),
        "uid": f"uid-{user}-{server}",
        "labels": {"component": component},
        "annotations": notes,
        "creationTimestamp": (NOW - timedelta(seconds=age_s)).isoformat(),
    }
    if deleting:
        meta["deletionTimestamp"] = NOW.isoformat()
    return {
        "metadata": meta,
        "spec": {"nodeName": "ip-10-0-0-1"},
        "status": {"phase": "Running"},
    }


def test_only_old_pods_of_servers_the_hub_does_not_have_are_orphans() -> None:
    listed = [
        pod("alice"),  # running in the hub
        pod("bob"),  # the hub has no server: orphan
        pod("carol", age_s=30),  # young: a start after the hub was listed
        pod("dave", deleting=True),  # already going
        pod("erin", "gpu"),  # named server the hub has not: orphan
        pod("erin"),  # erin's default server is in the hub
        pod("frank", component="placeholder"),  # not a server pod
    ]
    users = [
        {"name": "alice", "servers": {"": {"ready": True}}},
        {"name": "erin", "servers": {"": {"pending": "spawn"}}},
    ]
    pods = [p for p in map(server_pod, listed) if p is not None]
    found = orphans(pods, known_servers(users), NOW, 300)
    assert [(o.pod.user, o.pod.server) for o in found] == [("bob", ""), ("erin", "gpu")]
    assert found[0].pod.uid == "uid-bob-" and round(found[0].age_s) == 600


def test_a_grace_of_zero_turns_the_sweep_off() -> None:
    pods = [p for p in map(server_pod, [pod("bob")]) if p is not None]
    assert orphans(pods, set(), NOW, 0) == []


def test_the_log_line_names_pod_user_node_age_and_record() -> None:
    pods = [p for p in map(server_pod, [pod("bob", age_s=412)]) if p is not None]
    (orphan,) = orphans(pods, set(), NOW, 300)
    line = deletion_line(orphan, "jhub", 17)
    assert line == (
        "deleted pod jhub/jupyter-bob (user bob, server default, Running on node "
        "ip-10-0-0-1, 412 s old): the hub has no server for it; accounting "
        "record 17 closed"
    )
    assert deletion_line(orphan, "jhub", None).endswith("no open record")
