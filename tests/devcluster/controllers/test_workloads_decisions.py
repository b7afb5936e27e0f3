"""The Deployment and ReplicaSet controllers' decisions, as tables (no store).

Each test names the kube-controller-manager behaviour it follows
(``pkg/controller/deployment`` and ``pkg/controller/replicaset``, 1.33).
"""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.controllers.workloads import progress, rollouts
from devcluster.controllers.workloads import replicasets as rsd

NOW = 1_800_000_000.0


def _stamp(offset: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(NOW + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(
    replicas: int = 3,
    image: str = "web:1",
    strategy: dict[str, Any] | None = None,
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "jhub",
            "uid": "deploy-uid",
            "generation": generation,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy
            or {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
        "status": status or {},
    }


def replicaset(
    name: str,
    replicas: int,
    available: int = 0,
    revision: int = 1,
    created: float = 0.0,
    image: str = "web:1",
) -> dict[str, Any]:
    status: dict[str, Any] = {"replicas": replicas}
    if available:
        status["availableReplicas"] = available
        status["readyReplicas"] = available
    return {
        "metadata": {
            "name": name,
            "namespace": "jhub",
            "uid": f"{name}-uid",
            "creationTimestamp": _stamp(created),
            "annotations": {rollouts.REVISION: str(revision)},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": name}},
            "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
        "status": status,
    }


def pod(
    name: str,
    node: str = "core",
    phase: str = "Running",
    ready: bool = True,
    created: float = 0.0,
    ready_since: float = 0.0,
    owner: str | None = None,
    labels: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "jhub",
        "labels": labels if labels is not None else {"app": "web"},
        "creationTimestamp": _stamp(created),
    }
    if owner:
        meta["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}
        ]
    if deleting:
        meta["deletionTimestamp"] = _stamp(created + 1)
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": _stamp(ready_since),
                }
            ],
        },
    }


