"""What the data-access tests do as an operator: buckets, the OIDC provider, apply.

Each function takes the variables that point ``wbspawner`` at a stack
(:func:`devcluster.demo.cli_env.cli_environment`: its moto server, the
demo's dummy keys, the kubeconfig and the cluster name).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import boto3

CSV = "city,rain_mm\nBergen,2250\nCairo,18\n"
"""``x.csv`` in both buckets."""
ROWS = [["Bergen", 2250], ["Cairo", 18]]
"""Its rows as pandas reads them."""
BUCKETS = ("team-a", "team-b")
"""bob's group may read the first; nobody the second."""


def aws(cli_env: Mapping[str, str], service: str) -> Any:
    """A client of the stack's moto with the demo's dummy keys (the admin's)."""
    return boto3.client(
        service,
        endpoint_url=cli_env["AWS_ENDPOINT_URL"],
        region_name=cli_env["AWS_REGION"],
        aws_access_key_id=cli_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cli_env["AWS_SECRET_ACCESS_KEY"],
    )


def seed_buckets(cli_env: Mapping[str, str]) -> None:
    """Create :data:`BUCKETS`, each holding ``x.csv``."""
    s3 = aws(cli_env, "s3")
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="x.csv", Body=CSV.encode())


def associate_oidc_provider(cli_env: Mapping[str, str], cluster: str) -> str:
    """What ``eksctl utils associate-iam-oidc-provider`` does: IAM trusts the
    cluster's issuer (the one EKS DescribeCluster gives) for STS."""
    described = aws(cli_env, "eks").describe_cluster(name=cluster)
    issuer = str(described["cluster"]["identity"]["oidc"]["issuer"])
    aws(cli_env, "iam").create_open_id_connect_provider(
        Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9" * 40]
    )
    return issuer


def data_cli(
    cli_env: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``wbspawner data ...`` as an admin runs it with the stack's variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(cli_env)
    return subprocess.run(
        [sys.executable, "-m", "wbspawner.cli.main", "data", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def grant_data(cli_env: Mapping[str, str], cluster: str, *args: str) -> str:
    """Seed the buckets, associate the OIDC provider and run ``data apply``.

    What an operator does before users start when the profiles have a data
    section (docs/deploy-eks.md); ``args`` go to ``data apply`` (namespaces).

    Returns:
        What ``data apply`` printed.
    """
    seed_buckets(cli_env)
    associate_oidc_provider(cli_env, cluster)
    applied = data_cli(cli_env, "apply", *args)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "failed" not in applied.stdout, applied.stdout
    return applied.stdout
