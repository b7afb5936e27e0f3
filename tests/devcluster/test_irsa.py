"""IAM roles for service accounts on devcluster, end to end over HTTP.

A cluster with the session's moto server: its issuer registered with moto's STS
layer, an IAM OIDC provider for it, a role per team that trusts one
ServiceAccount, and pods whose processes use plain boto3 with no keys.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import botocore.exceptions
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from devcluster.apiserver import irsa
from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.services.eks_world import create_eks_world
from devcluster.services.moto_server import MotoServer, make_client
from tests.devcluster.cluster_support import Api, ended, pod_manifest

NS = "jhub"
AUDIENCE = "sts.amazonaws.com"
ACCOUNT = "123456789012"
"""moto's default account."""
SA = f"system:serviceaccount:{NS}:"

# What the pod runs: the SDK's own credential chain, no keys anywhere.
POD_SCRIPT = textwrap.dedent(
    """
    import json, os, boto3, botocore.exceptions
    out = {"token": open(os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]).read()}
    out["caller"] = boto3.client("sts").get_caller_identity()["Arn"]
    s3 = boto3.client("s3")
    out["team_a"] = s3.get_object(Bucket="team-a", Key="x.csv")["Body"].read().decode()
    def attempt(name, call, **params):
        try:
            call(**params)
            out[name] = "done"
        except botocore.exceptions.ClientError as exc:
            out[name] = exc.response["Error"]["Code"]
    attempt("team_b", s3.get_object, Bucket="team-b", Key="y.csv")
    attempt("team_a_write", s3.put_object, Bucket="team-a", Key="new", Body=b"x")
    print(json.dumps(out))
    """
)


@pytest.fixture
async def irsa_cluster(
    fast_config: ClusterConfig, moto: MotoServer
) -> AsyncIterator[Cluster]:
    """A cluster whose EKS cluster moto records (as the demo's), so its issuer."""
    create_eks_world(
        moto.client("ec2"),
        moto.client("eks"),
        fast_config.cluster_name,
        fast_config.zones,
    )
    async with Cluster(
        fast_config, aws_endpoint=moto.endpoint_url, controllers=False
    ) as c:
        yield c


def _trust(provider_arn: str, provider: str, account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{provider}:aud": AUDIENCE,
                            f"{provider}:sub": SA + account,
                        }
                    },
                }
            ],
        }
    )


def _s3_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def _account_setup(moto: MotoServer, issuer: str) -> dict[str, str]:
    """Buckets, the OIDC provider and the role ``team-a`` trusting SA ``team-a``."""
    s3, iam = moto.client("s3"), moto.client("iam")
    objects = (("team-a", "x.csv", "a,b\n1,2\n"), ("team-b", "y.csv", "z"))
    for bucket, key, body in objects:
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    provider_arn = iam.create_open_id_connect_provider(
        Url=issuer, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    provider = issuer.removeprefix("https://")
    role = iam.create_role(
        RoleName="team-a",
        AssumeRolePolicyDocument=_trust(provider_arn, provider, "team-a"),
    )["Role"]
    iam.put_role_policy(
        RoleName="team-a", PolicyName="s3", PolicyDocument=_s3_policy("team-a")
    )
    return {"provider_arn": provider_arn, "role_arn": role["Arn"]}


async def _service_account(
    api: Api, name: str, annotations: dict[str, str] | None = None
) -> None:
    body: dict[str, Any] = {"metadata": {"name": name}}
    if annotations:
        body["metadata"]["annotations"] = annotations
    status, created = await api.call(
        "POST", f"/api/v1/namespaces/{NS}/serviceaccounts", body
    )
    assert status == 201, created


async def test_pod_with_a_role_reads_its_bucket_and_is_denied_another(
    irsa_cluster: Cluster, moto: MotoServer
) -> None:
    """Plain boto3 in the pod: web identity → STS → S3 allowed and denied."""
    eks = moto.client("eks").describe_cluster(name=irsa_cluster.config.cluster_name)
    assert irsa_cluster.oidc_issuer == eks["cluster"]["identity"]["oidc"]["issuer"]
    ids = _account_setup(moto, irsa_cluster.oidc_issuer)
    async with aiohttp.ClientSession() as session:
        api = Api(session, irsa_cluster.url)
        await _service_account(api, "team-a", {irsa.ROLE_ARN: ids["role_arn"]})
        pod = pod_manifest(
            "reader",
            ["python", "-c", POD_SCRIPT],
            serviceAccountName="team-a",
            restartPolicy="Never",
        )
        status, created = await api.call("POST", f"/api/v1/namespaces/{NS}/pods", pod)
        assert status == 201, created
        phase, log = await ended(irsa_cluster, NS, "reader", 60)
        assert phase == "Succeeded", log
        out = json.loads(log.strip().splitlines()[-1])
        assert out["team_a"] == "a,b\n1,2\n"
        assert out["team_b"] == "AccessDenied"
        assert out["team_a_write"] == "AccessDenied"  # the role only reads
        assert out["caller"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/team-a/")

        # the token file verifies against the JWKS the API publishes
        async with session.get(
            irsa_cluster.url + "/.well-known/openid-configuration"
        ) as resp:
            discovery = await resp.json()
        async with session.get(discovery["jwks_uri"]) as resp:
            keys = KeySet.import_key_set(await resp.json())
    assert discovery["issuer"] == irsa_cluster.oidc_issuer
    token = jwt.decode(out["token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": irsa_cluster.oidc_issuer},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True, "value": SA + "team-a"},
        exp={"essential": True},
    ).validate(token.claims)
    assert token.claims["exp"] - token.claims["iat"] == irsa.DEFAULT_EXPIRATION_S


async def test_pod_without_a_role_gets_no_aws_environment(
    irsa_cluster: Cluster, api_for_irsa: Api
) -> None:
    await _service_account(api_for_irsa, "plain")
    status, created = await api_for_irsa.call(
        "POST",
        f"/api/v1/namespaces/{NS}/pods",
        pod_manifest("plain", ["true"], serviceAccountName="plain"),
    )
    assert status == 201, created
    container = created["spec"]["containers"][0]
    assert not [v for v in container.get("env") or [] if v["name"].startswith("AWS_")]
    assert irsa.VOLUME not in [v["name"] for v in created["spec"]["volumes"]]


@pytest.fixture
async def api_for_irsa(irsa_cluster: Cluster) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, irsa_cluster.url)


