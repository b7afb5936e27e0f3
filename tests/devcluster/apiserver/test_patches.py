"""Patch semantics: JSON merge, strategic merge, JSON patch."""

from __future__ import annotations

import pytest

from devcluster.apiserver.patches import (
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from devcluster.errors import ApiError

POD = {
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {
                "name": "main",
                "image": "img:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}],
                "volumeMounts": [{"name": "home", "mountPath": "/home/u"}],
            },
            {"name": "side", "image": "side:1"},
        ],
        "volumes": [{"name": "home", "emptyDir": {}}],
        "tolerations": [{"key": "k", "operator": "Exists"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}


def test_merge_patch_replaces_lists_and_deletes_nulls():
    out = merge_patch(
        POD, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"volumes": []}}
    )
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["spec"]["volumes"] == []
    assert POD["metadata"]["labels"] == {"a": "1", "b": "2"}, "input must not change"


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        pytest.param(
            {"spec": {"containers": [{"name": "main", "image": "img:2"}]}},
            lambda o: (
                [c["image"] for c in o["spec"]["containers"]] == ["img:2", "side:1"]
                and o["spec"]["containers"][0]["env"][0]["name"] == "A"
            ),
            id="containers-by-name",
        ),
        pytest.param(
            {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "env": [
                                {"name": "B", "value": "9"},
                                {"name": "C", "value": "3"},
                            ],
                        }
                    ]
                }
            },
            lambda o: (
                o["spec"]["containers"][0]["env"]
                == [
                    {"name": "A", "value": "1"},
                    {"name": "B", "value": "9"},
                    {"name": "C", "value": "3"},
                ]
            ),
            id="env-by-name",
        ),
        pytest.param(
            {
                "spec": {
                    "containers": [{"name": "main", "ports": [{"containerPort": 8080}]}]
                }
            },
            lambda o: (
                [p["containerPort"] for p in o["spec"]["containers"][0]["ports"]]
                == [80, 8080]
            ),
            id="ports-by-containerPort",
        ),
        pytest.param(
            {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}},
            lambda o: [v["name"] for v in o["spec"]["volumes"]] == ["home", "data"],
            id="volumes-by-name",
        ),
        pytest.param(
            {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "volumeMounts": [
                                {
                                    "name": "home",
                                    "mountPath": "/home/u",
                                    "readOnly": True,
                                }
                            ],
                        }
                    ]
                }
            },
            lambda o: (
                o["spec"]["containers"][0]["volumeMounts"]
                == [{"name": "home", "mountPath": "/home/u", "readOnly": True}]
            ),
            id="volumeMounts-by-mountPath",
        ),
        pytest.param(
            {
                "status": {
                    "conditions": [
                        {"type": "Ready", "status": "True"},
                        {"type": "PodScheduled", "status": "True"},
                    ]
                }
            },
            lambda o: (
                o["status"]["conditions"]
                == [
                    {"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "True"},
                ]
            ),
            id="conditions-by-type",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}},
            lambda o: [c["name"] for c in o["spec"]["containers"]] == ["main"],
            id="patch-delete-directive",
        ),
        pytest.param(
            {"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}},
            lambda o: (
                o["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]
            ),
            id="list-without-key-replaced",
        ),
        pytest.param(
            {"metadata": {"finalizers": ["y"]}},
            lambda o: o["metadata"]["finalizers"] == ["x", "y"],
            id="finalizers-union",
        ),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}},
            lambda o: o["metadata"]["finalizers"] == [],
            id="delete-from-primitive-list",
        ),
        pytest.param(
            {
                "spec": {
                    "$setElementOrder/volumes": [{"name": "home"}],
                    "volumes": [{"name": "home", "emptyDir": {"medium": "Memory"}}],
                }
            },
            lambda o: (
                o["spec"]["volumes"]
                == [{"name": "home", "emptyDir": {"medium": "Memory"}}]
            ),
            id="set-element-order-ignored",
        ),
    ],
)
def test_strategic_merge(patch, check):
    out = strategic_merge_patch(POD, patch)
    assert check(out), out
    assert POD["spec"]["containers"][0]["image"] == "img:1", "input must not change"


def test_json_patch_operations():
    ops = [
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "img:3"},
        {"op": "add", "path": "/spec/volumes/-", "value": {"name": "v2"}},
        {"op": "copy", "from": "/metadata/labels/b", "path": "/metadata/labels/d"},
        {"op": "move", "from": "/metadata/labels/c", "path": "/metadata/labels/e"},
        {"op": "test", "path": "/metadata/labels/e", "value": "3"},
        {"op": "add", "path": "/metadata/annotations", "value": {"x~y/z": "1"}},
        {"op": "replace", "path": "/metadata/annotations/x~0y~1z", "value": "2"},
    ]
    out = json_patch(POD, ops)
    assert out["metadata"]["labels"] == {"b": "2", "d": "2", "e": "3"}
    assert out["spec"]["containers"][0]["image"] == "img:3"
    assert out["spec"]["volumes"][-1] == {"name": "v2"}
    assert out["metadata"]["annotations"] == {"x~y/z": "2"}


@pytest.mark.parametrize(
    ("ops", "code", "message"),
    [
        pytest.param(
            [{"op": "remove", "path": "/metadata/nope"}],
            422,
            "remove operation does not apply",
            id="missing-path",
        ),
        pytest.param(
            [{"op": "test", "path": "/metadata/name", "value": "q"}],
            422,
            "test operation failed at /metadata/name",
            id="test-fails",
        ),
        pytest.param(
            [{"op": "frobnicate", "path": "/x"}],
            400,
            "unknown JSON patch operation 'frobnicate'",
            id="unknown-op",
        ),
        pytest.param(
            {"op": "add"}, 400, "must be a list of operations", id="not-a-list"
        ),
    ],
)
def test_json_patch_errors(ops, code, message):
    with pytest.raises(ApiError, match=message) as info:
        json_patch(POD, ops)
    assert info.value.code == code


def test_unknown_patch_type_is_415():
    with pytest.raises(ApiError, match="unsupported patch type") as info:
        apply_patch(POD, {}, "apply")
    assert info.value.code == 415
