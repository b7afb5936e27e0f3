"""The IAM documents of a data role: what it may do in S3, and who may assume it.

This module owns the policy documents of IRSA (IAM roles for service accounts):

- :func:`role_policy`: exactly the S3 actions of the grants. Reading a bucket
  prefix is ``s3:ListBucket`` on the bucket, limited to the prefix by the
  ``s3:prefix`` condition, and ``s3:GetObject`` on the keys under it; writing adds
  ``s3:PutObject``, ``s3:DeleteObject`` and ``s3:AbortMultipartUpload`` (a failed
  large upload is cleaned up) on those keys. Nothing else: no other bucket, no
  bucket settings.
- :func:`trust_policy`: the cluster's OIDC provider may hand the role to the
  ServiceAccount ``system:serviceaccount:<namespace>:<name>`` of each namespace
  (the hub's, and the Dask one), for the audience ``sts.amazonaws.com``.
- :func:`grants_of_policy`: the grants a role policy written here holds, so that
  a plan says which grants an applied role has.
- :func:`same_document`: whether two documents mean the same (IAM returns
  single-item lists as strings, and keys in its own order).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from wbspawner.model import S3Grant

JsonDict = dict[str, Any]

POLICY_VERSION = "2012-10-17"
READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
AUDIENCE = "sts.amazonaws.com"
"""The audience of the projected token (the EKS pod identity webhook's default)."""


def issuer_host_path(issuer: str) -> str:
    """Return an OIDC issuer URL without its scheme, as IAM names the provider.

    Args:
        issuer: e.g. ``https://oidc.eks.us-east-1.amazonaws.com/id/ABC``.

    Returns:
        e.g. ``oidc.eks.us-east-1.amazonaws.com/id/ABC``.
    """
    parts = urlsplit(issuer if "://" in issuer else f"https://{issuer}")
    return f"{parts.netloc}{parts.path}".rstrip("/")


def provider_arn(account: str, issuer: str, partition: str = "aws") -> str:
    """Return the ARN of the IAM OIDC provider of an issuer."""
    return f"arn:{partition}:iam::{account}:oidc-provider/{issuer_host_path(issuer)}"


def subject(namespace: str, service_account: str) -> str:
    """Return the token subject of a ServiceAccount."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def _keys(bucket: str, prefix: str) -> str:
    return f"arn:aws:s3:::{bucket}/{prefix}*"


def role_policy(grants: Sequence[S3Grant]) -> JsonDict:
    """Return the permission policy of a role holding these grants.

    Args:
        grants: merged grants (:func:`wbspawner.profiles.data_access.union_grants`).

    Returns:
        The policy document: per grant a ``List<i>`` and an ``Objects<i>``
        statement.
    """
    statements: list[JsonDict] = []
    for i, g in enumerate(grants):
        listing: JsonDict = {
            "Sid": f"List{i}",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{g.bucket}"],
        }
        if g.prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{g.prefix}*"]}}
        actions = [*READ_ACTIONS, *(WRITE_ACTIONS if g.writes else ())]
        statements += [
            listing,
            {
                "Sid": f"Objects{i}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": [_keys(g.bucket, g.prefix)],
            },
        ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def trust_policy(provider: str, issuer: str, subjects: Iterable[str]) -> JsonDict:
    """Return the trust policy that lets these ServiceAccounts assume the role.

    Args:
        provider: the OIDC provider's ARN (:func:`provider_arn`).
        issuer: the cluster's OIDC issuer URL.
        subjects: ``system:serviceaccount:<ns>:<name>`` of each namespace.

    Returns:
        The policy document.
    """
    host = issuer_host_path(issuer)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:sub": sorted(subjects),
                        f"{host}:aud": AUDIENCE,
                    }
                },
            }
        ],
    }


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def grants_of_policy(doc: Mapping[str, Any] | None) -> tuple[S3Grant, ...]:
    """Return the grants a policy from :func:`role_policy` holds.

    Args:
        doc: the policy document as IAM returns it (or ``None``).

    Returns:
        One grant per object statement (statements of another form are ignored).
    """
    found: list[S3Grant] = []
    for st in _as_list((doc or {}).get("Statement")):
        if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
            continue
        actions = set(_as_list(st.get("Action")))
        if "s3:GetObject" not in actions:
            continue
        for resource in _as_list(st.get("Resource")):
            arn = str(resource)
            if not arn.startswith("arn:aws:s3:::") or not arn.endswith("*"):
                continue
            bucket, _, prefix = arn.removeprefix("arn:aws:s3:::")[:-1].partition("/")
            writes = set(WRITE_ACTIONS) <= actions
            found.append(
                S3Grant(
                    bucket=bucket,
                    prefix=prefix,
                    access="read-write" if writes else "read",
                )
            )
    return tuple(sorted(found, key=lambda g: (g.bucket, g.prefix)))


def _normal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = sorted((_normal(v) for v in value), key=repr)
        return items[0] if len(items) == 1 else items
    return value


def same_document(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Return whether two policy documents say the same.

    Args:
        a: a document (``None``: none).
        b: another.

    Returns:
        Equal after sorting keys and lists and reading one-item lists as items.
    """
    return bool(_normal(a or {}) == _normal(b or {}))
