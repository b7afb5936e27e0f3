"""authorization.k8s.io/v1: access reviews answered from the RBAC objects stored.

devcluster authenticates nobody and authorizes every request; these reviews
exist so that clients can ask (``kubectl auth can-i``, charts' and operators'
permission checks). The answer follows one documented rule:

* The subject of a ``SelfSubject*Review`` is the requester as kubectl
  impersonates it (``Impersonate-User`` / ``Impersonate-Group`` headers, i.e.
  ``--as`` / ``--as-group``); without them it is devcluster's anonymous client,
  which acts as a cluster admin (group ``system:masters``). A
  ``SubjectAccessReview`` names its subject in ``spec``.
* Like RBAC, group ``system:masters`` may do anything; a user
  ``system:serviceaccount:<ns>:<name>`` is that ServiceAccount and belongs to
  ``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``; everyone
  belongs to ``system:authenticated``.
* Permissive default: a subject that no RoleBinding or ClusterRoleBinding
  names is allowed everything (there is no RBAC for it to follow). A subject
  with bindings is allowed exactly what their Roles and ClusterRoles grant,
  as the RBAC authorizer decides it: RoleBindings count in their own
  namespace, ClusterRoleBindings everywhere; verbs, API groups, resources
  (``pods/log``, ``*/scale``), resource names and non-resource URLs with the
  ``*`` wildcards. Aggregated ClusterRoles are not aggregated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from devcluster.apiserver.patches import clone
from devcluster.apiserver.resources import Resource
from devcluster.errors import bad_request

ADMIN_USER = "devcluster-admin"
"""Who the unauthenticated client is."""
MASTERS = "system:masters"
_SA_PREFIX = "system:serviceaccount:"


class Objects(Protocol):
    """The store reads a review needs (``Store`` provides them)."""

    def items_raw(self, kind: str) -> list[dict[str, Any]]:
        """Return the stored objects of a plural name (read-only)."""
        ...


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking: a user name and its groups (implicit ones included)."""

    user: str
    groups: frozenset[str]

    @classmethod
    def of(cls, user: str, groups: Iterable[str]) -> Subject:
        """Return a subject with the groups the authenticator would add."""
        found = set(groups) | {"system:authenticated"}
        if user.startswith(_SA_PREFIX):
            namespace = user[len(_SA_PREFIX) :].split(":", 1)[0]
            found |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
        return cls(user, frozenset(found))

    def named_by(self, subject: Mapping[str, Any], binding_ns: str) -> bool:
        """Tell whether a binding's subject entry names this subject."""
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "User":
            return name == self.user
        if kind == "Group":
            return name in self.groups
        if kind == "ServiceAccount":
            namespace = subject.get("namespace") or binding_ns
            return self.user == f"{_SA_PREFIX}{namespace}:{name}"
        return False


@dataclass(frozen=True, slots=True)
class Attributes:
    """What is asked: a verb on a resource (or on a non-resource URL)."""

    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    """The non-resource URL (``/healthz``); empty for resource requests."""


# ------------------------------------------------------------------ RBAC
def _bound_rules(
    objects: Objects, subject: Subject, namespace: str
) -> tuple[bool, list[dict[str, Any]]]:
    """Return (subject has any binding, rules bound to it that apply here)."""
    roles = {
        (r["metadata"].get("namespace", ""), r["metadata"]["name"]): r
        for r in objects.items_raw("roles")
    }
    cluster_roles = {
        r["metadata"]["name"]: r for r in objects.items_raw("clusterroles")
    }
    named, rules = False, []
    for kind in ("clusterrolebindings", "rolebindings"):
        for binding in objects.items_raw(kind):
            binding_ns = str(binding["metadata"].get("namespace", ""))
            if not any(
                subject.named_by(s, binding_ns) for s in binding.get("subjects") or []
            ):
                continue
            named = True
            if kind == "rolebindings" and binding_ns != namespace:
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                role = cluster_roles.get(str(ref.get("name")))
            else:
                role = roles.get((binding_ns, str(ref.get("name"))))
            if role is not None:
                rules += list(role.get("rules") or [])
    return named, rules