# ------------------------------------------------------------ ReplicaSets
def test_pod_from_template_is_named_after_the_replicaset_and_controlled_by_it():
    """New pods get ``generateName: <rs>-`` and a controller ownerReference."""
    rs = {**replicaset("web-abc", 1), "apiVersion": "apps/v1", "kind": "ReplicaSet"}
    made = rsd.pod_from_template(rs)
    assert made["metadata"]["generateName"] == "web-abc-"
    assert made["metadata"]["labels"] == {"app": "web", "pod-template-hash": "web-abc"}
    assert made["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-abc",
            "uid": "web-abc-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert made["spec"]["containers"][0]["image"] == "web:1"


def test_claim_adopts_orphans_releases_mismatches_and_leaves_others_alone():
    """ClaimPods: adopt matching orphans, release owned pods that stopped matching."""
    rs = {
        "metadata": {"uid": "rs"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
    }
    mine = pod("mine", owner="rs")
    orphan = pod("orphan")
    relabelled = pod("relabelled", owner="rs", labels={"app": "other"})
    someone_elses = pod("theirs", owner="other-rs")
    deleting_orphan = pod("going", deleting=True)
    owned, adopt, release = rsd.claim(
        rs, [mine, orphan, relabelled, someone_elses, deleting_orphan]
    )
    assert [p["metadata"]["name"] for p in owned] == ["mine"]
    assert [p["metadata"]["name"] for p in adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in release] == ["relabelled"]


def test_an_empty_selector_claims_nothing():
    """apps/v1 requires a selector; devcluster's controller never claims a namespace."""
    owned, adopt, _ = rsd.claim({"metadata": {"uid": "x"}, "spec": {}}, [pod("a")])
    assert owned == adopt == []


def test_deletion_order_follows_active_pods_ranking():
    """Unscheduled, then Pending, then not ready, then newest ready, go first."""
    pods = [
        pod("old-ready", created=0, ready_since=10),
        pod("new-ready", created=50, ready_since=60),
        pod("not-ready", ready=False, created=1),
        pod("pending", phase="Pending", ready=False, created=2),
        pod("unscheduled", node="", phase="Pending", ready=False, created=3),
    ]
    order = [p["metadata"]["name"] for p in rsd.deletion_order(pods)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]


def test_replicaset_status_counts_active_ready_and_available_pods():
    """Terminating and finished pods do not count; minReadySeconds gates available."""
    rs = replicaset("web-abc", 3)
    rs["metadata"]["generation"] = 2
    rs["spec"]["minReadySeconds"] = 30
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    pods = [
        pod("a", ready_since=-100),  # available
        pod("b", ready_since=-5),  # ready, not yet available
        pod("c", ready=False),
        pod("d", deleting=True),
        pod("e", phase="Succeeded", ready=False),
    ]
    assert rsd.replicaset_status(rs, pods, NOW) == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 2,
    }


def test_replicaset_status_leaves_zero_counts_out():
    """ReplicaSetStatus fields are omitempty (``replicas`` is not)."""
    assert rsd.replicaset_status(replicaset("web-abc", 0), [], NOW) == {"replicas": 0}


# ------------------------------------------------------------ Deployments
def test_template_hash_is_stable_safe_and_changes_with_the_template():
    """pod-template-hash: same template, same hash; collisionCount changes it."""
    template = deployment()["spec"]["template"]
    first = rollouts.template_hash(template)
    assert first == rollouts.template_hash(dict(template))
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789") and 0 < len(first) <= 10
    assert (
        rollouts.template_hash(deployment(image="web:2")["spec"]["template"]) != first
    )
    assert rollouts.template_hash(template, 1) != first


def test_new_replicaset_carries_the_hash_revision_and_owner():
    """The ReplicaSet of a template: ``<deploy>-<hash>``, hash in selector and pods."""
    rs = rollouts.new_replicaset(deployment(replicas=4), "h4sh", 3, 2)
    assert rs["metadata"]["name"] == "web-h4sh"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": "h4sh"}
    assert rs["spec"]["selector"] == {
        "matchLabels": {"app": "web", "pod-template-hash": "h4sh"}
    }
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "h4sh"
    assert rs["spec"]["replicas"] == 2
    annotations = rs["metadata"]["annotations"]
    assert annotations[rollouts.REVISION] == "3"
    assert annotations[rollouts.DESIRED_REPLICAS] == "4"
    assert annotations[rollouts.MAX_REPLICAS] == "5"  # 4 + 25% surge, rounded up
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"


def test_find_new_ignores_the_hash_label():
    """The new ReplicaSet is the one whose template equals the Deployment's."""
    old = replicaset("web-old", 1, image="web:0")
    current = replicaset("web-cur", 1, image="web:1")
    assert rollouts.find_new(deployment(), [old, current]) is current
    assert rollouts.find_new(deployment(image="web:9"), [old, current]) is None


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        pytest.param(4, "25%", "25%", (1, 1), id="quarter-of-four"),
        pytest.param(3, "25%", "25%", (1, 0), id="surge-rounds-up-unavailable-down"),
        pytest.param(10, 2, "10%", (2, 1), id="absolute-and-percent"),
        pytest.param(1, 0, 0, (0, 1), id="both-zero-loses-one"),
    ],
)
def test_fenceposts(replicas, surge, unavailable, expected):
    """ResolveFenceposts: surge rounds up, unavailable down, never both 0."""
    deploy = deployment(
        replicas=replicas,
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        },
    )
    assert rollouts.surge_and_unavailable(deploy) == expected


def test_recreate_has_no_fenceposts():
    deploy = deployment(strategy={"type": "Recreate"})
    assert rollouts.surge_and_unavailable(deploy) == (0, 0)
    assert rollouts.max_unavailable(deploy) == 0


@pytest.mark.parametrize(
    ("new", "olds", "expected"),
    [
        pytest.param(None, [], 3, id="first-rollout-up-to-replicas"),
        pytest.param(None, [3], 1, id="surge-of-one-above-three-old"),
        pytest.param(1, [3], 1, id="no-room-left"),
        pytest.param(1, [2], 2, id="room-after-old-shrank"),
        pytest.param(5, [], 3, id="too-many-scales-down"),
    ],
)
def test_rolling_new_replicas(new, olds, expected):
    """NewRSNewReplicas: grow the new ReplicaSet within replicas + maxSurge."""
    deploy = deployment(replicas=3)
    new_rs = replicaset("web-new", new) if new is not None else None
    old_rses = [replicaset(f"web-old{i}", n) for i, n in enumerate(olds)]
    assert rollouts.rolling_new_replicas(deploy, new_rs, old_rses) == expected


