"""Store semantics without HTTP: defaults, updates, deletion, GC, watch, lists."""

from __future__ import annotations

import asyncio

import pytest

from devcluster.apiserver.store import Store
from devcluster.errors import ApiError
from tests.devcluster.cluster_support import pod_manifest, wait_for


def _cm(name: str, **meta: object) -> dict:
    return {"metadata": {"name": name, **meta}, "data": {"k": "v"}}


def test_create_fills_server_fields(store: Store):
    pod = store.create("pods", "jhub", pod_manifest("p1", ["true"], node=""))
    meta = pod["metadata"]
    assert meta["namespace"] == "jhub"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) == store.resource_version
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert pod["spec"]["priority"] == 0
    assert {t["key"] for t in pod["spec"]["tolerations"]} == {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    }


def test_generate_name_and_conflicts(store: Store):
    made = store.create("configmaps", "jhub", {"metadata": {"generateName": "cm-"}})
    assert (
        made["metadata"]["name"].startswith("cm-")
        and len(made["metadata"]["name"]) == 8
    )
    store.create("configmaps", "jhub", _cm("a"))
    with pytest.raises(ApiError, match='configmaps "a" already exists') as info:
        store.create("configmaps", "jhub", _cm("a"))
    assert info.value.code == 409 and info.value.reason == "AlreadyExists"


def test_namespace_must_exist(store: Store):
    with pytest.raises(ApiError, match='namespaces "nope" not found') as info:
        store.create("configmaps", "nope", _cm("a"))
    assert info.value.code == 404


def test_priority_class_admission(store: Store):
    store.create("priorityclasses", None, {"metadata": {"name": "low"}, "value": -10})
    pod = pod_manifest("p1", ["true"], node="", priorityClassName="low")
    assert store.create("pods", "jhub", pod)["spec"]["priority"] == -10
    bad = pod_manifest("p2", ["true"], node="", priorityClassName="missing")
    with pytest.raises(ApiError, match="no PriorityClass with name missing") as info:
        store.create("pods", "jhub", bad)
    assert info.value.code == 403


def test_replace_checks_resource_version(store: Store):
    first = store.create("configmaps", "jhub", _cm("a"))
    stale = dict(first, data={"k": "stale"})
    store.replace("configmaps", "jhub", "a", dict(first, data={"k": "new"}))
    with pytest.raises(ApiError, match="the object has been modified") as info:
        store.replace("configmaps", "jhub", "a", stale)
    assert info.value.code == 409 and info.value.reason == "Conflict"


def test_status_subresource_separation(store: Store):
    store.create("pods", "jhub", pod_manifest("p1", ["true"], node=""))
    store.patch("pods", "jhub", "p1", {"status": {"phase": "Running"}})
    assert store.get("pods", "jhub", "p1")["status"]["phase"] == "Pending"
    store.patch(
        "pods", "jhub", "p1", {"status": {"phase": "Running"}}, subresource="status"
    )
    store.patch(
        "pods", "jhub", "p1", {"metadata": {"labels": {"x": "y"}}}, subresource="status"
    )
    pod = store.get("pods", "jhub", "p1")
    assert pod["status"]["phase"] == "Running"
    assert "x" not in pod["metadata"]["labels"]


def test_generation_bumps_on_spec_change_only(store: Store):
    store.create("pods", "jhub", pod_manifest("p1", ["true"], node=""))
    store.patch("pods", "jhub", "p1", {"metadata": {"labels": {"x": "y"}}})
    assert store.get("pods", "jhub", "p1")["metadata"]["generation"] == 1
    store.patch("pods", "jhub", "p1", {"spec": {"activeDeadlineSeconds": 5}})
    assert store.get("pods", "jhub", "p1")["metadata"]["generation"] == 2


async def test_graceful_pod_delete(store: Store):
    store.create("pods", "jhub", pod_manifest("p1", ["true"], node="n1"))
    out = store.delete("pods", "jhub", "p1", grace_period_seconds=20)
    assert out["metadata"]["deletionTimestamp"]
    assert out["metadata"]["deletionGracePeriodSeconds"] == 20
    assert store.get("pods", "jhub", "p1")["metadata"]["deletionTimestamp"]
    # 20 simulated seconds at time_factor 0.01 = 0.2 s
    await wait_for(lambda: not store.exists("pods", "jhub", "p1"), timeout=3)