async def _assume(moto: MotoServer, role_arn: str, token: str) -> dict[str, Any]:
    """AssumeRoleWithWebIdentity in a thread: STS reads the JWKS from this loop."""
    sts = make_client("sts", moto.endpoint_url)
    found = await asyncio.to_thread(
        sts.assume_role_with_web_identity,
        RoleArn=role_arn,
        RoleSessionName="pod-session",
        WebIdentityToken=token,
    )
    return dict(found)


@pytest.mark.parametrize(
    ("subject", "audience", "code"),
    [
        pytest.param(SA + "team-a", AUDIENCE, "", id="trusted"),
        pytest.param(SA + "team-b", AUDIENCE, "AccessDenied", id="other-sa"),
        pytest.param(SA + "team-a", "other", "InvalidIdentityToken", id="audience"),
    ],
)
async def test_sts_checks_the_token_and_the_trust_policy(
    irsa_cluster: Cluster, moto: MotoServer, subject: str, audience: str, code: str
) -> None:
    ids = _account_setup(moto, irsa_cluster.oidc_issuer)
    token = irsa_cluster.issuer.token(subject, [audience], 600)
    if not code:
        found = await _assume(moto, ids["role_arn"], token)
        user = found["AssumedRoleUser"]["Arn"]
        assert user == f"arn:aws:sts::{ACCOUNT}:assumed-role/team-a/pod-session"
        return
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await _assume(moto, ids["role_arn"], token)
    assert caught.value.response["Error"]["Code"] == code


async def test_sts_refuses_expired_forged_and_unknown_tokens(
    irsa_cluster: Cluster, moto: MotoServer
) -> None:
    ids = _account_setup(moto, irsa_cluster.oidc_issuer)
    subject = SA + "team-a"
    expired = irsa_cluster.issuer.token(subject, [AUDIENCE], 600, now=1_000_000)
    stranger = type(irsa_cluster.issuer)(irsa_cluster.oidc_issuer)
    forged = stranger.token(subject, [AUDIENCE], 600)
    unknown = type(irsa_cluster.issuer)("https://elsewhere.example")
    for token, code in (
        (expired, "ExpiredTokenException"),
        (forged, "InvalidIdentityToken"),
        (unknown.token(subject, [AUDIENCE], 600), "InvalidIdentityToken"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            await _assume(moto, ids["role_arn"], token)
        assert caught.value.response["Error"]["Code"] == code


async def test_two_clusters_of_one_eks_name_share_the_issuer(
    irsa_cluster: Cluster, moto: MotoServer, tmp_path: Path
) -> None:
    """A second devcluster of the same EKS cluster neither hides nor drops the first."""
    ids = _account_setup(moto, irsa_cluster.oidc_issuer)
    config = ClusterConfig(time_factor=0.01, state_dir=str(tmp_path / "second"))
    async with Cluster(config, aws_endpoint=moto.endpoint_url, controllers=False) as c:
        assert c.oidc_issuer == irsa_cluster.oidc_issuer
        for issuer in (c.issuer, irsa_cluster.issuer):
            token = issuer.token(SA + "team-a", [AUDIENCE], 600)
            await _assume(moto, ids["role_arn"], token)
    # the second one stopped: the first's tokens still verify
    token = irsa_cluster.issuer.token(SA + "team-a", [AUDIENCE], 600)
    await _assume(moto, ids["role_arn"], token)
