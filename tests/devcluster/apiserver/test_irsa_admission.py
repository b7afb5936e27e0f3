"""The pod identity webhook's mutation (devcluster.apiserver.irsa), as pure data."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.apiserver import irsa

ROLE = "arn:aws:iam::123456789012:role/team-a"
SETTINGS = irsa.IrsaSettings("eu-west-1", "http://127.0.0.1:5000")


def _lister(annotations: dict[str, str] | None) -> Any:
    account = {"metadata": {"name": "team-a", "namespace": "jhub"}}
    if annotations is not None:
        account["metadata"]["annotations"] = annotations  # type: ignore[index]
    return lambda plural: [account] if plural == "serviceaccounts" else []


def _pod(**extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "jhub", **extra.pop("meta", {})},
        "spec": {
            "serviceAccountName": "team-a",
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "main", **extra.pop("main", {})}],
        },
    }


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in container.get("env") or []}


def test_role_gives_every_container_the_web_identity() -> None:
    pod = _pod()
    assert irsa.mutate_pod(pod, _lister({irsa.ROLE_ARN: ROLE}), SETTINGS)
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert _env(container) == {
            "AWS_ROLE_ARN": ROLE,
            "AWS_WEB_IDENTITY_TOKEN_FILE": irsa.TOKEN_FILE,
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "AWS_STS_REGIONAL_ENDPOINTS": "regional",
            "AWS_ENDPOINT_URL": SETTINGS.endpoint,
            "AWS_ENDPOINT_URL_STS": SETTINGS.endpoint,
        }
        assert container["volumeMounts"] == [
            {"name": irsa.VOLUME, "mountPath": irsa.MOUNT_PATH, "readOnly": True}
        ]
    [volume] = pod["spec"]["volumes"]
    assert volume["projected"]["sources"] == [
        {
            "serviceAccountToken": {
                "audience": "sts.amazonaws.com",
                "expirationSeconds": 86400,
                "path": "token",
            }
        }
    ]


def test_no_role_changes_nothing() -> None:
    pod = _pod()
    before = repr(pod)
    assert not irsa.mutate_pod(pod, _lister({}), SETTINGS)
    assert not irsa.mutate_pod(pod, _lister(None), SETTINGS)
    assert repr(pod) == before


def test_variables_the_container_sets_are_left_alone() -> None:
    """A group of variables set in part (region, endpoint) is not added to."""
    own = [
        {"name": "AWS_REGION", "value": "us-west-2"},
        {"name": "AWS_ENDPOINT_URL_STS", "value": "http://sts.local"},
    ]
    pod = _pod(main={"env": list(own)})
    irsa.mutate_pod(pod, _lister({irsa.ROLE_ARN: ROLE}), SETTINGS)
    env = _env(pod["spec"]["containers"][0])
    assert env["AWS_REGION"] == "us-west-2"
    assert "AWS_DEFAULT_REGION" not in env and "AWS_ENDPOINT_URL" not in env
    assert env["AWS_ENDPOINT_URL_STS"] == "http://sts.local"
    assert env["AWS_ROLE_ARN"] == ROLE


@pytest.mark.parametrize(
    ("sa_notes", "pod_notes", "expected"),
    [
        pytest.param({irsa.TOKEN_EXPIRATION: "3600"}, {}, 3600, id="sa"),
        pytest.param(
            {irsa.TOKEN_EXPIRATION: "3600"},
            {irsa.TOKEN_EXPIRATION: "7200"},
            7200,
            id="pod-wins",
        ),
        pytest.param({irsa.TOKEN_EXPIRATION: "60"}, {}, 600, id="at-least-600"),
        pytest.param({irsa.TOKEN_EXPIRATION: "999999"}, {}, 86400, id="at-most-day"),
        pytest.param({irsa.TOKEN_EXPIRATION: "soon"}, {}, 86400, id="invalid"),
    ],
)
def test_token_expiration_annotations(
    sa_notes: dict[str, str], pod_notes: dict[str, str], expected: int
) -> None:
    pod = _pod(meta={"annotations": pod_notes})
    irsa.mutate_pod(pod, _lister({irsa.ROLE_ARN: ROLE, **sa_notes}), SETTINGS)
    source = pod["spec"]["volumes"][0]["projected"]["sources"][0]
    assert source["serviceAccountToken"]["expirationSeconds"] == expected


def test_skipped_containers_regional_opt_out_and_audience() -> None:
    pod = _pod(meta={"annotations": {irsa.SKIP_CONTAINERS: "init, other"}})
    notes = {irsa.ROLE_ARN: ROLE, irsa.REGIONAL_STS: "false", irsa.AUDIENCE: "mine"}
    irsa.mutate_pod(pod, _lister(notes), SETTINGS)
    assert "env" not in pod["spec"]["initContainers"][0]
    assert "AWS_STS_REGIONAL_ENDPOINTS" not in _env(pod["spec"]["containers"][0])
    source = pod["spec"]["volumes"][0]["projected"]["sources"][0]
    assert source["serviceAccountToken"]["audience"] == "mine"
