"""Label and field selectors: parsing, matching and the apiserver's field whitelist."""

from __future__ import annotations

import pytest

from devcluster.apiserver.selectors import make_matcher
from devcluster.errors import ApiError

OBJ = {
    "metadata": {
        "name": "p1",
        "namespace": "jhub",
        "labels": {"app": "x", "tier": "web"},
    },
    "spec": {"nodeName": "n1", "hostNetwork": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("", True, id="empty"),
        pytest.param("app=x", True, id="eq"),
        pytest.param("app==x", True, id="double-eq"),
        pytest.param("app!=x", False, id="neq"),
        pytest.param("missing!=x", True, id="neq-missing-label"),
        pytest.param("app in (x,y)", True, id="in"),
        pytest.param("app in (y, z)", False, id="in-miss"),
        pytest.param("tier notin (db)", True, id="notin"),
        pytest.param("missing notin (db)", True, id="notin-missing"),
        pytest.param("app", True, id="exists"),
        pytest.param("!app", False, id="not-exists"),
        pytest.param("!missing", True, id="not-exists-missing"),
        pytest.param("app=x,tier notin (1),!missing", True, id="combined"),
        pytest.param("app=x,tier=db", False, id="combined-miss"),
    ],
)
def test_label_selector(selector, expected):
    assert make_matcher("pods", selector, "")(OBJ) is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("metadata.name=p1", True, id="name"),
        pytest.param("metadata.name!=p1", False, id="name-neq"),
        pytest.param("metadata.namespace=jhub,status.phase=Running", True, id="two"),
        pytest.param("spec.nodeName=n2", False, id="node-miss"),
        pytest.param("spec.nodeName=", False, id="unbound"),
        pytest.param("spec.hostNetwork=false", True, id="bool"),
        pytest.param("status.phase==Running", True, id="double-eq"),
    ],
)
def test_field_selector(selector, expected):
    assert make_matcher("pods", "", selector)(OBJ) is expected


def test_event_field_selector():
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p1"}}
    assert make_matcher("events", "", "involvedObject.kind=Pod,involvedObject.name=p1")(
        event
    )
    assert not make_matcher("events", "", "involvedObject.kind=Node")(event)


@pytest.mark.parametrize(
    ("plural", "selector"),
    [
        pytest.param("pods", "spec.containers=x", id="pod-field"),
        pytest.param("nodes", "status.phase=Ready", id="node-field"),
        pytest.param("configmaps", "data.x=1", id="configmap-field"),
    ],
)
def test_unsupported_field_is_400(plural, selector):
    with pytest.raises(ApiError, match="field label not supported") as info:
        make_matcher(plural, "", selector)
    assert info.value.code == 400


def test_bad_label_selector_is_400():
    with pytest.raises(ApiError, match="unable to parse requirement") as info:
        make_matcher("pods", "app=(", "")
    assert info.value.code == 400