def test_unscheduled_pod_goes_at_once(store: Store):
    store.create("pods", "jhub", pod_manifest("p1", ["true"], node=""))
    store.delete("pods", "jhub", "p1", grace_period_seconds=30)
    assert not store.exists("pods", "jhub", "p1")


def test_finalizers_hold_deletion(store: Store):
    store.create("configmaps", "jhub", _cm("a", finalizers=["example.com/hold"]))
    out = store.delete("configmaps", "jhub", "a")
    assert out["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError, match="no new finalizers"):
        store.patch("configmaps", "jhub", "a", {"metadata": {"finalizers": ["a", "b"]}})
    store.patch("configmaps", "jhub", "a", {"metadata": {"finalizers": None}})
    assert not store.exists("configmaps", "jhub", "a")


def _owned(name: str, owner: dict) -> dict:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    return _cm(name, ownerReferences=[ref])


@pytest.mark.parametrize(
    ("policy", "dependent_survives"),
    [
        pytest.param(None, False, id="background"),
        pytest.param("Foreground", False, id="foreground"),
        pytest.param("Orphan", True, id="orphan"),
    ],
)
def test_owner_reference_gc(store: Store, policy, dependent_survives):
    owner = store.create("configmaps", "jhub", _cm("owner"))
    store.create("configmaps", "jhub", _owned("child", owner))
    store.create(
        "configmaps",
        "jhub",
        _owned("grandchild", store.get("configmaps", "jhub", "child")),
    )
    store.delete("configmaps", "jhub", "owner", propagation_policy=policy)
    assert store.exists("configmaps", "jhub", "child") is dependent_survives
    assert store.exists("configmaps", "jhub", "grandchild") is dependent_survives
    if dependent_survives:
        assert (
            store.get("configmaps", "jhub", "child")["metadata"]["ownerReferences"]
            == []
        )


def test_namespace_deletion_cascades(store: Store):
    store.create("namespaces", None, {"metadata": {"name": "tmp"}})
    store.create("configmaps", "tmp", _cm("a"))
    store.delete("namespaces", None, "tmp")
    assert not store.exists("configmaps", "tmp", "a")
    assert not store.exists("namespaces", None, "tmp")


def test_emit_event_aggregates(store: Store):
    pod = store.create("pods", "jhub", pod_manifest("p1", ["true"], node=""))
    first = store.emit_event(
        pod, "FailedScheduling", "0/1 nodes are available", "Warning"
    )
    again = store.emit_event(
        pod, "FailedScheduling", "0/1 nodes are available", "Warning"
    )
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["count"] == 2
    assert {"lastTimestamp", "eventTime", "firstTimestamp"} <= set(again)
    assert again["involvedObject"]["uid"] == pod["metadata"]["uid"]


def test_list_exact_resource_version_and_pages(store: Store):
    for n in range(5):
        store.create("configmaps", "jhub", _cm(f"c{n}"))
    _, rv = store.list("configmaps", "jhub")
    store.delete("configmaps", "jhub", "c0")
    store.patch("configmaps", "jhub", "c1", {"data": {"k": "changed"}})
    store.create("configmaps", "jhub", _cm("c9"))
    past = store.list_page(
        "configmaps", "jhub", resource_version=rv, resource_version_match="Exact"
    )
    assert [i["metadata"]["name"] for i in past.items] == [f"c{n}" for n in range(5)]
    assert past.items[1]["data"] == {"k": "v"}
    page = store.list_page("configmaps", "jhub", limit=2)
    names = [i["metadata"]["name"] for i in page.items]
    while page.continue_token:
        page = store.list_page(
            "configmaps", "jhub", limit=2, continue_token=page.continue_token
        )
        names += [i["metadata"]["name"] for i in page.items]
    assert names == ["c1", "c2", "c3", "c4", "c9"]


async def _collect(store: Store, n: int, **kw) -> list[tuple[str, str]]:
    out = []
    async for event_type, obj in store.watch("configmaps", "jhub", **kw):
        out.append((event_type, obj["metadata"]["name"]))
        if len(out) == n:
            break
    return out


async def test_watch_resume_and_selector_moves(store: Store):
    start = store.create("configmaps", "jhub", _cm("a", labels={"app": "x"}))
    rv = start["metadata"]["resourceVersion"]
    store.create("configmaps", "jhub", _cm("b", labels={"app": "y"}))
    store.patch("configmaps", "jhub", "b", {"metadata": {"labels": {"app": "x"}}})
    store.patch("configmaps", "jhub", "a", {"metadata": {"labels": {"app": "z"}}})
    store.delete("configmaps", "jhub", "b")
    got = await asyncio.wait_for(
        _collect(store, 3, resource_version=rv, label_selector="app=x"), 5
    )
    assert got == [("ADDED", "b"), ("DELETED", "a"), ("DELETED", "b")]


async def test_watch_too_old_resource_version_is_410(store: Store):
    first = store.create("configmaps", "jhub", _cm("a"))
    for n in range(60):  # history keeps 50 events per resource in this fixture
        store.patch("configmaps", "jhub", "a", {"data": {"n": str(n)}})
    with pytest.raises(ApiError, match="too old resource version") as info:
        store.open_watch("configmaps", "jhub", first["metadata"]["resourceVersion"])
    assert info.value.code == 410 and info.value.reason == "Expired"


async def test_subscribers_get_copies(store: Store):
    seen = []
    unsubscribe = store.subscribe(lambda t, k, o: seen.append((t, k, o)))
    store.create("configmaps", "jhub", _cm("a"))
    seen[0][2]["data"]["k"] = "mutated"
    assert store.get("configmaps", "jhub", "a")["data"] == {"k": "v"}
    unsubscribe()
    store.delete("configmaps", "jhub", "a")
    assert [(t, k) for t, k, _ in seen] == [("ADDED", "configmaps")]


def test_patch_resource_version_is_a_precondition(store: Store):
    made = store.create("configmaps", "jhub", _cm("a"))
    rv = made["metadata"]["resourceVersion"]
    store.patch(
        "configmaps",
        "jhub",
        "a",
        {"metadata": {"resourceVersion": rv}, "data": {"k": "1"}},
    )
    with pytest.raises(ApiError, match="the object has been modified") as info:
        store.patch(
            "configmaps",
            "jhub",
            "a",
            {"metadata": {"resourceVersion": rv}, "data": {"k": "2"}},
        )
    assert info.value.code == 409
    assert store.get("configmaps", "jhub", "a")["data"] == {"k": "1"}


# ------------------------------------------------------- pod spec updates
# Kubernetes behaviour followed: ValidatePodUpdate (pkg/apis/core/validation):
# a pod's spec is immutable except container images, activeDeadlineSeconds
# (set or lowered), added tolerations and terminationGracePeriodSeconds from
# negative to 1; nodeName is set through pods/binding only.


@pytest.mark.parametrize(
    ("patch", "allowed"),
    [
        pytest.param(
            {"spec": {"containers": [{"name": "main", "image": "python:3.12"}]}},
            True,
            id="image",
        ),
        pytest.param({"metadata": {"labels": {"x": "y"}}}, True, id="labels"),
        pytest.param({"spec": {"activeDeadlineSeconds": 60}}, True, id="deadline"),
        pytest.param(
            {"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}},
            False,  # a strategic merge of tolerations replaces the list: removal
            id="tolerations-replaced",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "main", "command": ["false"]}]}},
            False,
            id="command",
        ),
        pytest.param({"spec": {"nodeName": "core"}}, False, id="node-name"),
        pytest.param({"spec": {"restartPolicy": "Never"}}, False, id="restart-policy"),
        pytest.param(
            {
                "spec": {
                    "containers": [
                        {"name": "main", "resources": {"limits": {"cpu": "1"}}}
                    ]
                }
            },
            False,
            id="resources",
        ),
    ],
)
def test_pod_spec_is_immutable_but_for_a_few_fields(store: Store, patch, allowed):
    store.create("pods", "jhub", pod_manifest("p", ["sleep", "60"], node=""))
    if allowed:
        store.patch("pods", "jhub", "p", patch, "strategic")
        return
    with pytest.raises(
        ApiError, match="pod updates may not change fields other"
    ) as info:
        store.patch("pods", "jhub", "p", patch, "strategic")
    assert info.value.code == 422 and info.value.reason == "Invalid"
    assert info.value.details["causes"][0]["field"] == "spec"


