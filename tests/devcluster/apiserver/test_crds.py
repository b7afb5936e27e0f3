"""CustomResourceDefinitions on a running devcluster (API server and controllers).

Each test names the Kubernetes behaviour it follows (apiextensions-apiserver:
the naming and establishing controllers, the custom resource handler and
strategy, the CRD finalizer).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from tests.devcluster.cluster_support import Api, wait_for

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.org/v1beta1/namespaces/jhub/widgets"


def definition(scope: str = "Namespaced") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer", "minimum": 1}},
                "required": ["size"],
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.org"},
        "spec": {
            "group": "example.org",
            "names": {
                "kind": "Widget",
                "listKind": "WidgetList",
                "plural": "widgets",
                "singular": "widget",
                "shortNames": ["wd"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
        # a manifest may carry a status (the dask-gateway chart's does): dropped
        "status": {"acceptedNames": {"kind": "Sent", "plural": "sent"}},
    }


def widget(name: str, size: Any = 2) -> dict[str, Any]:
    return {
        "apiVersion": "example.org/v1beta1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
        "status": {"phase": "Made"},
    }


@pytest.fixture
async def crd_cluster(fast_config: ClusterConfig) -> AsyncIterator[Cluster]:
    async with Cluster(fast_config, controllers=True) as c:
        yield c


@pytest.fixture
def crd_api(crd_cluster: Cluster, client: Any) -> Api:
    return Api(client, crd_cluster.url)


async def _established(api: Api) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status, crd = await api.call("GET", f"{CRDS}/widgets.example.org")
        found = (crd.get("status") or {}).get("conditions", [])
        conditions = {c["type"]: c["status"] for c in found}
        ok = status == 200 and conditions.get("Established") == "True"
        return crd if ok else None

    found: dict[str, Any] = await wait_for(check, timeout=10)
    return found


async def test_a_definition_is_established_and_served(crd_api: Api) -> None:
    """The naming and establishing controllers accept the names and set
    ``NamesAccepted`` and ``Established`` (what ``helm install`` waits for);
    the served version appears in discovery with its status subresource."""
    status, made = await crd_api.call("POST", CRDS, definition())
    assert status == 201, made
    assert "acceptedNames" not in made.get("status", {})
    crd = await _established(crd_api)
    assert crd["status"]["acceptedNames"]["plural"] == "widgets"
    assert crd["status"]["storedVersions"] == ["v1beta1"]
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    status, listing = await crd_api.call("GET", "/apis/example.org/v1beta1")
    assert status == 200
    names = {r["name"]: r for r in listing["resources"]}
    assert set(names) == {"widgets", "widgets/status"}
    assert names["widgets"]["namespaced"] is True
    assert "watch" in names["widgets"]["verbs"]
    status, groups = await crd_api.call("GET", "/apis")
    assert "example.org" in {g["name"] for g in groups["groups"]}


async def test_custom_objects_are_stored_watched_and_validated(crd_api: Api) -> None:
    """A custom resource handler: create drops ``status`` (status subresource
    enabled), main writes keep it, ``/status`` writes only it; watches see
    every change; the version's ``openAPIV3Schema`` validates (422)."""
    await crd_api.call("POST", CRDS, definition())
    await _established(crd_api)
    watch = asyncio.create_task(crd_api.watch(f"{WIDGETS}?watch=true", limit=3))
    await asyncio.sleep(0.2)
    status, made = await crd_api.call("POST", WIDGETS, widget("w1"))
    assert status == 201, made
    assert "status" not in made
    made["status"] = {"phase": "Ready"}
    status, after = await crd_api.call("PUT", f"{WIDGETS}/w1/status", made)
    assert status == 200 and after["status"] == {"phase": "Ready"}
    after["spec"]["size"] = 3
    after["status"] = {"phase": "Changed by a main write"}
    status, kept = await crd_api.call("PUT", f"{WIDGETS}/w1", after)
    assert status == 200 and kept["status"] == {"phase": "Ready"}
    assert kept["spec"]["size"] == 3 and kept["metadata"]["generation"] == 2
    events = await watch
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED"]
    status, bad = await crd_api.call("POST", WIDGETS, widget("w2", size="big"))
    assert status == 422, bad
    assert "spec.size" in {c["field"] for c in bad["details"]["causes"]}
    status, bad = await crd_api.call("POST", WIDGETS, widget("w3", size=0))
    assert status == 422, bad


async def test_deleting_a_definition_deletes_its_objects(crd_api: Api) -> None:
    """The CRD finalizer deletes every object of the resource, then the
    resource is no longer served (404)."""
    await crd_api.call("POST", CRDS, definition())
    await _established(crd_api)
    status, _ = await crd_api.call("POST", WIDGETS, widget("w1"))
    assert status == 201
    status, _ = await crd_api.call("DELETE", f"{CRDS}/widgets.example.org")
    assert status == 200

    async def gone() -> bool:
        status, _ = await crd_api.call("GET", WIDGETS)
        return status == 404

    await wait_for(gone, timeout=10)
    status, _ = await crd_api.call("GET", "/apis/example.org/v1beta1")
    assert status == 404