def test_rolling_old_replicas_keeps_minimum_availability():
    """reconcileOldReplicaSets: never below replicas - maxUnavailable available."""
    deploy = deployment(replicas=4)  # surge 1, unavailable 1: at least 3 available
    old = replicaset("web-old", 4, available=4)
    fresh = replicaset("web-new", 1, available=0, created=10)
    assert rollouts.rolling_old_replicas(deploy, fresh, [old]) == {"web-old": 3}
    ready = replicaset("web-new", 1, available=1, created=10)
    old_three = replicaset("web-old", 3, available=3)
    assert rollouts.rolling_old_replicas(deploy, ready, [old_three]) == {"web-old": 2}


def test_rolling_old_replicas_removes_unhealthy_pods_first():
    """cleanupUnhealthyReplicas: unavailable old pods go even before new ones are up."""
    deploy = deployment(
        replicas=4,
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 2},
        },
    )
    # Only 1 of 4 old pods is available: removing 2 broken ones costs nothing,
    # though availability (1) is already below the minimum (2).
    old = replicaset("web-old", 4, available=1)
    fresh = replicaset("web-new", 1, available=0, created=10)
    assert rollouts.rolling_old_replicas(deploy, fresh, [old]) == {"web-old": 2}


def test_history_beyond_the_limit_goes_oldest_first():
    """cleanupDeployment: empty old ReplicaSets beyond revisionHistoryLimit."""
    deploy = deployment()
    deploy["spec"]["revisionHistoryLimit"] = 1
    olds = [
        replicaset("web-r1", 0, revision=1),
        replicaset("web-r2", 0, revision=2),
        replicaset("web-r3", 0, revision=3),
    ]
    assert rollouts.history_to_delete(deploy, olds) == ["web-r1", "web-r2"]


def test_status_of_a_finished_rollout():
    """All replicas updated and available: Available and NewReplicaSetAvailable."""
    deploy = deployment(replicas=2, generation=3)
    new = replicaset("web-new", 2, available=2)
    status = progress.deployment_status(deploy, new, [], NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 3,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    available, progressing = status["conditions"]
    assert (available["type"], available["status"], available["reason"]) == (
        "Available",
        "True",
        "MinimumReplicasAvailable",
    )
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == 'ReplicaSet "web-new" has successfully progressed.'


def test_status_mid_rollout_counts_old_pods_and_unavailability():
    """Old pods count in replicas; Available needs replicas - maxUnavailable."""
    deploy = deployment(replicas=4)
    new = replicaset("web-new", 1, available=0)
    old = replicaset("web-old", 4, available=2)
    status = progress.deployment_status(deploy, new, [old], NOW, created_new=True)
    assert status["replicas"] == 5
    assert status["updatedReplicas"] == 1
    assert status["unavailableReplicas"] == 3
    available, progressing = status["conditions"]
    assert (available["status"], available["reason"]) == (
        "False",
        "MinimumReplicasUnavailable",
    )
    assert progressing["reason"] == "NewReplicaSetCreated"
    assert progressing["message"] == 'Created new replica set "web-new"'


def test_progress_deadline_exceeded_when_nothing_moved():
    """A rollout with no progress for progressDeadlineSeconds times out."""
    stale = {
        "type": "Progressing",
        "status": "True",
        "reason": "ReplicaSetUpdated",
        "message": "",
        "lastUpdateTime": _stamp(-700),
        "lastTransitionTime": _stamp(-700),
    }
    status_before = {
        "observedGeneration": 1,
        "replicas": 1,
        "updatedReplicas": 1,
        "unavailableReplicas": 1,
        "conditions": [stale],
    }
    deploy = deployment(replicas=1, status=status_before)
    new = replicaset("web-new", 1, available=0)
    status = progress.deployment_status(deploy, new, [], NOW)
    progressing = status["conditions"][1]
    assert (progressing["status"], progressing["reason"]) == (
        "False",
        "ProgressDeadlineExceeded",
    )
    assert progressing["message"] == 'ReplicaSet "web-new" has timed out progressing.'