def test_pod_tolerations_may_be_added_and_deadline_only_lowered(store: Store):
    pod = store.create("pods", "jhub", pod_manifest("p", ["sleep", "60"], node=""))
    more = pod["spec"]["tolerations"] + [{"key": "k", "operator": "Exists"}]
    store.patch("pods", "jhub", "p", {"spec": {"tolerations": more}}, "merge")
    store.patch("pods", "jhub", "p", {"spec": {"activeDeadlineSeconds": 60}})
    store.patch("pods", "jhub", "p", {"spec": {"activeDeadlineSeconds": 30}})
    with pytest.raises(ApiError, match="pod updates may not change"):
        store.patch("pods", "jhub", "p", {"spec": {"activeDeadlineSeconds": 90}})


def test_pod_put_without_defaulted_fields_is_no_change(store: Store):
    """A PUT that leaves defaulted fields out changes nothing (they are defaulted)."""
    made = store.create("pods", "jhub", pod_manifest("p", ["sleep", "60"], node=""))
    body = pod_manifest("p", ["sleep", "60"], node="")
    body["spec"]["tolerations"] = made["spec"]["tolerations"]
    body["spec"]["priority"] = 0
    body["metadata"]["labels"]["new"] = "label"
    put = store.replace("pods", "jhub", "p", body)
    assert put["metadata"]["labels"]["new"] == "label"


