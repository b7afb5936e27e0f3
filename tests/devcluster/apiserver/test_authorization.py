"""authorization.k8s.io reviews answered from RBAC objects (pure and over HTTP).

Kubernetes behaviour followed: "Using RBAC Authorization"
(https://kubernetes.io/docs/reference/access-authn-authz/rbac/) for rule
matching (verbs, apiGroups, resources and subresources, resourceNames,
nonResourceURLs, RoleBinding vs ClusterRoleBinding scope), and "Authorization
Overview — Checking API access" for the review objects. devcluster's own rule:
a subject no binding names is allowed (see devcluster.apiserver.authorization).
"""

from __future__ import annotations

import copy

import pytest

from devcluster.apiserver.authorization import Attributes, Subject, decide, rule_allows
from devcluster.apiserver.store import Store
from tests.devcluster.cluster_support import Api

HUB = "system:serviceaccount:jhub:hub"
RBAC = "rbac.authorization.k8s.io"
HUB_BINDING = {
    "metadata": {"name": "hub"},
    "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": "jhub"}],
    "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "hub"},
}
"""Role ``hub`` bound to the hub's service account, in jhub."""


def _rbac(store: Store) -> None:
    """The hub's Role (pods, pods/log, one named secret) bound to its SA."""
    store.create(
        "roles",
        "jhub",
        {
            "metadata": {"name": "hub"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log"],
                    "verbs": ["get", "list", "create"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": ["hub-secret"],
                    "verbs": ["get"],
                },
            ],
        },
    )
    store.create("rolebindings", "jhub", copy.deepcopy(HUB_BINDING))


@pytest.mark.parametrize(
    ("attrs", "allowed"),
    [
        pytest.param(Attributes("create", "jhub", "", "pods"), True, id="granted"),
        pytest.param(Attributes("delete", "jhub", "", "pods"), False, id="verb"),
        pytest.param(
            Attributes("get", "jhub", "", "pods", "log"), True, id="subresource"
        ),
        pytest.param(
            Attributes("create", "jhub", "", "pods", "exec"), False, id="other-sub"
        ),
        pytest.param(
            Attributes("get", "jhub", "", "secrets", name="hub-secret"),
            True,
            id="resource-name",
        ),
        pytest.param(
            Attributes("get", "jhub", "", "secrets", name="other"),
            False,
            id="other-name",
        ),
        pytest.param(
            Attributes("create", "other", "", "pods"), False, id="rolebinding-scope"
        ),
        pytest.param(
            Attributes("create", "jhub", "apps", "deployments"), False, id="group"
        ),
    ],
)
def test_bound_subject_gets_what_its_roles_grant(store: Store, attrs, allowed):
    _rbac(store)
    assert decide(store, Subject.of(HUB, []), attrs)[0] is allowed


def test_unbound_subject_is_allowed_and_masters_always(store: Store):
    _rbac(store)
    nobody = Subject.of("system:serviceaccount:jhub:other", [])
    allowed, reason = decide(store, nobody, Attributes("delete", "jhub", "", "pods"))
    assert allowed and "no RBAC binding" in reason
    admin = Subject.of("me", ["system:masters"])
    assert decide(store, admin, Attributes("delete", "jhub", "", "pods"))[0]


def test_cluster_role_binding_applies_everywhere(store: Store):
    store.create(
        "clusterroles",
        None,
        {
            "metadata": {"name": "reader"},
            "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]},
                {"nonResourceURLs": ["/healthz", "/metrics/*"], "verbs": ["get"]},
            ],
        },
    )
    store.create(
        "clusterrolebindings",
        None,
        {
            "metadata": {"name": "reader"},
            "subjects": [{"kind": "Group", "name": "readers"}],
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "reader"},
        },
    )
    bob = Subject.of("bob", ["readers"])
    assert decide(store, bob, Attributes("get", "any", "apps", "deployments"))[0]
    assert decide(store, bob, Attributes("get", "", "", "nodes"))[0]
    assert not decide(store, bob, Attributes("list", "", "", "nodes"))[0]
    assert decide(store, bob, Attributes("get", path="/metrics/cadvisor"))[0]
    assert not decide(store, bob, Attributes("get", path="/version"))[0]


def test_wildcard_subresource_rule():
    rule = {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}
    assert rule_allows(rule, Attributes("update", "", "apps", "deployments", "scale"))
    assert not rule_allows(rule, Attributes("update", "", "apps", "deployments"))


def test_service_account_user_has_its_groups():
    subject = Subject.of(HUB, [])
    assert {"system:serviceaccounts", "system:serviceaccounts:jhub"} <= subject.groups
    assert subject.named_by({"kind": "ServiceAccount", "name": "hub"}, "jhub")
    assert not subject.named_by({"kind": "ServiceAccount", "name": "hub"}, "other")


async def test_reviews_over_http(api: Api):
    """SelfSubjectAccessReview answers for the impersonated user; SAR for spec."""
    await api.call(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/jhub/roles",
        {"metadata": {"name": "hub"}, "rules": []},
    )
    await api.call(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/jhub/rolebindings",
        HUB_BINDING,
    )
    authz = "/apis/authorization.k8s.io/v1"
    ssar = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "jhub",
                "verb": "create",
                "resource": "pods",
            }
        },
    }
    status, doc = await api.call("POST", f"{authz}/selfsubjectaccessreviews", ssar)
    assert status == 201 and doc["status"]["allowed"] is True
    status, doc = await api.call(
        "POST",
        f"{authz}/selfsubjectaccessreviews",
        ssar,
        headers={"Impersonate-User": HUB},
    )
    assert status == 201 and doc["status"]["allowed"] is False
    sar = {
        "kind": "SubjectAccessReview",
        "spec": {**ssar["spec"], "user": "someone-else"},
    }
    status, doc = await api.call("POST", f"{authz}/subjectaccessreviews", sar)
    assert status == 201 and doc["status"]["allowed"] is True
    status, _ = await api.call("GET", f"{authz}/subjectaccessreviews")
    assert status == 405
    status, doc = await api.call(
        "POST",
        f"{authz}/subjectaccessreviews",
        {"kind": "SubjectAccessReview", "spec": {}},
    )
    assert status == 400 and "at least one of user or group" in doc["message"]
