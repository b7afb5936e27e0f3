"""The HTTP API as clients see it: discovery, verbs, Status errors, watch streams."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from devcluster.apiserver import validation
from devcluster.apiserver.store import Store
from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.errors import ApiError
from tests.devcluster.cluster_support import Api, pod_manifest

NS = "/api/v1/namespaces/jhub"


def _cm(name: str, labels: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": {"k": "v"},
    }


async def test_discovery(api: Api):
    status, doc = await api.call("GET", "/api")
    assert status == 200 and doc["versions"] == ["v1"]
    status, doc = await api.call("GET", "/api/v1")
    names = {r["name"] for r in doc["resources"]}
    assert {
        "pods",
        "pods/status",
        "pods/log",
        "nodes",
        "persistentvolumeclaims",
        "events",
        "secrets",
        "configmaps",
        "services",
        "namespaces",
        "serviceaccounts",
    } <= names
    status, doc = await api.call("GET", "/apis")
    assert {g["name"] for g in doc["groups"]} == {
        "storage.k8s.io",
        "scheduling.k8s.io",
        "networking.k8s.io",
        "apps",
        "discovery.k8s.io",
        "policy",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "authorization.k8s.io",
        "apiextensions.k8s.io",
    }
    status, doc = await api.call("GET", "/apis/storage.k8s.io/v1")
    assert [r["name"] for r in doc["resources"]] == ["storageclasses"]
    status, doc = await api.call("GET", "/version")
    assert doc["major"] == "1" and doc["minor"] == "33"
    status, _ = await api.call("GET", "/openapi/v3/apis/nope.example.com/v1")
    assert status == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "reason", "message"),
    [
        pytest.param(
            "GET",
            f"{NS}/configmaps/nope",
            None,
            404,
            "NotFound",
            'configmaps "nope" not found',
            id="get-missing",
        ),
        pytest.param(
            "DELETE",
            f"{NS}/configmaps/nope",
            None,
            404,
            "NotFound",
            'configmaps "nope" not found',
            id="delete-missing",
        ),
        pytest.param(
            "GET",
            "/api/v1/widgets",
            None,
            404,
            "NotFound",
            "the server could not find the requested resource",
            id="unknown-resource",
        ),
        pytest.param(
            "POST",
            f"{NS}/configmaps",
            _cm("Bad_Name"),
            422,
            "Invalid",
            'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value',
            id="bad-name",
        ),
        pytest.param(
            "POST",
            f"{NS}/configmaps",
            {**_cm("x"), "spec": {}},
            422,
            "Invalid",
            "Additional properties are not allowed",
            id="strict-unknown-field",
        ),
        pytest.param(
            "POST",
            f"{NS}/pods",
            pod_manifest(
                "p", ["x"], container={"resources": {"limits": {"cpu": "abc"}}}
            ),
            422,
            "Invalid",
            "spec.containers[0].resources.limits[cpu]",
            id="bad-quantity",
        ),
        pytest.param(
            "POST",
            f"{NS}/configmaps",
            {**_cm("x"), "kind": "Secret"},
            400,
            "BadRequest",
            "does not match the expected kind",
            id="wrong-kind",
        ),
        pytest.param(
            "GET",
            f"{NS}/pods?fieldSelector=spec.containers%3Dx",
            None,
            400,
            "BadRequest",
            "field label not supported: spec.containers",
            id="bad-field",
        ),
        pytest.param(
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            _cm("x"),
            404,
            "NotFound",
            'namespaces "nope" not found',
            id="missing-namespace",
        ),
    ],
)
async def test_errors_are_status_bodies(
    api: Api, method, path, body, code, reason, message
):
    status, doc = await api.call(method, path, body)
    assert status == code
    assert doc["kind"] == "Status" and doc["status"] == "Failure"
    assert doc["code"] == code and doc["reason"] == reason
    assert message in doc["message"]


async def test_invalid_has_causes(api: Api):
    status, doc = await api.call("POST", f"{NS}/configmaps", _cm("Bad_Name"))
    assert status == 422
    assert doc["details"]["causes"][0]["field"] == "metadata.name"


async def test_crud_roundtrip(api: Api):
    status, made = await api.call("POST", f"{NS}/configmaps", _cm("a"))
    assert status == 201 and made["metadata"]["namespace"] == "jhub"
    status, doc = await api.call("POST", f"{NS}/configmaps", _cm("a"))
    assert status == 409 and doc["reason"] == "AlreadyExists"
    made["data"] = {"k": "put"}
    status, put = await api.call("PUT", f"{NS}/configmaps/a", made)
    assert status == 200 and put["data"] == {"k": "put"}
    status, doc = await api.call(
        "PUT", f"{NS}/configmaps/a", made
    )  # stale resourceVersion
    assert status == 409 and doc["reason"] == "Conflict"
    status, listed = await api.call("GET", f"{NS}/configmaps")
    assert (
        listed["kind"] == "ConfigMapList"
        and int(listed["metadata"]["resourceVersion"]) > 0
    )
    status, gone = await api.call("DELETE", f"{NS}/configmaps/a")
    assert status == 200 and gone["metadata"]["name"] == "a"


def _deployment(name: str) -> dict:
    """A Deployment whose pod template has one container ``main`` (sleep 60)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "a:1", "command": ["sleep", "60"]}
                    ]
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("content_type", "patch", "expected"),
    [
        pytest.param(
            "application/merge-patch+json",
            {"containers": [{"name": "main", "image": "b:2"}]},
            [("main", "b:2", None)],
            id="merge-replaces-list",
        ),
        pytest.param(
            "application/strategic-merge-patch+json",
            {"containers": [{"name": "main", "image": "b:2"}]},
            [("main", "b:2", ["sleep", "60"])],
            id="strategic-merges-by-name",
        ),
        pytest.param(
            "application/json-patch+json",
            [
                {
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": "b:2",
                }
            ],
            [("main", "b:2", ["sleep", "60"])],
            id="json-patch",
        ),
    ],
)
async def test_patch_types(api: Api, content_type, patch, expected):
    """Patch semantics on a pod template (a pod's own spec is immutable)."""
    deployments = "/apis/apps/v1/namespaces/jhub/deployments"
    await api.call("POST", deployments, _deployment("d"))
    if isinstance(patch, dict):
        patch = {"spec": {"template": {"spec": patch}}}
    status, doc = await api.call("PATCH", f"{deployments}/d", patch, content_type)
    assert status == 200, doc
    containers = doc["spec"]["template"]["spec"]["containers"]
    got = [(c["name"], c["image"], c.get("command")) for c in containers]
    assert got == expected


