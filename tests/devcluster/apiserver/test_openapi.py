"""OpenAPI v2/v3 documents from the validation schemas, and their protobuf form.

Kubernetes behaviour followed: the apiserver publishes ``/openapi/v3`` as an
index of per group-version documents with a hash in each URL, and
``/openapi/v2`` in protobuf (``application/com.github.proto-openapi.spec.v2...``,
kube-openapi ``handler.go``); top-level kinds carry
``x-kubernetes-group-version-kind``, PATCH operations list ``fieldValidation``
(which kubectl checks before sending ``fieldValidation=Strict``,
cli-runtime ``query_param_verifier_v3.go``).
"""

from __future__ import annotations

from devcluster.apiserver import openapi, openapi_proto
from devcluster.apiserver.resources import GROUPS
from tests.devcluster.cluster_support import Api

POD = "io.k8s.api.core.v1.Pod"


def test_v3_index_lists_every_group_version():
    paths = openapi.v3_index()["paths"]
    expected = {
        f"apis/{g}/{v}" if g else f"api/{v}" for g, vs in GROUPS.items() for v in vs
    }
    assert set(paths) == expected
    assert paths["apis/apps/v1"]["serverRelativeURL"].startswith(
        "/openapi/v3/apis/apps/v1?hash="
    )


def test_v3_document_has_kinds_with_gvk_and_openapi_types():
    doc = openapi.v3_document("", "v1")
    pod = doc["components"]["schemas"][POD]
    assert pod[openapi.GVK] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["type"] == "object" and "additionalProperties" not in pod
    assert (
        pod["properties"]["spec"]["$ref"]
        == "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    )
    assert "enum" not in pod["properties"]["kind"]
    int_or_string = doc["components"]["schemas"][
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    ]
    assert int_or_string == {"type": "string", "format": "int-or-string"}


def test_v3_patch_operations_declare_field_validation():
    """kubectl sends fieldValidation=Strict only when PATCH lists the parameter."""
    doc = openapi.v3_document("apps", "v1")
    path = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = path["patch"]
    assert patch[openapi.GVK] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert {p["name"] for p in patch["parameters"]} >= {
        "fieldValidation",
        "fieldManager",
        "force",
    }


def test_review_kinds_only_post():
    doc = openapi.v3_document("authorization.k8s.io", "v1")
    path = doc["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(path) == {"post", "parameters"}


def _field_names(data: bytes) -> list[int]:
    """Field numbers at the top level of a protobuf message (a reader for tests)."""
    numbers, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        numbers.append(key >> 3)
        assert key & 7 == 2  # the document uses only strings and messages
        length, pos = _varint(data, pos)
        pos += length
    return numbers


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def test_v2_protobuf_is_a_gnostic_document():
    """Fields 1 swagger, 2 info, 8 paths, 9 definitions of openapi.v2.Document."""
    data = openapi.v2_protobuf()
    assert _field_names(data) == [1, 2, 8, 9]
    assert data[2:5] == b"2.0"


def test_schema_encoding_of_a_small_schema():
    encoded = openapi_proto.encode_schema(
        {"type": "string", "description": "d", "x-kubernetes-list-type": "atomic"}
    )
    # description (4), type (22: TypeItem{value: "string"}), vendor extension (31)
    assert _field_names(encoded) == [4, 22, 31]
    assert b'"atomic"' in encoded


async def test_openapi_over_http(api: Api):
    async with api.session.get(
        api.url + "/openapi/v2",
        headers={
            "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        },
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == openapi.PROTOBUF_V2
        assert await resp.read() == openapi.v2_protobuf()
    status, doc = await api.call("GET", "/openapi/v2")
    assert status == 200 and doc["swagger"] == "2.0" and POD in doc["definitions"]
    status, index = await api.call("GET", "/openapi/v3")
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    status, doc = await api.call("GET", url)
    assert status == 200 and doc["openapi"] == "3.0.0"
    status, _ = await api.call("GET", "/openapi/v3/apis/nope/v1")
    assert status == 404
