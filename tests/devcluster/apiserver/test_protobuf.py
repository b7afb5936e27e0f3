"""Protobuf request bodies (``application/vnd.kubernetes.protobuf``).

Kubernetes behaviour followed: the protobuf wire form of API objects
(https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding):
the ``k8s\\0`` magic, a ``runtime.Unknown`` envelope with the type meta and the
raw message, field numbers from k8s.io/api ``generated.proto``.
"""

from __future__ import annotations

import base64

import pytest

from devcluster.apiserver import protobuf
from devcluster.errors import ApiError
from tests.devcluster.cluster_support import Api


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version) + _field(2, kind)
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def _secret() -> bytes:
    meta = _field(1, "release") + _field(11, _field(1, "owner") + _field(2, "helm"))
    data = _field(2, _field(1, "k") + _field(2, b"\x00\xff"))
    return _envelope(
        "v1", "Secret", _field(1, meta) + data + _field(3, "helm.sh/release.v1")
    )


def test_secret_decodes_to_its_json_form():
    obj = protobuf.decode(_secret())
    assert obj == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "release", "labels": {"owner": "helm"}},
        "data": {"k": base64.b64encode(b"\x00\xff").decode()},
        "type": "helm.sh/release.v1",
    }


def test_access_review_decodes():
    attrs = _field(1, "jhub") + _field(2, "create") + _field(5, "pods")
    raw = _field(2, _field(1, attrs))
    obj = protobuf.decode(
        _envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw)
    )
    assert obj["spec"] == {
        "resourceAttributes": {
            "namespace": "jhub",
            "verb": "create",
            "resource": "pods",
        }
    }


def test_unknown_kind_is_415_and_garbage_400():
    with pytest.raises(ApiError, match="send Pod as application/json") as info:
        protobuf.decode(_envelope("v1", "Pod", b""))
    assert info.value.code == 415
    with pytest.raises(ApiError) as info:
        protobuf.decode(b"k8s\x00\x0a\xff")
    assert info.value.code == 400


async def test_protobuf_create_over_http(api: Api):
    async with api.session.post(
        api.url + "/api/v1/namespaces/jhub/secrets",
        data=_secret(),
        headers={"Content-Type": protobuf.MEDIA_TYPE, "Accept": "application/json"},
    ) as resp:
        assert resp.status == 201, await resp.text()
    status, secret = await api.call("GET", "/api/v1/namespaces/jhub/secrets/release")
    assert status == 200 and secret["metadata"]["labels"] == {"owner": "helm"}
