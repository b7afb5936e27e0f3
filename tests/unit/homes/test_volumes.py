"""The EC2 wrapper of homes: requests (Stubber), botocore's retries, messages."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from tests.aws_support import SendErrors, record_backoff
from wbspawner.adapters.aws import MAX_ATTEMPTS, make_client
from wbspawner.errors import PermanentAwsError, TemporaryAwsError
from wbspawner.homes.records import VolumeInfo
from wbspawner.homes.volumes import Volumes

VOL = "vol-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"


@pytest.fixture
def stubbed() -> Iterator[tuple[Volumes, Stubber]]:
    client = boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stub:
        yield Volumes(client), stub
        stub.assert_no_pending_responses()


class World:
    """An EC2 client on moto in-process, one volume, botocore's backoff recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delays = record_backoff(monkeypatch)
        self.client = make_client("ec2", "us-east-1")
        self.volumes = Volumes(self.client)
        made = self.client.create_volume(AvailabilityZone="us-east-1a", Size=10)
        self.volume_id = str(made["VolumeId"])


@pytest.fixture
def world(moto: None, monkeypatch: pytest.MonkeyPatch) -> World:
    """Errors are answered at ``before-send``, so botocore's retries run."""
    return World(monkeypatch)


@pytest.mark.parametrize(
    ("code", "status", "cap"),
    [
        pytest.param("RequestLimitExceeded", 503, 1.0, id="request-limit"),
        pytest.param("Throttling", 400, 1.0, id="throttling"),
        pytest.param("InternalError", 500, 0.05, id="server-error"),
    ],
)
def test_throttling_and_server_errors_are_retried(
    world: World, code: str, status: int, cap: float
) -> None:
    hook = SendErrors(
        world.client, "CreateSnapshot", *[(status, code)] * 2, message="slow down"
    )
    snap = world.volumes.create_snapshot(
        world.volume_id, "home of alice", {"wbspawner.io/user": "alice"}
    )
    assert snap.volume_id == world.volume_id and snap.snapshot_id.startswith("snap-")
    assert hook.attempts == 3
    assert len(world.delays) == 2
    # botocore's backoff: full jitter under a doubling cap (1 s for throttling,
    # 50 ms for server errors).
    assert all(0 <= d <= cap * 2**i for i, d in enumerate(world.delays))


def test_throttling_gives_up_with_a_temporary_error(world: World) -> None:
    hook = SendErrors(
        world.client, "CreateSnapshot", *[(400, "RequestLimitExceeded")] * 99
    )
    with pytest.raises(
        TemporaryAwsError,
        match=rf"AWS is throttling ec2:CreateSnapshot for {world.volume_id} "
        rf"\(RequestLimitExceeded\).*Gave up after {MAX_ATTEMPTS} attempts",
    ):
        world.volumes.create_snapshot(world.volume_id, "x", {})
    assert hook.attempts == MAX_ATTEMPTS
    assert len(world.delays) == MAX_ATTEMPTS - 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param(
            "UnauthorizedOperation",
            r"AWS denied ec2:CreateSnapshot for vol-\w+ \(UnauthorizedOperation\): "
            r"the credentials in use lack the IAM permission ec2:CreateSnapshot",
            id="unauthorized",
        ),
        pytest.param(
            "InvalidVolume.NotFound",
            r"EBS volume vol-\w+ does not exist",
            id="no-volume",
        ),
        pytest.param(
            "SnapshotLimitExceeded", "the account's EBS quota is reached", id="quota"
        ),
        pytest.param(
            "KMS.DisabledException",
            "cannot use the volume's KMS key .* kms:CreateGrant",
            id="kms",
        ),
    ],
)
def test_permanent_errors_have_clear_messages(
    world: World, code: str, message: str
) -> None:
    hook = SendErrors(
        world.client, "CreateSnapshot", (400, code), message="AWS says no"
    )
    with pytest.raises(PermanentAwsError, match=message) as caught:
        world.volumes.create_snapshot(world.volume_id, "x", {})
    assert (caught.value.code, caught.value.operation) == (code, "ec2:CreateSnapshot")
    assert (hook.attempts, world.delays) == (1, []), "not retried"


