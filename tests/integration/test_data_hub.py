"""Data access end to end: bob reads his group's bucket from his server, no keys.

The real stack (slapd, PostgreSQL, devcluster over HTTP with its moto, the hub
and configurable-http-proxy) on the shipped profiles plus a ``data`` section:
bob's group ``jupyter-users`` may read ``s3://team-a/`` (nothing of
``team-b``) and mounts a read-only EFS share. In order:

1. bob starts a server before any ``wbspawner data apply``: the API server
   refuses the pod (its ServiceAccount does not exist) and the hub says what
   to do.
2. The IAM OIDC provider of devcluster's issuer is created as an operator
   does with ``eksctl utils associate-iam-oidc-provider``, then the real
   ``wbspawner data apply`` runs against moto and devcluster.
3. bob starts his server; in a kernel the README's notebook example
   (``docs/examples/data-access-notebook.py``) reads ``s3://team-a/x.csv``
   with pandas (s3fs, the pod's IRSA web identity through devcluster's STS)
   and is refused ``s3://team-b/`` with AccessDenied. No AWS key is in the
   pod's environment, the kernel's, or bob's home.
4. The read-only share refuses a write from his kernel ("Read-only file
   system"). devcluster runs the pod on this machine without container paths,
   so the kernel reaches the share at its host directory (which the kubelet
   binds read-only for the pod).

bob's server runs in the single-user image's environment (``make image-envs``
builds it from images/singleuser/Dockerfile with images/versions.env): s3fs is
the image's, with the botocore its aiobotocore pins, older than the test
environment's, which therefore has no s3fs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.demo.workbench import NAMESPACE, Workbench
from devcluster.services.ldap import LdapServer
from tests.integration.data_support import (
    associate_oidc_provider,
    data_cli,
    seed_buckets,
)
from tests.integration.hub_harness import (
    HubUser,
    error_on,
    leave_stopped,
    pod_of,
    stack_on_profiles,
    wait_until,
)
from tests.integration.kernel_support import execute, start_kernel
from tests.paths import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

DATA = """data:
  groups:
    jupyter-users:
      s3:
        - bucket: team-a
      volumes:
        - name: shared-datasets
          mount_path: /srv/shared-datasets
          efs:
            file_system_id: fs-0123456789abcdef0
"""
"""bob's group reads team-a and mounts a share (read-only: the default)."""

NOTEBOOK = REPO / "docs" / "examples" / "data-access-notebook.py"
SINGLEUSER_ENV = REPO / ".cache" / "images" / "singleuser"


@pytest.fixture(scope="module")
def bench(
    ldap_server: LdapServer,
    stack_databases: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    server = SINGLEUSER_ENV / "bin" / "jupyterhub-singleuser"
    if not server.exists():
        pytest.fail(
            f"{server} is missing: build the image environments first (make image-envs)"
        )
    with stack_on_profiles(
        tmp_path_factory.mktemp("data_hub"),
        {"80-data.yaml": DATA},
        time_factor=0.02,
        pools=["cpu4"],
        zones=["us-east-1b"],
        ldap=ldap_server,
        capacity_grace_s=1.0,
        warmer=False,
        culler_interval=None,
        singleuser_cmd=[str(server)],
        **stack_databases("data_hub"),
    ) as workbench:
        yield workbench


def _start_small(bob: HubUser) -> list[dict[str, Any]]:
    bob.form()
    response = bob.spawn({"profile": "small"})
    assert response.status_code == 302, error_on(response.text) or response.text[:300]
    return bob.progress(timeout=180)


def _claim_dir(bench: Workbench, claim_name: str) -> Path:
    """A bound claim's directory on this machine (devcluster's volume of its PV)."""
    kube = bench.kube
    assert kube is not None
    path = f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/{claim_name}"

    def bound() -> dict[str, Any] | None:
        claim = kube.get(path)
        return claim if claim and claim["status"].get("phase") == "Bound" else None

    claim = wait_until(bound, 30, f"claim {claim_name} bound", 0.2)
    return bench.state_dir / "cluster" / "volumes" / claim["spec"]["volumeName"]


PROBE = """
import os, botocore.session
print("aws-keys:", sorted(k for k in os.environ if k in (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
print("credentials:", botocore.session.get_session().get_credentials().method)
s3 = botocore.session.get_session().create_client("s3")
try:
    s3.get_object(Bucket="team-b", Key="x.csv")
except s3.exceptions.ClientError as err:
    print("team-b:", err.response["Error"]["Code"])
share = {share!r}
print("share:", open(os.path.join(share, "README.txt")).read().strip())
try:
    open(os.path.join(share, "bob-was-here.txt"), "w").write("x")
except OSError as err:
    print("write:", err.strerror)
"""


def test_bob_reads_his_groups_bucket_with_no_keys(
    bench: Workbench, bob: HubUser
) -> None:
    assert bench.kube is not None
    try:
        # 1. No ServiceAccount yet: the API server refuses the pod, and the spawn
        # form says why (the start fails at once, no progress page).
        bob.form()
        refused = bob.spawn({"profile": "small"})
        assert refused.status_code == 503, refused.text[:300]
        said = error_on(refused.text)
        assert "Ask an admin to run `wbspawner data apply`" in said, said
        assert pod_of(bench.kube, "bob") is None
        leave_stopped(bench, bob)

        # 2. The OIDC provider as eksctl makes it, then the real data apply.
        assert bench.cluster is not None
        seed_buckets(bench.cli_env)
        associate_oidc_provider(bench.cli_env, bench.cluster.cluster)
        applied = data_cli(bench.cli_env, "apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "failed" not in applied.stdout, applied.stdout
        share = _claim_dir(bench, "wbspawner-data-shared-datasets")
        share.mkdir(parents=True, exist_ok=True)
        (share / "README.txt").write_text("curated by the data team\n")

        # 3. bob's server reads team-a with the README's cell; team-b is refused.
        events = _start_small(bob)
        assert events[-1].get("ready"), events
        bob.wait_ready(timeout=60)
        pod = pod_of(bench.kube, "bob")
        assert pod is not None
        account = pod["spec"]["serviceAccountName"]
        assert account.startswith("wbspawner-data-"), account
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        assert "AWS_ROLE_ARN" in env and "AWS_ACCESS_KEY_ID" not in env
        assert "AWS_SECRET_ACCESS_KEY" not in env
        kernel = start_kernel(bob)
        printed = execute(bob, kernel, NOTEBOOK.read_text(), reply_timeout=120)
        lines = printed.splitlines()
        assert [line.split() for line in lines[:3]] == [
            ["city", "rain_mm"],
            ["Bergen", "2250"],
            ["Cairo", "18"],
        ], printed
        assert lines[3:] == ["team-b: refused"], printed

        # No key anywhere bob set; the credentials are the pod's web identity.
        # 4. The read-only share: readable, and a write is refused.
        printed = execute(bob, kernel, PROBE.format(share=str(share)), reply_timeout=60)
        assert printed.splitlines() == [
            "aws-keys: []",
            "credentials: assume-role-with-web-identity",
            "team-b: AccessDenied",
            "share: curated by the data team",
            "write: Read-only file system",
        ], printed
        assert not (share / "bob-was-here.txt").exists()
        home = _claim_dir(bench, "home-bob")
        assert home.is_dir() and not (home / ".aws").exists()
        assert not [
            p for p in home.rglob("*") if p.is_file() and b"aws_" in p.read_bytes()
        ]
    finally:
        leave_stopped(bench, bob)
