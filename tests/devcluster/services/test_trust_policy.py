"""A role's trust policy for web identities (devcluster.services.trust_policy)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devcluster.services import trust_policy

PROVIDER = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
ARN = f"arn:aws:iam::123456789012:oidc-provider/{PROVIDER}"
SUB, AUD, AMR = (f"{PROVIDER}:{key}" for key in ("sub", "aud", "amr"))
CONTEXT = {
    f"{PROVIDER}:sub": "system:serviceaccount:jhub:team-a",
    f"{PROVIDER}:aud": "sts.amazonaws.com",
}


def _allow(**statement: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Federated": ARN},
        "Action": "sts:AssumeRoleWithWebIdentity",
        **statement,
    }


@pytest.mark.parametrize(
    ("statements", "allowed"),
    [
        pytest.param([_allow()], True, id="no-condition"),
        pytest.param(
            [_allow(Condition={"StringEquals": {SUB: CONTEXT[SUB]}})],
            True,
            id="sub-equals",
        ),
        pytest.param(
            [_allow(Condition={"StringEquals": {SUB: "system:serviceaccount:jhub:b"}})],
            False,
            id="other-sub",
        ),
        pytest.param(
            [_allow(Condition={"StringLike": {SUB: "system:serviceaccount:jhub:*"}})],
            True,
            id="sub-like",
        ),
        pytest.param(
            [_allow(Condition={"StringEquals": {AUD: ["x", "sts.amazonaws.com"]}})],
            True,
            id="aud-list",
        ),
        pytest.param(
            [_allow(Condition={"StringEquals": {AMR: "authenticated"}})],
            False,
            id="missing-key",
        ),
        pytest.param(
            [_allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}})],
            False,
            id="unknown-operator-fails-closed",
        ),
        pytest.param(
            [_allow(Principal={"Federated": ARN + "X"})], False, id="other-provider"
        ),
        pytest.param([_allow(Principal={"AWS": "*"})], False, id="aws-principal"),
        pytest.param([_allow(Action="sts:AssumeRole")], False, id="other-action"),
        pytest.param([_allow(Action="sts:*")], True, id="action-wildcard"),
        pytest.param([_allow(), {**_allow(), "Effect": "Deny"}], False, id="deny-wins"),
        pytest.param([], False, id="empty"),
    ],
)
def test_allows(statements: list[dict[str, Any]], allowed: bool) -> None:
    document = {"Version": "2012-10-17", "Statement": statements}
    assert trust_policy.allows(document, ARN, CONTEXT) is allowed


def test_json_text_and_single_statement() -> None:
    assert trust_policy.allows(json.dumps({"Statement": _allow()}), ARN, CONTEXT)