def test_create_volume_copies_every_setting(stubbed) -> None:
    volumes, stub = stubbed
    like = VolumeInfo(
        volume_id=VOL,
        zone="us-east-1a",
        size_gib=20,
        volume_type="gp3",
        iops=4000,
        throughput=250,
        encrypted=True,
        kms_key_id="arn:k",
    )
    expected = {
        "AvailabilityZone": "us-east-1b",
        "SnapshotId": SNAP,
        "Size": 20,
        "VolumeType": "gp3",
        "Encrypted": True,
        "KmsKeyId": "arn:k",
        "Iops": 4000,
        "Throughput": 250,
        "ClientToken": "wbspawner-m1",
        "TagSpecifications": [
            {"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "1"}]}
        ],
    }
    stub.add_response(
        "create_volume",
        {
            "VolumeId": "vol-new",
            "AvailabilityZone": "us-east-1b",
            "Size": 20,
            "VolumeType": "gp3",
            "State": "creating",
            "Encrypted": True,
        },
        expected,
    )
    made = volumes.create_volume_from_snapshot(
        SNAP, like, "us-east-1b", {"a": "1"}, "wbspawner-m1"
    )
    assert (made.volume_id, made.zone, made.state) == (
        "vol-new",
        "us-east-1b",
        "creating",
    )


def test_unknown_zone_is_explained(stubbed) -> None:
    volumes, stub = stubbed
    stub.add_client_error(
        "create_volume", "InvalidZone.NotFound", "The zone does not exist"
    )
    like = VolumeInfo(volume_id=VOL, zone="us-east-1a", size_gib=10)
    with pytest.raises(
        PermanentAwsError, match="availability zone us-east-1z does not exist"
    ):
        volumes.create_volume_from_snapshot(SNAP, like, "us-east-1z", {}, "t")


def test_missing_volume_and_snapshot_read_as_none(stubbed) -> None:
    volumes, stub = stubbed
    stub.add_client_error("describe_volumes", "InvalidVolume.NotFound", "gone")
    stub.add_client_error("describe_snapshots", "InvalidSnapshot.NotFound", "gone")
    stub.add_client_error("delete_volume", "InvalidVolume.NotFound", "gone")
    assert volumes.describe_volume(VOL) is None
    assert volumes.describe_snapshot(SNAP) is None
    assert volumes.delete_volume(VOL) is False


def test_find_volumes_follows_pages_and_filters_by_tag_and_zone(stubbed) -> None:
    volumes, stub = stubbed
    filters = [
        {"Name": "tag:wbspawner.io/move-id", "Values": ["m1"]},
        {"Name": "availability-zone", "Values": ["us-east-1b"]},
    ]
    page = {
        "VolumeId": VOL,
        "AvailabilityZone": "us-east-1b",
        "Size": 10,
        "State": "available",
        "Attachments": [{"InstanceId": "i-1", "State": "attached"}],
        "Tags": [{"Key": "wbspawner.io/move-id", "Value": "m1"}],
    }
    stub.add_response(
        "describe_volumes", {"Volumes": [page], "NextToken": "t2"}, {"Filters": filters}
    )
    stub.add_response(
        "describe_volumes",
        {"Volumes": [dict(page, VolumeId="vol-2")]},
        {"Filters": filters, "NextToken": "t2"},
    )
    found = volumes.find_volumes({"wbspawner.io/move-id": "m1"}, "us-east-1b")
    assert [v.volume_id for v in found] == [VOL, "vol-2"]
    assert found[0].attached_to == ("i-1",)
    assert dict(found[0].tags) == {"wbspawner.io/move-id": "m1"}
