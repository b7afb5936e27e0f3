"""The IAM documents of a data role: exact S3 actions, OIDC trust, read back."""

from __future__ import annotations

import pytest

from wbspawner.data import iam
from wbspawner.model import S3Grant


def _grant(bucket: str, prefix: str = "", access: str = "read") -> S3Grant:
    return S3Grant(bucket=bucket, prefix=prefix, access=access)  # type: ignore[arg-type]


def test_read_of_a_prefix_lists_and_gets_under_it_only() -> None:
    assert iam.role_policy([_grant("b", "in/")]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "List0",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:aws:s3:::b"],
                "Condition": {"StringLike": {"s3:prefix": ["in/*"]}},
            },
            {
                "Sid": "Objects0",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::b/in/*"],
            },
        ],
    }


def test_write_of_a_bucket_adds_put_and_delete() -> None:
    listing, objects = iam.role_policy([_grant("b", access="read-write")])["Statement"]
    assert "Condition" not in listing
    assert objects["Action"] == [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    ]
    assert objects["Resource"] == ["arn:aws:s3:::b/*"]


@pytest.mark.parametrize(
    "grants",
    [
        [_grant("a"), _grant("b", "x/y/", "read-write")],
        [_grant("a", access="read-write")],
        [],
    ],
)
def test_grants_read_back_from_the_policy(grants: list[S3Grant]) -> None:
    assert iam.grants_of_policy(iam.role_policy(grants)) == tuple(grants)


def test_same_document_reads_single_items_as_iam_returns_them() -> None:
    ours = iam.trust_policy("arn:p", "https://issuer/id/X", ["s1"])
    theirs = {
        "Statement": [
            {
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "issuer/id/X:aud": "sts.amazonaws.com",
                        "issuer/id/X:sub": "s1",
                    }
                },
                "Effect": "Allow",
                "Principal": {"Federated": "arn:p"},
            }
        ],
        "Version": "2012-10-17",
    }
    assert iam.same_document(ours, theirs)
    assert not iam.same_document(ours, iam.trust_policy("arn:p", "issuer/id/X", ["s2"]))


@pytest.mark.parametrize(
    ("issuer", "host"),
    [
        (
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "oidc.eks.us-east-1.amazonaws.com/id/ABC",
        ),
        ("https://127.0.0.1:8443/", "127.0.0.1:8443"),
        ("oidc.example.org/x", "oidc.example.org/x"),
    ],
)
def test_issuer_host_path(issuer: str, host: str) -> None:
    assert iam.issuer_host_path(issuer) == host
    assert iam.provider_arn("1", issuer) == f"arn:aws:iam::1:oidc-provider/{host}"
