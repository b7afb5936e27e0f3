"""The state data access is planned from and towards: target, what exists, actions.

This module owns the shapes :mod:`~wbspawner.data.plan` and
:mod:`~wbspawner.data.volumes` share, :mod:`~wbspawner.data.observe` fills and
:mod:`~wbspawner.data.apply` runs: where roles are made (:class:`Target`), what
IAM and Kubernetes hold (:class:`Observed`), one call of a plan
(:class:`Action`), and the names of the role's inline policy and tags.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from wbspawner.model import LABEL_PREFIX

JsonDict = dict[str, Any]
POLICY_NAME = "wbspawner-data"
"""The role's one inline policy."""
CLUSTER_TAG = f"{LABEL_PREFIX}/cluster"
KEY_TAG = f"{LABEL_PREFIX}/data-key"
GROUPS_TAG = f"{LABEL_PREFIX}/groups"
"""Groups whose own grants the role holds, space-separated."""

ActionKind = Literal[
    "create-role",
    "put-role-policy",
    "update-trust",
    "tag-role",
    "create-service-account",
    "update-service-account",
    "create-volume",
    "create-claim",
    "delete-service-account",
    "delete-claim",
    "delete-volume",
    "delete-role",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where the access is made: the cluster, its account and OIDC issuer."""

    cluster: str
    account: str
    issuer: str
    """The cluster's OIDC issuer URL (``describe_cluster`` ``identity.oidc.issuer``)."""
    namespaces: tuple[str, ...]
    """The hub's namespace, then the Dask one when it is another."""
    partition: str = "aws"

    def role_arn(self, name: str) -> str:
        """Return the ARN of a role of this account."""
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedRole:
    """A data role of the cluster as IAM holds it."""

    name: str
    trust: Mapping[str, Any] | None = None
    policy: Mapping[str, Any] | None = None
    """The ``wbspawner-data`` inline policy (``None``: missing)."""
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups its tag names."""
        return tuple(self.tags.get(GROUPS_TAG, "").split())


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What exists now: the cluster's data roles and wbspawner's data objects."""

    roles: Mapping[str, ObservedRole] = field(default_factory=dict)
    service_accounts: Mapping[tuple[str, str], JsonDict] = field(default_factory=dict)
    """By ``(namespace, name)``, those labelled ``wbspawner.io/data=access``."""
    volumes: Mapping[str, JsonDict] = field(default_factory=dict)
    """PersistentVolumes labelled ``wbspawner.io/data=volume``, by name."""
    claims: Mapping[tuple[str, str], JsonDict] = field(default_factory=dict)
    """Claims labelled ``wbspawner.io/data=volume``, by ``(namespace, name)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One call of a plan."""

    kind: ActionKind
    target: str
    """The role, ``namespace/name`` of a namespaced object, or a volume name."""
    detail: str
    params: JsonDict = field(default_factory=dict)
