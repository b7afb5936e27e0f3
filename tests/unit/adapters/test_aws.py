"""The AWS adapter: botocore's retries on real clients, errors as advice, one factory.

Retries are shown with :class:`aws_support.SendErrors`, which answers at
botocore's ``before-send``, after the retry handler is in place (the Stubber
answers at ``before-call`` and would skip it); moto's ``mock_aws`` answers the
attempts it leaves. botocore's backoff is recorded instead of slept.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from tests.aws_support import SendErrors, error_response, gives_up, record_backoff
from tests.paths import REPO
from wbspawner.adapters.aws import (
    MAX_ATTEMPTS,
    RETRY_MODE,
    NotFoundError,
    call,
    make_client,
    make_clients,
    map_error,
    paginate,
)
from wbspawner.errors import PermanentAwsError, TemporaryAwsError

GROUP = {"AutoScalingGroupName": "g1", "MinSize": 0, "MaxSize": 1}


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_backoff(monkeypatch)


def test_a_throttled_call_is_sent_max_attempts_times_then_explained(
    moto: None, backoff: list[float]
) -> None:
    """Each send is answered and counted at ``before-send``, not by the Stubber.

    The Stubber answers at ``before-call``, which skips botocore's retry handler:
    a stubbed throttle would be raised at once and prove nothing about retries.
    At ``before-send`` the retry handler sees every answer, so the count is the
    number of sends botocore made; the adapter adds none.
    """
    asg = make_client("autoscaling", "us-east-1")
    hook = SendErrors(
        asg, "CreateAutoScalingGroup", *[(400, "Throttling")] * 99, message="Rate"
    )
    with pytest.raises(
        TemporaryAwsError,
        match=r"^AWS is throttling autoscaling:CreateAutoScalingGroup for g1 "
        r"\(Throttling\); wait a minute and run the command again \(it is safe to "
        rf"re-run\)\. Gave up after {MAX_ATTEMPTS} attempts\.$",
    ) as caught:
        call(asg, "create_auto_scaling_group", about="g1", **GROUP)
    assert hook.attempts == MAX_ATTEMPTS
    assert (caught.value.code, caught.value.operation) == (
        "Throttling",
        "autoscaling:CreateAutoScalingGroup",
    )
    # Standard mode: full jitter under 1, 2, 4, 8, 16 s for throttling.
    assert len(backoff) == MAX_ATTEMPTS - 1
    assert all(0 <= d <= 2**i for i, d in enumerate(backoff))


def test_throttling_that_passes_is_not_an_error(
    moto: None, backoff: list[float]
) -> None:
    asg = make_client("autoscaling", "us-east-1")
    hook = SendErrors(asg, "DescribeAutoScalingGroups", *[(400, "Throttling")] * 3)
    assert (
        list(paginate(asg, "describe_auto_scaling_groups", "AutoScalingGroups")) == []
    )
    assert hook.attempts == 4
    assert len(backoff) == 3


@pytest.mark.parametrize(
    "status", [pytest.param(s, id=str(s)) for s in (500, 502, 503, 504)]
)
def test_server_errors_are_retried(
    moto: None, backoff: list[float], status: int
) -> None:
    ec2 = make_client("ec2", "us-east-1")
    hook = SendErrors(ec2, "DescribeVolumes", (status, "InternalError"))
    assert call(ec2, "describe_volumes")["Volumes"] == []
    assert hook.attempts == 2
    assert len(backoff) == 1 and backoff[0] <= 0.05  # non-throttling base


def test_server_errors_that_last_are_explained(
    moto: None, backoff: list[float]
) -> None:
    ec2 = make_client("ec2", "us-east-1")
    error = gives_up(
        ec2,
        "DescribeVolumes",
        (503, "Unavailable"),
        lambda: call(ec2, "describe_volumes"),
    )
    assert re.match(
        r"AWS failed ec2:DescribeVolumes \(Unavailable: injected\); wait a minute ",
        str(error),
    )


@pytest.mark.parametrize(
    ("status", "code", "error", "message"),
    [
        pytest.param(
            403,
            "AccessDenied",
            PermanentAwsError,
            r"AWS denied autoscaling:CreateAutoScalingGroup for g1 \(AccessDenied\): "
            r"the credentials in use lack the IAM permission "
            r"autoscaling:CreateAutoScalingGroup\. injected$",
            id="access",
        ),
        pytest.param(
            400,
            "ValidationError",
            PermanentAwsError,
            r"^AWS rejected autoscaling:CreateAutoScalingGroup for g1 "
            r"\(ValidationError\): injected$",
            id="validation",
        ),
        pytest.param(
            400,
            "InsufficientInstanceCapacity",
            TemporaryAwsError,
            r"^AWS has no capacity for g1 right now",
            id="capacity",
        ),
    ],
)
def test_other_errors_are_sent_once(
    moto: None,
    backoff: list[float],
    status: int,
    code: str,
    error: type[Exception],
    message: str,
) -> None:
    asg = make_client("autoscaling", "us-east-1")
    hook = SendErrors(asg, "CreateAutoScalingGroup", (status, code))
    with pytest.raises(error, match=message) as caught:
        call(asg, "create_auto_scaling_group", about="g1", **GROUP)
    assert "Gave up" not in str(caught.value)
    assert (hook.attempts, backoff) == (1, [])


def test_max_attempts_is_per_client(moto: None, backoff: list[float]) -> None:
    ec2 = make_client("ec2", "us-east-1", max_attempts=2)
    hook = SendErrors(ec2, "DescribeVolumes", *[(400, "RequestLimitExceeded")] * 9)
    with pytest.raises(TemporaryAwsError, match="Gave up after 2 attempts"):
        call(ec2, "describe_volumes")
    assert hook.attempts == 2


def _launch_configurations(asg: Any, count: int) -> set[str]:
    names = {f"lc-{i}" for i in range(count)}
    for name in names:
        asg.create_launch_configuration(
            LaunchConfigurationName=name,
            ImageId="ami-12c6146b",
            InstanceType="t3.small",
        )
    return names


def test_pages_are_followed_through_botocore_paginators(moto: None) -> None:
    asg = make_client("autoscaling", "us-east-1")
    made = _launch_configurations(asg, 3)
    pages: list[dict[str, Any]] = []
    asg.meta.events.register(
        "after-call.auto-scaling.DescribeLaunchConfigurations",
        lambda parsed, **_: pages.append(parsed),
    )
    found = paginate(
        asg, "describe_launch_configurations", "LaunchConfigurations", MaxRecords=1
    )
    assert {c["LaunchConfigurationName"] for c in found} == made
    assert len(pages) == 3, "one page per item: botocore followed NextToken"


def test_errors_of_a_later_page_are_mapped(moto: None, backoff: list[float]) -> None:
    asg = make_client("autoscaling", "us-east-1")
    _launch_configurations(asg, 2)
    sent: list[int] = []

    def second_page_denied(**_kwargs: Any) -> AWSResponse | None:
        sent.append(1)
        if len(sent) < 2:
            return None  # moto answers the first page
        return error_response(asg, 403, "AccessDenied", "no")

    asg.meta.events.register(
        "before-send.auto-scaling.DescribeLaunchConfigurations", second_page_denied
    )
    items = paginate(
        asg,
        "describe_launch_configurations",
        "LaunchConfigurations",
        about="pools",
        MaxRecords=1,
    )
    assert next(items)["LaunchConfigurationName"].startswith("lc-")
    with pytest.raises(
        PermanentAwsError,
        match=r"^AWS denied autoscaling:DescribeLaunchConfigurations for pools",
    ):
        next(items)
    assert len(sent) == 2


def test_missing_credentials_are_explained(
    monkeypatch: pytest.MonkeyPatch, backoff: list[float]
) -> None:
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the IMDS
    ec2 = make_client("ec2", "us-east-1", "http://127.0.0.1:9")
    with pytest.raises(
        PermanentAwsError,
        match=r"^no AWS credentials found: run the hub and the warmer with their "
        r"IAM role \(IRSA or Pod Identity\), and set AWS_PROFILE",
    ) as caught:
        call(ec2, "describe_volumes")
    assert caught.value.operation == "ec2:DescribeVolumes"


def test_an_unreachable_endpoint_is_temporary(
    aws_env: None, backoff: list[float]
) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ec2 = make_client("ec2", "us-east-1", closed, max_attempts=2)
    with pytest.raises(TemporaryAwsError, match="cannot reach AWS for ec2:Describe"):
        call(ec2, "describe_volumes")
    assert len(backoff) == 1, "botocore retried the connection once"


@pytest.mark.parametrize(
    ("endpoint", "proxies"),
    [
        pytest.param("http://127.0.1.7:5000", {}, id="loopback"),
        pytest.param("http://localhost:5000", {}, id="localhost"),
        pytest.param("http://[::1]:5000", {}, id="ipv6-loopback"),
        pytest.param("https://ec2.example.org", None, id="remote"),
        pytest.param(None, None, id="aws"),
    ],
)
def test_clients_share_one_retry_setting(
    aws_env: None, endpoint: str | None, proxies: dict[str, str] | None
) -> None:
    clients = make_clients(("ec2", "autoscaling", "sts"), "eu-west-1", endpoint)
    for client in clients.values():
        config = client.meta.config
        assert config.retries == {
            "mode": RETRY_MODE,
            "total_max_attempts": MAX_ATTEMPTS,
        }
        assert config.proxies == proxies
        assert client.meta.region_name == "eu-west-1"


def _client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    body = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(body, "Op")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "text", "about", "cls", "message"),
    [
        pytest.param(
            "InvalidVolume.NotFound",
            "",
            "vol-1",
            NotFoundError,
            r"^EBS volume vol-1 does not exist \(InvalidVolume\.NotFound\): "
            "it was deleted, or it is in another region or account$",
            id="volume",
        ),
        pytest.param(
            "InvalidSnapshot.NotFound",
            "",
            "snap-1",
            NotFoundError,
            r"^EBS snapshot snap-1 does not exist",
            id="snapshot",
        ),
        pytest.param(
            "ParameterNotFound",
            "",
            "/aws/x",
            NotFoundError,
            r"^/aws/x not found \(ParameterNotFound\)$",
            id="parameter",
        ),
        pytest.param(
            "NotFoundException",
            "",
            "budget-1",
            NotFoundError,
            r"^budget-1 not found",
            id="budget",
        ),
        pytest.param(
            "ValidationError",
            "Group g not found",
            "g",
            NotFoundError,
            r"^g not found \(ValidationError\)$",
            id="validation-not-found",
        ),
        pytest.param(
            "AlreadyExists",
            "",
            "g",
            PermanentAwsError,
            r"^g exists already$",
            id="exists",
        ),
        pytest.param(
            "UnauthorizedOperation",
            "no kms:CreateGrant",
            "vol-1",
            PermanentAwsError,
            r"lack the IAM permission ec2:Op; the role "
            r"also needs kms:CreateGrant",
            id="access-kms",
        ),
        pytest.param(
            "KMS.DisabledException",
            "off",
            "vol-1",
            PermanentAwsError,
            r"cannot use the volume's KMS key .* kms:CreateGrant",
            id="kms",
        ),
        pytest.param(
            "InvalidAvailabilityZone",
            "",
            "us-east-1z",
            PermanentAwsError,
            r"^availability zone us-east-1z does not exist in this region",
            id="zone",
        ),
        pytest.param(
            "VolumeLimitExceeded",
            "max",
            "",
            PermanentAwsError,
            r"^the account's EBS quota is reached \(VolumeLimitExceeded\): "
            "max. Raise it in Service Quotas",
            id="quota",
        ),
        pytest.param(
            "SnapshotCreationPerVolumeRateExceeded",
            "",
            "vol-1",
            TemporaryAwsError,
            r"^AWS is throttling ec2:Op for vol-1",
            id="snapshot-rate",
        ),
    ],
)
def test_error_codes_become_advice(
    code: str, text: str, about: str, cls: type[Exception], message: str
) -> None:
    mapped = map_error(_client_error(code, text), "ec2:Op", about)
    assert type(mapped) is cls or isinstance(mapped, cls)
    assert re.search(message, mapped.message), mapped.message
    assert (mapped.code, mapped.operation) == (code, "ec2:Op")


def _boto_users(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(n.split(".")[0] in ("boto3", "botocore") for n in names):
            return True
    return False


def _client_factories(path: Path) -> bool:
    """Whether a module calls ``Session(...)`` or ``<x>.client(<service>, ...)``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("Session", "resource") or (name == "client" and node.args):
            return True
    return False


def test_only_the_aws_adapter_uses_boto3() -> None:
    """One module imports boto3 or botocore (lazily too) and makes clients.

    import-linter checks the imports; this also finds client factories written
    without an import of their own (``session.client("ec2")`` on a passed-in
    session).
    """
    sources = sorted((REPO / "wbspawner").rglob("*.py"))
    users = {str(p.relative_to(REPO)) for p in sources if _boto_users(p)}
    assert users == {"wbspawner/adapters/aws.py"}
    makers = {str(p.relative_to(REPO)) for p in sources if _client_factories(p)}
    assert makers == {"wbspawner/adapters/aws.py"}
