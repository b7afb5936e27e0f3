"""Server-side apply: field sets, merge, ownership, conflicts (pure and over HTTP).

Kubernetes behaviour followed: "Server-Side Apply"
(https://kubernetes.io/docs/reference/using-api/server-side-apply/) — field
management, conflicts, merge strategy by ``x-kubernetes-list-type``.
"""

from __future__ import annotations

import pytest

from devcluster.apiserver import apply
from devcluster.apiserver.resources import resource
from devcluster.apiserver.store import Store
from devcluster.errors import ApiError
from tests.devcluster.cluster_support import Api

NS = "/api/v1/namespaces/jhub"
APPLY = "application/apply-patch+yaml"
CM = resource("configmaps")
DEPLOY = resource("deployments")


def _deploy(image: str = "a:1", replicas: int = 1, **extra: object) -> dict:
    labels = {"app": "web"}
    container = {"name": "main", "image": image, **extra}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container]},
            },
        },
    }


def _owned(obj: dict, manager: str) -> set:
    entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)
    return apply.from_fields_v1(entry["fieldsV1"])


def test_field_set_keys_list_items_by_their_schema_keys():
    """containers are a map keyed by name (x-kubernetes-list-map-keys: [name])."""
    paths = apply.field_set(_deploy(env=[{"name": "A", "value": "1"}]), DEPLOY)
    item = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"main"}')
    assert (*item, ".") in paths
    assert (*item, "f:image") in paths
    assert (*item, "f:env", 'k:{"name":"A"}', "f:value") in paths
    assert ("f:spec", "f:selector") in paths  # LabelSelector is an atomic map
    assert not any(p[0] in ("f:apiVersion", "f:kind") for p in paths)
    trie = apply.to_fields_v1(paths)
    assert apply.from_fields_v1(trie) == paths


def test_first_apply_records_the_manager():
    made = apply.apply(None, _deploy(), DEPLOY, "alice")
    [entry] = made["metadata"]["managedFields"]
    assert entry["manager"] == "alice" and entry["operation"] == "Apply"
    assert entry["fieldsType"] == "FieldsV1" and entry["apiVersion"] == "apps/v1"


def test_reapply_merges_and_removes_what_the_manager_dropped():
    """Fields a manager applied before and applies no more are removed."""
    live = apply.apply(None, _deploy(env=[{"name": "A", "value": "1"}]), DEPLOY, "a")
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["x"]  # not owned
    out = apply.apply(live, _deploy(image="a:2"), DEPLOY, "a")
    [container] = out["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "a:2"
    assert "env" not in container  # dropped by its only manager
    assert container["args"] == ["x"]  # nobody applied it: kept


def test_other_managers_value_is_a_conflict_unless_forced():
    """A field owned by another manager with another value conflicts (409)."""
    live = apply.apply(None, _deploy(replicas=1), DEPLOY, "alice")
    with pytest.raises(ApiError) as info:
        apply.apply(live, _deploy(replicas=3), DEPLOY, "bob")
    err = info.value
    assert err.code == 409 and err.reason == "Conflict"
    assert 'conflict with "alice" using apps/v1: .spec.replicas' in err.message
    assert {c["field"] for c in err.details["causes"]} == {".spec.replicas"}
    forced = apply.apply(live, _deploy(replicas=3), DEPLOY, "bob", force=True)
    assert forced["spec"]["replicas"] == 3
    assert ("f:spec", "f:replicas") in _owned(forced, "bob")
    assert ("f:spec", "f:replicas") not in _owned(forced, "alice")


def test_same_value_is_shared_ownership():
    live = apply.apply(None, _deploy(), DEPLOY, "alice")
    shared = apply.apply(live, _deploy(), DEPLOY, "bob")
    assert ("f:spec", "f:replicas") in _owned(shared, "alice")
    assert ("f:spec", "f:replicas") in _owned(shared, "bob")


def test_update_takes_the_changed_fields():
    """An Update moves the changed fields to its manager (and out of others')."""
    live = apply.apply(None, _deploy(replicas=1), DEPLOY, "alice")
    changed = {**live, "spec": {**live["spec"], "replicas": 5}}
    entries = apply.track_update(live, changed, DEPLOY, "kubectl-scale")
    by = {e["manager"]: apply.from_fields_v1(e["fieldsV1"]) for e in entries}
    assert by["kubectl-scale"] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in by["alice"]


def test_inputs_are_not_mutated():
    body = _deploy()
    before = repr(body)
    apply.apply(None, body, DEPLOY, "alice")
    assert repr(body) == before


def test_store_apply_creates_then_conflicts(store: Store):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    made, created = store.apply(
        "configmaps", "jhub", "c", {**cm, "data": {"k": "1"}}, "a"
    )
    assert created and made["data"] == {"k": "1"}
    with pytest.raises(ApiError, match='conflict with "a"'):
        store.apply("configmaps", "jhub", "c", {**cm, "data": {"k": "2"}}, "b")
    store.patch("configmaps", "jhub", "c", {"data": {"k": "3"}}, field_manager="edit")
    again, created = store.apply(
        "configmaps", "jhub", "c", {**cm, "data": {"k": "1"}}, "a", force=True
    )
    assert not created and again["data"] == {"k": "1"}
    assert {e["manager"] for e in again["metadata"]["managedFields"]} == {"a"}


def test_store_apply_needs_a_manager_and_a_kind(store: Store):
    with pytest.raises(ApiError, match="fieldManager: Required value"):
        store.apply(
            "configmaps", "jhub", "c", {"apiVersion": "v1", "kind": "ConfigMap"}, ""
        )
    with pytest.raises(ApiError, match="invalid object type"):
        store.apply("configmaps", "jhub", "c", {"metadata": {"name": "c"}}, "a")


async def test_apply_patch_over_http(api: Api):
    """PATCH apply-patch+yaml creates (201), then updates (200); YAML bodies work."""
    url = f"{NS}/configmaps/c?fieldManager=tester"
    yaml_body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n"
    async with api.session.patch(
        api.url + url, data=yaml_body, headers={"Content-Type": APPLY}
    ) as resp:
        assert resp.status == 201, await resp.text()
        made = await resp.json()
    assert made["data"] == {"k": "v"}
    assert made["metadata"]["managedFields"][0]["manager"] == "tester"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    status, doc = await api.call("PATCH", url, {**body, "data": {"k": "w"}}, APPLY)
    assert status == 200 and doc["data"] == {"k": "w"}
    status, doc = await api.call("PATCH", f"{NS}/configmaps/c", body, APPLY)
    assert status == 400 and "fieldManager" in doc["message"]
    status, doc = await api.call(
        "PATCH", f"{NS}/configmaps/d?fieldManager=t&dryRun=All", body, APPLY
    )
    assert status == 400  # the name in the body is "c", not "d"
    dry = {**body, "metadata": {"name": "d"}}
    status, doc = await api.call(
        "PATCH", f"{NS}/configmaps/d?fieldManager=t&dryRun=All", dry, APPLY
    )
    assert status == 201 and doc["metadata"]["name"] == "d"
    status, _ = await api.call("GET", f"{NS}/configmaps/d")
    assert status == 404  # a dry run stores nothing
