"""Cold starts as the warmer reads them from pods and nodes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.unit.warmer.clock_support import NOW, A
from tests.unit.warmer.test_observer import node, pod, stamp
from wbspawner.warmer.observer import Observer, ObserveSettings
from wbspawner.warmer.waits import wait_samples


def at(seconds_ago: float) -> str:
    return stamp(seconds_ago / 60)


def on_new_node(
    name: str,
    *,
    role: str = "user",
    created: float = 60,
    node_created: float = 45,
    scheduled: float | None = 40,
    ready: float | None = 30,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pod created ``created`` s ago on a node registered ``node_created`` s ago."""
    raw_node = node(f"node-{name}")
    raw_node["metadata"]["creationTimestamp"] = at(node_created)
    raw_pod = pod(name, role=role, node_name=f"node-{name}", phase="Running")
    raw_pod["metadata"]["creationTimestamp"] = at(created)
    conditions = []
    if scheduled is not None:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastTransitionTime": at(scheduled),
            }
        )
    if ready is not None:
        conditions.append(
            {"type": "Ready", "status": "True", "lastTransitionTime": at(ready)}
        )
    else:
        conditions.append({"type": "Ready", "status": "False"})
    raw_pod["status"]["conditions"] = conditions
    return raw_pod, raw_node


def test_a_user_pod_on_a_new_node_is_a_cold_start() -> None:
    raw_pod, raw_node = on_new_node("u1", created=60, scheduled=40, ready=30)
    (found,) = wait_samples([raw_pod], [raw_node], NOW)
    assert (found.pool, found.zone, found.uid) == ("mem64", A, "uid-u1")
    assert (found.boot_s, found.start_s) == (20, 10)
    assert found.at == NOW - timedelta(seconds=40)


def test_a_placeholder_shows_the_boot_only() -> None:
    raw_pod, raw_node = on_new_node("p1", role="placeholder", ready=None)
    (found,) = wait_samples([raw_pod], [raw_node], NOW)
    assert (found.boot_s, found.start_s) == (20, None)


def test_no_sample_from_a_warm_node_or_an_unfinished_start() -> None:
    warm = on_new_node("w", created=60, node_created=600)  # the node was there
    unready = on_new_node("r", ready=None)  # a user pod not Ready yet
    unbound = on_new_node("s", scheduled=None)
    pods = [warm[0], unready[0], unbound[0]]
    assert wait_samples(pods, [warm[1], unready[1], unbound[1]], NOW) == []


def test_the_observer_keeps_samples_across_passes() -> None:
    settings = ObserveSettings(
        namespace="jhub", pool_zones={"mem64": (A,)}, region="us-east-1"
    )
    observer = Observer(kube=None, settings=settings)  # type: ignore[arg-type]
    first = on_new_node("u1")
    observer.ingest(NOW, [first[1]], [first[0]], {}, [])
    later = NOW + timedelta(minutes=5)
    snap = observer.ingest(later, [], [], {}, [])  # the pod is gone again
    assert [s.uid for s in snap.waits] == ["uid-u1"]
    assert observer.waits == snap.waits
