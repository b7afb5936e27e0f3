"""The pools' AWS wrappers: botocore's retries, errors as advice, parsing."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from tests.aws_support import SendErrors, gives_up, record_backoff
from wbspawner.adapters.aws import (
    AlreadyExistsError,
    NotFoundError,
    make_client,
)
from wbspawner.errors import PermanentAwsError, TemporaryAwsError
from wbspawner.pools.aws import (
    AsgPools,
    Ec2Pools,
    explain_launch_failure,
    observed_asg,
)
from wbspawner.pools.aws_cluster import SsmAmis

NVIDIA = (
    "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/nvidia/"
    "recommended/image_id"
)


def _client(service: str):
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_throttling_is_retried_with_growing_backoff(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore retries (answered at ``before-send``, which the Stubber skips).

    Its full-jitter backoff waits under a cap that doubles: 1, 2, 4 s.
    """
    delays = record_backoff(monkeypatch)
    asg = make_client("autoscaling", "us-east-1")
    hook = SendErrors(
        asg, "DescribeAutoScalingGroups", *[(400, "Throttling")] * 3, message="Rate"
    )
    got = AsgPools(asg).observe("dev")
    assert got == {}
    assert hook.attempts == 4
    caps = [1.0, 2.0, 4.0]
    assert len(delays) == 3
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))


def test_throttling_gives_up_with_a_clear_message(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_backoff(monkeypatch)
    asg = make_client("autoscaling", "us-east-1")
    group = {"AutoScalingGroupName": "g1", "MinSize": 0, "MaxSize": 1}
    error = gives_up(
        asg,
        "CreateAutoScalingGroup",
        (400, "Throttling"),
        lambda: AsgPools(asg).create(group),
    )
    assert str(error).startswith(
        "AWS is throttling autoscaling:CreateAutoScalingGroup for g1 (Throttling)"
    )
    assert error.code == "Throttling"


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        pytest.param(
            "InsufficientInstanceCapacity",
            TemporaryAwsError,
            r"AWS has no capacity for g1 right now \(InsufficientInstanceCapacity: "
            r"no r5.16xlarge\)\. Spot groups fall back to on-demand",
            id="capacity",
        ),
        pytest.param(
            "AccessDenied",
            PermanentAwsError,
            r"AWS denied autoscaling:CreateAutoScalingGroup for g1 \(AccessDenied\): "
            r"the credentials in use lack the IAM permission "
            r"autoscaling:CreateAutoScalingGroup",
            id="access",
        ),
        pytest.param(
            "AlreadyExists", AlreadyExistsError, "g1 exists already", id="exists"
        ),
        pytest.param(
            "ValidationError",
            PermanentAwsError,
            r"AWS rejected autoscaling:CreateAutoScalingGroup for g1 "
            r"\(ValidationError\)",
            id="validation",
        ),
    ],
)
def test_error_codes_become_admin_messages(code, error, message):
    asg = _client("autoscaling")
    text = "no r5.16xlarge" if code == "InsufficientInstanceCapacity" else "bad"
    with Stubber(asg) as stub:
        stub.add_client_error("create_auto_scaling_group", code, text)
        with pytest.raises(error, match=message):
            AsgPools(asg).create(
                {"AutoScalingGroupName": "g1", "MinSize": 0, "MaxSize": 1}
            )


def test_missing_ssm_parameter_names_version_variant_and_region():
    ssm = _client("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error(
            "get_parameter", "ParameterNotFound", "", expected_params={"Name": NVIDIA}
        )
        with pytest.raises(
            NotFoundError,
            match=r"^no EKS AL2023 AMI for Kubernetes 1.33 \(nvidia, x86_64\) in "
            r"region us-east-1: SSM parameter /aws/service/.+ does not exist\. "
            r"Check --k8s-version",
        ):
            SsmAmis(ssm, "us-east-1").resolve([NVIDIA])


def test_ssm_resolves_each_parameter():
    ssm = _client("ssm")
    standard = NVIDIA.replace("nvidia", "standard")
    with Stubber(ssm) as stub:
        for name, ami in ((standard, "ami-std"), (NVIDIA, "ami-gpu")):
            stub.add_response(
                "get_parameter",
                {"Parameter": {"Name": name, "Value": ami, "Type": "String"}},
                {"Name": name},
            )
        assert SsmAmis(ssm, "us-east-1").resolve([standard, NVIDIA]) == {
            standard: "ami-std",
            NVIDIA: "ami-gpu",
        }


def test_set_default_version_uses_the_newest_when_none_given():
    ec2 = _client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_launch_templates",
            {
                "LaunchTemplates": [
                    {"LaunchTemplateName": "lt-x", "LatestVersionNumber": 7}
                ]
            },
            {"LaunchTemplateNames": ["lt-x"]},
        )
        stub.add_response(
            "modify_launch_template",
            {},
            {"LaunchTemplateName": "lt-x", "DefaultVersion": "7"},
        )
        assert Ec2Pools(ec2).set_default_version("lt-x", None) == "7"
        stub.assert_no_pending_responses()


def test_observed_asg_reads_policy_tags_and_instances():
    group = {
        "AutoScalingGroupName": "g",
        "MinSize": 0,
        "MaxSize": 3,
        "DesiredCapacity": 1,
        "VPCZoneIdentifier": "subnet-b,subnet-a",
        "Instances": [{"InstanceId": "i-1"}],
        "CapacityRebalance": True,
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "lt-x"}
            }
        },
        "Tags": [
            {"Key": "a", "Value": "1", "PropagateAtLaunch": True},
            {"Key": "b", "Value": "2", "PropagateAtLaunch": False},
        ],
    }
    seen = observed_asg(group)
    assert seen.subnets == ("subnet-a", "subnet-b")
    assert (seen.instances, seen.desired_capacity, seen.launch_template) == (
        1,
        1,
        "lt-x",
    )
    assert seen.tags == {"a": "1", "b": "2"}
    assert seen.propagate_at_launch == frozenset({"a"})


def test_scaling_failures_explain_capacity_shortage():
    asg = _client("autoscaling")
    failed = {
        "ActivityId": "1",
        "AutoScalingGroupName": "g",
        "Cause": "c",
        "StartTime": "2026-01-01",
        "StatusCode": "Failed",
        "StatusMessage": "We currently do not have sufficient r5.16xlarge capacity "
        "in the Availability Zone you requested (us-east-1a). Launching EC2 instance "
        "failed.",
    }
    ok = dict(failed, ActivityId="2", StatusCode="Successful", StatusMessage="done")
    with Stubber(asg) as stub:
        stub.add_response(
            "describe_scaling_activities",
            {"Activities": [failed, ok]},
            {"AutoScalingGroupName": "g", "MaxRecords": 5},
        )
        (msg,) = AsgPools(asg).scaling_failures(["g"])
    assert msg.startswith("g: no capacity (InsufficientInstanceCapacity): We currently")
    assert "tries the next one by priority (spot → on-demand)" in msg


def test_unknown_launch_failures_are_passed_through():
    assert (
        explain_launch_failure("Invalid IAM instance profile")
        == "Invalid IAM instance profile"
    )