def _has(values: Iterable[str], wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _resource_matches(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    combined = (
        f"{attrs.resource}/{attrs.subresource}"
        if attrs.subresource
        else (attrs.resource)
    )
    for resource in rule.get("resources") or []:
        if resource in ("*", combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """Tell whether one PolicyRule grants ``attrs`` (the RBAC authorizer's match)."""
    if not _has(rule.get("verbs") or [], attrs.verb):
        return False
    if attrs.path:
        for url in rule.get("nonResourceURLs") or []:
            if url in ("*", attrs.path) or (
                url.endswith("*") and attrs.path.startswith(url[:-1])
            ):
                return True
        return False
    names = rule.get("resourceNames") or []
    return (
        _has(rule.get("apiGroups") or [], attrs.group)
        and _resource_matches(rule, attrs)
        and (not names or attrs.name in names)
    )


def decide(objects: Objects, subject: Subject, attrs: Attributes) -> tuple[bool, str]:
    """Return (allowed, reason) for a subject and a request, by the rule above."""
    if MASTERS in subject.groups:
        return True, f"devcluster: {subject.user} is in group {MASTERS}"
    named, rules = _bound_rules(objects, subject, attrs.namespace)
    if not named:
        return True, "devcluster: no RBAC binding names this subject; allowed"
    for rule in rules:
        if rule_allows(rule, attrs):
            return True, "RBAC: allowed by a role bound to the subject"
    return False, ""


# --------------------------------------------------------------- reviews
def _attributes(spec: Mapping[str, Any]) -> Attributes:
    res = spec.get("resourceAttributes")
    if isinstance(res, Mapping):
        return Attributes(
            verb=str(res.get("verb", "")),
            namespace=str(res.get("namespace") or ""),
            group=str(res.get("group") or ""),
            resource=str(res.get("resource") or ""),
            subresource=str(res.get("subresource") or ""),
            name=str(res.get("name") or ""),
        )
    non = spec.get("nonResourceAttributes") or {}
    return Attributes(verb=str(non.get("verb", "")), path=str(non.get("path") or "/"))


def requester(user: str | None, groups: Sequence[str]) -> Subject:
    """Return who sends a request impersonating ``user`` (None: nobody)."""
    if not user:
        return Subject.of(ADMIN_USER, [MASTERS])
    return Subject.of(user, groups)


def _rules_status(objects: Objects, subject: Subject, namespace: str) -> dict[str, Any]:
    named, rules = _bound_rules(objects, subject, namespace)
    if MASTERS in subject.groups or not named:
        everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
        return {
            "resourceRules": [everything],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    return {
        "resourceRules": [
            {k: v for k, v in r.items() if k != "nonResourceURLs"}
            for r in rules
            if r.get("resources")
        ],
        "nonResourceRules": [
            {"verbs": r.get("verbs") or [], "nonResourceURLs": r["nonResourceURLs"]}
            for r in rules
            if r.get("nonResourceURLs")
        ],
        "incomplete": False,
    }


def _spec_subject(spec: Mapping[str, Any]) -> Subject:
    user, groups = str(spec.get("user") or ""), spec.get("groups") or []
    if not user and not groups:
        raise bad_request(
            'spec.user: Invalid value: "": at least one of user or group must be '
            "specified"
        )
    return Subject.of(user, [str(g) for g in groups])


def review(
    objects: Objects,
    res: Resource,
    namespace: str | None,
    body: dict[str, Any],
    requesting: Subject,
) -> dict[str, Any]:
    """Answer one review (the body of a create) and return it with its status.

    ``requesting`` is who sends it (see ``requester``), the subject of the
    ``SelfSubject*Review`` kinds.

    Raises:
        ApiError: 400 for a wrong kind, a missing subject or a namespace that
            disagrees with the URL.
    """
    if body.get("kind") not in (None, res.kind):
        raise bad_request(
            f"the kind in the data ({body.get('kind')}) does not match the "
            f"expected kind ({res.kind})"
        )
    out: dict[str, Any] = clone(body)
    out.update(apiVersion=res.api_version, kind=res.kind)
    out.setdefault("metadata", {})
    spec = out.get("spec") or {}
    if res.kind == "SelfSubjectRulesReview":
        out["status"] = _rules_status(
            objects, requesting, str(spec.get("namespace") or "")
        )
        return out
    attrs = _attributes(spec)
    if res.kind == "LocalSubjectAccessReview" and attrs.namespace != namespace:
        raise bad_request(
            "spec.resourceAttributes.namespace must match namespace: "
            f"{attrs.namespace} != {namespace}"
        )
    subject = (
        requesting if res.kind == "SelfSubjectAccessReview" else _spec_subject(spec)
    )
    allowed, reason = decide(objects, subject, attrs)
    out["status"] = {"allowed": allowed}
    if reason:
        out["status"]["reason"] = reason
    return out
