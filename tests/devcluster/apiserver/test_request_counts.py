"""Requests per client and verb (devcluster.apiserver.request_counts)."""

from __future__ import annotations

import pytest

from devcluster.apiserver import request_counts
from tests.devcluster.cluster_support import Api

NS = "/api/v1/namespaces/jhub"
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}


@pytest.mark.parametrize(
    ("method", "has_name", "watch", "verb"),
    [
        pytest.param("GET", False, False, "list", id="list"),
        pytest.param("GET", True, False, "get", id="get"),
        pytest.param("GET", False, True, "watch", id="watch"),
        pytest.param("POST", False, False, "create", id="create"),
        pytest.param("PATCH", True, False, "patch", id="patch"),
        pytest.param("DELETE", True, False, "delete", id="delete"),
    ],
)
def test_verbs_are_named_as_the_apiserver_names_them(
    method: str, has_name: bool, watch: bool, verb: str
) -> None:
    assert request_counts.verb_of(method, has_name, watch) == verb


async def test_requests_are_counted_by_user_agent_and_verb(api: Api) -> None:
    hub = {"User-Agent": "OpenAPI-Generator/31.1.0/python"}
    other = {"User-Agent": "bench/1"}
    assert (await api.call("POST", f"{NS}/configmaps", CM, headers=hub))[0] == 201
    for _ in range(3):
        assert (await api.call("GET", f"{NS}/configmaps", headers=hub))[0] == 200
    assert (await api.call("GET", f"{NS}/configmaps/c", headers=other))[0] == 200
    watch = f"{NS}/configmaps?watch=1&timeoutSeconds=1"
    async with api.session.get(api.url + watch, headers=hub) as response:
        assert response.status == 200
    status, doc = await api.call("GET", request_counts.PATH)
    assert status == 200, doc
    assert doc["by_agent"]["OpenAPI-Generator"] == {
        "create": 1,
        "list": 3,
        "watch": 1,
    }
    assert doc["by_agent"]["bench"] == {"get": 1}
    assert (await api.call("PUT", request_counts.PATH, {}))[0] == 405
