"""The resources devcluster serves: group, version, kind, scope and subresources.

This registry is the single place that says which plural names exist; the store,
the HTTP layer and discovery all read it. It holds data only, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
"""The verbs of an ordinary stored resource."""


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource type, as discovery describes it."""

    plural: str
    kind: str
    group: str = ""
    """API group; empty for the core group (``/api/v1``)."""
    version: str = "v1"
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    status: bool = False
    """Has a ``/status`` subresource: main-resource writes keep the old status."""
    singular: str = ""
    verbs: tuple[str, ...] = VERBS
    """The verbs discovery lists; ``("create",)`` marks a review that is never
    stored (the authorization reviews answer and forget)."""

    @property
    def stored(self) -> bool:
        """Tell whether objects of this resource are kept in the store."""
        return "get" in self.verbs

    @property
    def api_version(self) -> str:
        """Return ``apiVersion`` as objects carry it (``v1``, ``storage.k8s.io/v1``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        """Return the discovery ``groupVersion`` string."""
        return self.api_version

    @property
    def list_kind(self) -> str:
        """Return the kind of a list of these objects."""
        return f"{self.kind}List"


_RBAC = "rbac.authorization.k8s.io"
_AUTHZ = "authorization.k8s.io"
_APIEXT = "apiextensions.k8s.io"

_ALL: tuple[Resource, ...] = (
    Resource("pods", "Pod", short_names=("po",), status=True),
    Resource("nodes", "Node", namespaced=False, short_names=("no",), status=True),
    Resource(
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        status=True,
    ),
    Resource(
        "persistentvolumes",
        "PersistentVolume",
        namespaced=False,
        short_names=("pv",),
        status=True,
    ),
    Resource("events", "Event", short_names=("ev",)),
    Resource("secrets", "Secret"),
    Resource("configmaps", "ConfigMap", short_names=("cm",)),
    Resource("services", "Service", short_names=("svc",), status=True),
    Resource("endpoints", "Endpoints", short_names=("ep",)),
    Resource(
        "namespaces", "Namespace", namespaced=False, short_names=("ns",), status=True
    ),
    Resource("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    Resource("resourcequotas", "ResourceQuota", short_names=("quota",), status=True),
    Resource("limitranges", "LimitRange", short_names=("limits",)),
    Resource(
        "storageclasses",
        "StorageClass",
        group="storage.k8s.io",
        namespaced=False,
        short_names=("sc",),
    ),
    Resource(
        "priorityclasses",
        "PriorityClass",
        group="scheduling.k8s.io",
        namespaced=False,
        short_names=("pc",),
    ),
    Resource(
        "networkpolicies",
        "NetworkPolicy",
        group="networking.k8s.io",
        short_names=("netpol",),
    ),
    Resource(
        "deployments",
        "Deployment",
        group="apps",
        short_names=("deploy",),
        status=True,
    ),
    Resource(
        "replicasets", "ReplicaSet", group="apps", short_names=("rs",), status=True
    ),
    Resource("endpointslices", "EndpointSlice", group="discovery.k8s.io"),
    Resource(
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        group="policy",
        short_names=("pdb",),
        status=True,
    ),
    Resource("leases", "Lease", group="coordination.k8s.io"),
    Resource(
        "customresourcedefinitions",
        "CustomResourceDefinition",
        group=_APIEXT,
        namespaced=False,
        short_names=("crd", "crds"),
        status=True,
    ),
    Resource("roles", "Role", group=_RBAC),
    Resource("rolebindings", "RoleBinding", group=_RBAC),
    Resource("clusterroles", "ClusterRole", group=_RBAC, namespaced=False),
    Resource(
        "clusterrolebindings", "ClusterRoleBinding", group=_RBAC, namespaced=False
    ),
    Resource(
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        group=_AUTHZ,
        namespaced=False,
        verbs=("create",),
    ),
    Resource(
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        group=_AUTHZ,
        namespaced=False,
        verbs=("create",),
    ),
    Resource(
        "subjectaccessreviews",
        "SubjectAccessReview",
        group=_AUTHZ,
        namespaced=False,
        verbs=("create",),
    ),
    Resource(
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        group=_AUTHZ,
        verbs=("create",),
    ),
)

RESOURCES: dict[str, Resource] = {r.plural: r for r in _ALL}
"""Every served resource by plural name."""

GROUPS: dict[str, tuple[str, ...]] = {
    "": ("v1",),
    "storage.k8s.io": ("v1",),
    "scheduling.k8s.io": ("v1",),
    "networking.k8s.io": ("v1",),
    "apps": ("v1",),
    "discovery.k8s.io": ("v1",),
    "policy": ("v1",),
    "coordination.k8s.io": ("v1",),
    _APIEXT: ("v1",),
    _RBAC: ("v1",),
    _AUTHZ: ("v1",),
}
"""Served API groups and their versions (the core group is ``""``)."""

SUBRESOURCES: dict[str, tuple[str, ...]] = {
    "pods": (
        "status",
        "log",
        "binding",
        "eviction",
        "exec",
        "attach",
        "portforward",
    ),
    "nodes": ("status",),
    "persistentvolumeclaims": ("status",),
    "persistentvolumes": ("status",),
    "services": ("status",),
    "namespaces": ("status", "finalize"),
    "resourcequotas": ("status",),
    "deployments": ("status", "scale"),
    "replicasets": ("status", "scale"),
    "poddisruptionbudgets": ("status",),
    "customresourcedefinitions": ("status",),
}
"""Subresources by plural name, for discovery and routing."""


def resource(plural: str) -> Resource:
    """Return the registry entry of a plural name.

    Raises:
        KeyError: the resource is not served.
    """
    return RESOURCES[plural]


def in_group(group: str, version: str) -> list[Resource]:
    """Return the resources of one group/version, in registry order."""
    return [
        r
        for r in (*_ALL, *_CUSTOM.values())
        if r.group == group and r.version == version
    ]


_CUSTOM: dict[str, Resource] = {}
"""Served custom resources by plural name (:mod:`devcluster.apiserver.crds`)."""


def register_custom(res: Resource, subresources: tuple[str, ...]) -> None:
    """Serve a custom resource (an established CustomResourceDefinition).

    The registry is the process's, like the apiserver's: every devcluster in
    one process serves the custom resources any of them defined.

    Raises:
        ValueError: the plural name belongs to a built-in resource.
    """
    builtin = RESOURCES.get(res.plural)
    if builtin is not None and res.plural not in _CUSTOM:
        raise ValueError(f"{res.plural} is a built-in resource")
    _CUSTOM[res.plural] = RESOURCES[res.plural] = res
    SUBRESOURCES[res.plural] = subresources
    versions = GROUPS.get(res.group, ())
    if res.version not in versions:
        GROUPS[res.group] = (*versions, res.version)


def status_reset_on_create(res: Resource) -> bool:
    """Tell whether a create drops the sent ``status`` (custom resources with a
    status subresource and CustomResourceDefinitions, as their strategies'
    PrepareForCreate do)."""
    return res.plural == "customresourcedefinitions" or (
        res.status and res.plural in _CUSTOM
    )


def unregister_custom(plural: str) -> None:
    """Stop serving a custom resource (its definition was deleted)."""
    res = _CUSTOM.pop(plural, None)
    if res is None:
        return
    RESOURCES.pop(plural, None)
    SUBRESOURCES.pop(plural, None)
    left = {r.version for r in _CUSTOM.values() if r.group == res.group}
    if not left:
        GROUPS.pop(res.group, None)
    else:
        GROUPS[res.group] = tuple(v for v in GROUPS[res.group] if v in left)