# ------------------------------------------------------------ watch cache
# Kubernetes behaviour followed: the apiserver's watch cache keeps at least
# 100 events per resource and events younger than 75 s (cacher/watch_cache.go);
# a watch from an older resourceVersion gets 410 Expired and the client relists.


def test_watch_cache_drops_stale_events_beyond_the_minimum():
    from devcluster.apiserver.store.history import History
    from devcluster.errors import ApiError as Error

    now = [0.0]
    history = History(1000, min_events=3, fresh_s=10.0, clock=lambda: now[0])
    objs: dict = {}
    for n in range(1, 6):  # rv 1..5 at t=0: fresh, all kept
        rv = history.next_rv()
        history.record("configmaps", "ADDED", {"metadata": {"name": f"c{n}"}}, None, rv)
    watch = history.start_watch("configmaps", None, "1", lambda o: True, objs)
    assert watch.queue.qsize() == 4
    now[0] = 11.0  # everything so far is stale now
    rv = history.next_rv()
    history.record("configmaps", "ADDED", {"metadata": {"name": "c6"}}, None, rv)
    # the 3 newest are kept (4, 5, 6); 1..3 were dropped
    with pytest.raises(Error) as info:
        history.start_watch("configmaps", None, "2", lambda o: True, objs)
    assert info.value.code == 410 and info.value.reason == "Expired"
    assert (
        history.start_watch("configmaps", None, "3", lambda o: True, objs).queue.qsize()
        == 3
    )


def test_watch_cache_size_bounds_fresh_events():
    from devcluster.apiserver.store.history import History

    history = History(4, min_events=2, fresh_s=1e9)
    for n in range(6):
        rv = history.next_rv()
        history.record("configmaps", "ADDED", {"metadata": {"name": f"c{n}"}}, None, rv)
    with pytest.raises(ApiError):
        history.start_watch("configmaps", None, "1", lambda o: True, {})
    assert (
        history.start_watch("configmaps", None, "2", lambda o: True, {}).queue.qsize()
        == 4
    )
