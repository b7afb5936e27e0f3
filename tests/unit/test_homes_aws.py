"""The EC2 adapter of homes on a stubbed boto3 client: requests, retries, messages."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from wbspawner.adapters.aws import Retry
from wbspawner.errors import PermanentAwsError, TemporaryAwsError
from wbspawner.homes.aws import Volumes
from wbspawner.homes.records import VolumeInfo

VOL = "vol-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"


@pytest.fixture
def stubbed() -> Iterator[tuple[Volumes, Stubber, list[float]]]:
    client = boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sleeps: list[float] = []
    with Stubber(client) as stub:
        yield (
            Volumes(client, retry=Retry(attempts=4, sleep=sleeps.append)),
            stub,
            sleeps,
        )
        stub.assert_no_pending_responses()


SNAPSHOT = {"SnapshotId": SNAP, "VolumeId": VOL, "State": "pending", "Progress": "0%",
            "VolumeSize": 10}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("RequestLimitExceeded", 503, id="request-limit"),
        pytest.param("Throttling", 400, id="throttling"),
        pytest.param("InternalError", 500, id="server-error"),
    ],
)
def test_throttling_and_server_errors_are_retried(
    stubbed, code: str, status: int
) -> None:
    volumes, stub, sleeps = stubbed
    for _ in range(2):
        stub.add_client_error(
            "create_snapshot", code, "slow down", http_status_code=status
        )
    stub.add_response("create_snapshot", SNAPSHOT)
    snap = volumes.create_snapshot(VOL, "home of alice", {"wbspawner.io/user": "alice"})
    assert (snap.snapshot_id, snap.state) == (SNAP, "pending")
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0, "backoff with jitter"


def test_throttling_gives_up_with_a_temporary_error(stubbed) -> None:
    volumes, stub, sleeps = stubbed
    for _ in range(4):
        stub.add_client_error("create_snapshot", "RequestLimitExceeded", "slow down")
    with pytest.raises(
        TemporaryAwsError, match="AWS is throttling or failing ec2:CreateSnapshot"
    ):
        volumes.create_snapshot(VOL, "x", {})
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    ("method", "code", "message"),
    [
        pytest.param("create_snapshot", "UnauthorizedOperation",
                     r"the hub's IAM role may not call ec2:CreateSnapshot "
                     r"\(UnauthorizedOperation\): grant it ec2:CreateSnapshot",
                     id="unauthorized"),
        pytest.param("create_snapshot", "InvalidVolume.NotFound",
                     f"EBS volume {VOL} does not exist", id="no-volume"),
        pytest.param("create_snapshot", "SnapshotLimitExceeded",
                     "the account's EBS quota is reached", id="quota"),
        pytest.param("create_snapshot", "KMS.DisabledException",
                     "cannot use the volume's KMS key .* kms:CreateGrant", id="kms"),
    ],
)  # fmt: skip
def test_permanent_errors_have_clear_messages(stubbed, method, code, message) -> None:
    volumes, stub, sleeps = stubbed
    stub.add_client_error(method, code, "AWS says no")
    with pytest.raises(PermanentAwsError, match=message) as caught:
        volumes.create_snapshot(VOL, "x", {})
    assert (caught.value.code, caught.value.operation) == (code, "ec2:CreateSnapshot")
    assert sleeps == []


def test_create_volume_copies_every_setting(stubbed) -> None:
    volumes, stub, _ = stubbed
    like = VolumeInfo(
        volume_id=VOL, zone="us-east-1a", size_gib=20, volume_type="gp3",
        iops=4000, throughput=250, encrypted=True, kms_key_id="arn:k",
    )  # fmt: skip
    expected = {
        "AvailabilityZone": "us-east-1b", "SnapshotId": SNAP, "Size": 20,
        "VolumeType": "gp3", "Encrypted": True, "KmsKeyId": "arn:k", "Iops": 4000,
        "Throughput": 250, "ClientToken": "wbspawner-m1",
        "TagSpecifications": [{"ResourceType": "volume",
                               "Tags": [{"Key": "a", "Value": "1"}]}],
    }  # fmt: skip
    stub.add_response(
        "create_volume",
        {"VolumeId": "vol-new", "AvailabilityZone": "us-east-1b", "Size": 20,
         "VolumeType": "gp3", "State": "creating", "Encrypted": True},
        expected,
    )  # fmt: skip
    made = volumes.create_volume_from_snapshot(
        SNAP, like, "us-east-1b", {"a": "1"}, "wbspawner-m1"
    )
    assert (made.volume_id, made.zone, made.state) == (
        "vol-new",
        "us-east-1b",
        "creating",
    )


def test_unknown_zone_is_explained(stubbed) -> None:
    volumes, stub, _ = stubbed
    stub.add_client_error(
        "create_volume", "InvalidZone.NotFound", "The zone does not exist"
    )
    like = VolumeInfo(volume_id=VOL, zone="us-east-1a", size_gib=10)
    with pytest.raises(
        PermanentAwsError, match="availability zone us-east-1z does not exist"
    ):
        volumes.create_volume_from_snapshot(SNAP, like, "us-east-1z", {}, "t")


def test_missing_volume_and_snapshot_read_as_none(stubbed) -> None:
    volumes, stub, _ = stubbed
    stub.add_client_error("describe_volumes", "InvalidVolume.NotFound", "gone")
    stub.add_client_error("describe_snapshots", "InvalidSnapshot.NotFound", "gone")
    stub.add_client_error("delete_volume", "InvalidVolume.NotFound", "gone")
    assert volumes.describe_volume(VOL) is None
    assert volumes.describe_snapshot(SNAP) is None
    assert volumes.delete_volume(VOL) is False


def test_find_volumes_follows_pages_and_filters_by_tag_and_zone(stubbed) -> None:
    volumes, stub, _ = stubbed
    filters = [{"Name": "tag:wbspawner.io/move-id", "Values": ["m1"]},
               {"Name": "availability-zone", "Values": ["us-east-1b"]}]  # fmt: skip
    page = {"VolumeId": VOL, "AvailabilityZone": "us-east-1b", "Size": 10,
            "State": "available", "Attachments": [
                {"InstanceId": "i-1", "State": "attached"}],
            "Tags": [{"Key": "wbspawner.io/move-id", "Value": "m1"}]}  # fmt: skip
    stub.add_response("describe_volumes", {"Volumes": [page], "NextToken": "t2"},
                      {"Filters": filters})  # fmt: skip
    stub.add_response("describe_volumes", {"Volumes": [dict(page, VolumeId="vol-2")]},
                      {"Filters": filters, "NextToken": "t2"})  # fmt: skip
    found = volumes.find_volumes({"wbspawner.io/move-id": "m1"}, "us-east-1b")
    assert [v.volume_id for v in found] == [VOL, "vol-2"]
    assert found[0].attached_to == ("i-1",)
    assert dict(found[0].tags) == {"wbspawner.io/move-id": "m1"}