async def test_patch_unsupported_media_type(api: Api):
    """A patch type the apiserver does not know is a 415 (apply is known now)."""
    await api.call("POST", f"{NS}/configmaps", _cm("a"))
    status, doc = await api.call(
        "PATCH", f"{NS}/configmaps/a", {}, "application/x-unknown-patch+json"
    )
    assert status == 415 and doc["reason"] == "UnsupportedMediaType"


async def test_status_subresource_over_http(api: Api):
    await api.call("POST", f"{NS}/pods", pod_manifest("p", ["sleep", "60"], node=""))
    patch = {"status": {"phase": "Running"}}
    await api.call("PATCH", f"{NS}/pods/p", patch, "application/merge-patch+json")
    _, pod = await api.call("GET", f"{NS}/pods/p")
    assert pod["status"]["phase"] == "Pending"
    status, pod = await api.call(
        "PATCH", f"{NS}/pods/p/status", patch, "application/merge-patch+json"
    )
    assert status == 200 and pod["status"]["phase"] == "Running"


async def test_delete_options_in_body_and_query(api: Api, cluster: Cluster):
    assert cluster.store is not None
    cluster.store.create("nodes", None, {"metadata": {"name": "elsewhere"}})
    # Bound to a node: graceful. The kubelet runs "sleep" there; grace 100 s = 1 s real.
    for name in ("q", "b"):
        await api.call(
            "POST", f"{NS}/pods", pod_manifest(name, ["sleep", "60"], node="elsewhere")
        )
    status, pod = await api.call("DELETE", f"{NS}/pods/q?gracePeriodSeconds=100")
    assert status == 200 and pod["metadata"]["deletionGracePeriodSeconds"] == 100
    status, pod = await api.call(
        "DELETE",
        f"{NS}/pods/b",
        {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
    )
    assert status == 200
    status, _ = await api.call("GET", f"{NS}/pods/b")
    assert status == 404


async def test_all_namespace_list_and_cluster_scoped(api: Api):
    await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await api.call("POST", f"{NS}/configmaps", _cm("a"))
    await api.call("POST", "/api/v1/namespaces/other/configmaps", _cm("b"))
    _, doc = await api.call("GET", "/api/v1/configmaps")
    assert {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in doc["items"]
    } == {("jhub", "a"), ("other", "b")}
    _, doc = await api.call("GET", "/api/v1/nodes")
    assert [n["metadata"]["name"] for n in doc["items"]] == ["core"]
    status, sc = await api.call(
        "POST",
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "gp3"},
            "provisioner": "ebs.csi.aws.com",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    assert status == 201 and sc["reclaimPolicy"] == "Delete"


async def test_list_paging(api: Api):
    for n in range(5):
        await api.call("POST", f"{NS}/configmaps", _cm(f"c{n}"))
    names, token = [], ""
    while True:
        _, doc = await api.call("GET", f"{NS}/configmaps?limit=2&continue={token}")
        names += [i["metadata"]["name"] for i in doc["items"]]
        token = doc["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"c{n}" for n in range(5)]


async def test_table_output(api: Api):
    await api.call("POST", f"{NS}/pods", pod_manifest("p", ["sleep", "60"], node=""))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    _, doc = await api.call("GET", f"{NS}/pods", headers={"Accept": accept})
    assert doc["kind"] == "Table"
    assert [c["name"] for c in doc["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert doc["rows"][0]["cells"][:3] == ["p", "0/1", "Pending"]
    assert doc["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_fault_injection(api: Api, cluster: Cluster):
    cluster.faults.fail_next("POST", "configmaps", 500)
    status, doc = await api.call("POST", f"{NS}/configmaps", _cm("a"))
    assert status == 500 and doc["reason"] == "InternalError"
    status, _ = await api.call("POST", f"{NS}/configmaps", _cm("a"))
    assert status == 201
    assert ("POST", f"{NS}/configmaps", 201) in list(cluster.requests)


# ------------------------------------------------------------------- watch


@pytest.mark.parametrize("flag", ["True", "true", "1"])
async def test_watch_flag_spellings(api: Api, flag):
    await api.call("POST", f"{NS}/configmaps", _cm("a"))
    events = await api.watch(f"{NS}/configmaps?watch={flag}&timeoutSeconds=5", limit=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a")
    ]


async def test_watch_resumes_from_resource_version(api: Api):
    _, first = await api.call("POST", f"{NS}/configmaps", _cm("a"))
    await api.call("POST", f"{NS}/configmaps", _cm("b"))
    await api.call("DELETE", f"{NS}/configmaps/a")
    rv = first["metadata"]["resourceVersion"]
    events = await api.watch(
        f"{NS}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=5", limit=2
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


async def test_watch_too_old_resource_version_gets_410_event(
    api: Api, cluster: Cluster
):
    _, first = await api.call("POST", f"{NS}/configmaps", _cm("a"))
    await api.call("POST", f"{NS}/configmaps", _cm("b"))
    assert cluster.store is not None
    cluster.store.compact()  # forget every event up to "b"
    rv = first["metadata"]["resourceVersion"]
    events = await api.watch(f"{NS}/configmaps?watch=true&resourceVersion={rv}")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert (
        events[0]["object"]["code"] == 410
        and events[0]["object"]["reason"] == "Expired"
    )


async def test_watch_timeout_closes_server_side(api: Api):
    began = time.monotonic()
    events = await api.watch(
        f"{NS}/configmaps?watch=True&timeoutSeconds=1&resourceVersion=0", timeout=5
    )
    took = time.monotonic() - began
    assert events == []
    assert 0.9 <= took < 3, took


async def test_watch_live_events_and_selector_moves(api: Api):
    async def changes() -> None:
        await asyncio.sleep(0.2)
        await api.call("POST", f"{NS}/configmaps", _cm("a", {"app": "x"}))
        await api.call("POST", f"{NS}/configmaps", _cm("b", {"app": "y"}))
        for name, app in (("b", "x"), ("a", "y")):
            patch = {"metadata": {"labels": {"app": app}}}
            await api.call(
                "PATCH",
                f"{NS}/configmaps/{name}",
                patch,
                "application/merge-patch+json",
            )

    task = asyncio.create_task(changes())
    events = await api.watch(
        f"{NS}/configmaps?watch=1&labelSelector=app%3Dx&timeoutSeconds=5", limit=3
    )
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


async def test_bookmarks_only_when_asked(api: Api):
    await api.call("POST", f"{NS}/configmaps", _cm("a"))
    plain = await api.watch(f"{NS}/configmaps?watch=1&timeoutSeconds=1")
    assert "BOOKMARK" not in {e["type"] for e in plain}
    streamed = await api.watch(
        f"{NS}/configmaps?watch=1&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true"
    )
    assert [e["type"] for e in streamed] == ["ADDED", "BOOKMARK"]
    assert streamed[1]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"
    }


async def test_watch_as_table_for_kubectl(api: Api):
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    await api.call("POST", f"{NS}/configmaps", _cm("a"))
    await api.call("POST", f"{NS}/configmaps", _cm("b"))
    async with api.session.get(
        f"{api.url}{NS}/configmaps?watch=1&timeoutSeconds=1", headers={"Accept": accept}
    ) as resp:
        lines = [json.loads(line) async for line in resp.content if line.strip()]
    tables = [e["object"] for e in lines]
    assert [t["kind"] for t in tables] == ["Table", "Table"]
    assert [c["name"] for c in tables[0]["columnDefinitions"]] == ["Name", "Age"]
    assert tables[1]["columnDefinitions"] == []
    assert [t["rows"][0]["cells"][0] for t in tables] == ["a", "b"]


# -------------------------------------------------------- field validation
# Kubernetes behaviour followed: the fieldValidation parameter (Strict:
# "strict decoding error: unknown field" 400, Ignore/Warn: the field is
# dropped), https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation


async def test_field_validation_directives(api: Api):
    bad = {**_cm("s"), "bogus": 1}
    status, doc = await api.call("POST", f"{NS}/configmaps?fieldValidation=Strict", bad)
    assert status == 400 and doc["reason"] == "BadRequest"
    assert doc["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict '
        'decoding error: unknown field "bogus"'
    )
    status, doc = await api.call("POST", f"{NS}/configmaps?fieldValidation=Ignore", bad)
    assert status == 201 and "bogus" not in doc
    status, doc = await api.call(
        "POST", f"{NS}/configmaps", {**bad, "metadata": {"name": "d"}}
    )
    assert status == 422  # devcluster's own default stays strict
    status, doc = await api.call(
        "POST", f"{NS}/configmaps?fieldValidation=Nope", _cm("e")
    )
    assert status == 400


def test_a_cluster_may_default_to_the_apiservers_warn() -> None:
    """``ClusterConfig.field_validation="Warn"``: a write that sends no
    ``fieldValidation`` has its unknown fields dropped, as an apiserver's
    default (Warn) does; an explicit Strict still refuses them."""
    store = Store(
        ClusterConfig(time_factor=0.01, field_validation="Warn"),
        validator=validation.validate,
    )
    store.create("namespaces", None, {"metadata": {"name": "jhub"}})
    port = {"name": "scheduler", "port": 8786, "target_port": "scheduler"}
    service = {"metadata": {"name": "s"}, "spec": {"ports": [port]}}
    made = store.create("services", "jhub", service)
    assert made["spec"]["ports"][0]["targetPort"] == 8786
    assert "target_port" not in made["spec"]["ports"][0]
    with pytest.raises(ApiError, match="strict decoding error"):
        store.create(
            "services",
            "jhub",
            {**service, "metadata": {"name": "t"}},
            field_validation="Strict",
        )


async def test_dry_run_stores_nothing(api: Api):
    status, doc = await api.call("POST", f"{NS}/configmaps?dryRun=All", _cm("a"))
    assert status == 201 and doc["metadata"]["name"] == "a"
    status, _ = await api.call("GET", f"{NS}/configmaps/a")
    assert status == 404
    status, _ = await api.call("POST", f"{NS}/configmaps?dryRun=Yes", _cm("a"))
    assert status == 400
