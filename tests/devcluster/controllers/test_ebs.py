"""EBS rules moto lacks, enforced by EbsRules, against an in-process moto server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from devcluster.controllers.volumes.ebs import EbsRules, make_pv, volume_request
from tests.devcluster.objects_support import pvc, storage_class

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rules(ec2: Any, clock: Clock) -> EbsRules:
    return EbsRules(ec2, snapshot_s=30.0, clock=clock)


@pytest.fixture
def instances(ec2: Any, subnets: dict[str, str]) -> dict[str, str]:
    """One running instance per AZ, by zone."""
    out = {}
    for zone, subnet in subnets.items():
        reservation = ec2.run_instances(
            ImageId="ami-12345678",
            InstanceType="r5.large",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
        )
        out[zone] = reservation["Instances"][0]["InstanceId"]
    return out


def _volume(rules: EbsRules, zone: str = "us-east-1a", size: int = 10) -> str:
    return str(
        rules.create_volume(AvailabilityZone=zone, Size=size, VolumeType="gp3")[
            "VolumeId"
        ]
    )


@pytest.mark.parametrize("zone", ["us-east-1z", "us-west-2a", "eu-central-1a"])
def test_create_volume_in_a_missing_zone_fails(
    rules: EbsRules, ec2: Any, zone: str
) -> None:
    with pytest.raises(
        ClientError, match=rf"InvalidZone.NotFound.*The zone '{zone}' does not exist"
    ):
        rules.create_volume(AvailabilityZone=zone, Size=10, VolumeType="gp3")
    assert ec2.describe_volumes()["Volumes"] == []


def test_create_volume_in_a_real_zone_passes_through(rules: EbsRules, ec2: Any) -> None:
    volume_id = _volume(rules, "us-east-1f")
    assert (
        ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["AvailabilityZone"]
        == "us-east-1f"
    )


def test_attach_only_in_the_volume_zone(
    rules: EbsRules, ec2: Any, instances: dict[str, str]
) -> None:
    volume_id = _volume(rules, "us-east-1a")
    with pytest.raises(ClientError, match="InvalidVolume.ZoneMismatch"):
        rules.attach_volume(
            VolumeId=volume_id, InstanceId=instances["us-east-1b"], Device="/dev/xvdf"
        )
    rules.attach_volume(
        VolumeId=volume_id, InstanceId=instances["us-east-1a"], Device="/dev/xvdf"
    )
    attachments = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0][
        "Attachments"
    ]
    assert [a["InstanceId"] for a in attachments] == [instances["us-east-1a"]]


def test_one_attachment_at_a_time(
    rules: EbsRules, ec2: Any, subnets: dict[str, str], instances: dict[str, str]
) -> None:
    other = ec2.run_instances(
        ImageId="ami-12345678",
        InstanceType="r5.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnets["us-east-1a"],
    )["Instances"][0]["InstanceId"]
    volume_id = _volume(rules)
    rules.attach_volume(
        VolumeId=volume_id, InstanceId=instances["us-east-1a"], Device="/dev/xvdf"
    )
    with pytest.raises(
        ClientError,
        match=f"VolumeInUse.*{volume_id} is already attached to an instance",
    ):
        rules.attach_volume(VolumeId=volume_id, InstanceId=other, Device="/dev/xvdf")
    rules.detach_volume(VolumeId=volume_id)
    rules.attach_volume(VolumeId=volume_id, InstanceId=other, Device="/dev/xvdf")
    assert (
        ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"][0][
            "InstanceId"
        ]
        == other
    )


def test_detach_of_an_available_volume_fails(rules: EbsRules) -> None:
    with pytest.raises(ClientError, match="IncorrectState"):
        rules.detach_volume(VolumeId=_volume(rules))


def test_snapshot_takes_time(rules: EbsRules, clock: Clock) -> None:
    snapshot = rules.create_snapshot(VolumeId=_volume(rules))
    assert snapshot["State"] == "pending"
    clock.now += 29
    assert rules.describe_snapshot_state(snapshot["SnapshotId"]) == "pending"
    described = rules.describe_snapshots(SnapshotIds=[snapshot["SnapshotId"]])[
        "Snapshots"
    ][0]
    assert (described["State"], described["Progress"]) == ("pending", "95%")
    clock.now += 2
    assert rules.describe_snapshot_state(snapshot["SnapshotId"]) == "completed"
    assert (
        rules.describe_snapshots(SnapshotIds=[snapshot["SnapshotId"]])["Snapshots"][0][
            "State"
        ]
        == "completed"
    )


def test_volume_smaller_than_snapshot_rejected(rules: EbsRules, clock: Clock) -> None:
    snapshot_id = rules.create_snapshot(VolumeId=_volume(rules, size=20))["SnapshotId"]
    clock.now += 60
    with pytest.raises(
        ClientError,
        match=r"InvalidParameterValue.*Volume of size 10GB is smaller than snapshot",
    ):
        rules.create_volume(
            AvailabilityZone="us-east-1b", Size=10, SnapshotId=snapshot_id
        )
    restored = rules.create_volume(
        AvailabilityZone="us-east-1b", Size=20, SnapshotId=snapshot_id
    )
    assert restored["AvailabilityZone"] == "us-east-1b"


def test_other_calls_pass_through(rules: EbsRules) -> None:
    assert rules.describe_availability_zones()["AvailabilityZones"]


def test_volume_request_follows_the_storage_class() -> None:
    sc = storage_class("home")
    sc["parameters"] = {
        "type": "gp3",
        "iops": "4000",
        "throughput": "250",
        "encrypted": "true",
        "tagSpecification_1": "owner={{ .PVCNamespace }}/{{ .PVCName }}",
    }
    request = volume_request(pvc("claim-x", size="1500Mi"), sc, "us-east-1b", "pvc-1")
    tags = {t["Key"]: t["Value"] for t in request["TagSpecifications"][0]["Tags"]}
    assert (
        request["Size"],
        request["Iops"],
        request["Throughput"],
        request["Encrypted"],
    ) == (2, 4000, 250, True)
    assert tags["owner"] == "jhub/claim-x"
    assert tags["kubernetes.io/created-for/pv/name"] == "pvc-1"


def test_make_pv_pins_the_zone_and_claim() -> None:
    pv = make_pv(
        pvc("claim-x"),
        storage_class("home", reclaim="Retain"),
        "vol-1",
        "us-east-1c",
        10,
    )
    assert pv["metadata"]["name"] == "pvc-uid-claim-x"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ][0]["values"] == ["us-east-1c"]
    assert pv["spec"]["claimRef"]["uid"] == "uid-claim-x"
