"""devcluster's EBS rules through its controllers: volumes follow nodes' zones."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.apiserver.store import Store
from devcluster.controllers.nodes import instance_id_of
from devcluster.controllers.volumes.ebs import attachment_name
from tests.devcluster.controllers.controller_support import (
    events,
    node_of,
    user_pod,
)
from tests.devcluster.objects_support import (
    ZONE,
    claim,
    static_volume,
    storage_class,
)
from tests.node_groups_support import MakePool

# Every test needs the controllers running; none talks to them directly.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("controllers")]


async def test_wffc_claim_gets_a_volume_in_the_node_zone_and_is_attached(
    store: Store, make_pool: MakePool, ec2: Any, eventually: Any
) -> None:
    make_pool("mem16", zones=["us-east-1c"], capacities=["spot"])
    store.create("storageclasses", None, storage_class("home", reclaim="Retain"))
    store.create(
        "persistentvolumeclaims",
        "jhub",
        claim("claim-carol", "home"),
    )
    store.create(
        "pods", "jhub", user_pod("carol", "mem16", "r5.large", claim="claim-carol")
    )
    node_name = await eventually(lambda: node_of(store, "carol"))
    pvc = store.get("persistentvolumeclaims", "jhub", "claim-carol")
    assert pvc["status"]["phase"] == "Bound"
    assert (
        pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]
        == node_name
    )
    pv = store.get("persistentvolumes", None, pvc["spec"]["volumeName"])
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ] == [{"key": ZONE, "operator": "In", "values": ["us-east-1c"]}]
    assert (
        pv["spec"]["persistentVolumeReclaimPolicy"],
        pv["spec"]["claimRef"]["name"],
    ) == ("Retain", "claim-carol")
    volume_id = pv["spec"]["csi"]["volumeHandle"]
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    tags = {t["Key"]: t["Value"] for t in volume["Tags"]}
    assert (
        volume["AvailabilityZone"],
        volume["Size"],
        volume["VolumeType"],
        volume["Encrypted"],
    ) == ("us-east-1c", 10, "gp3", True)
    assert tags["kubernetes.io/created-for/pvc/name"] == "claim-carol"
    assert tags["kubernetes.io/created-for/pvc/namespace"] == "jhub"
    assert tags["CSIVolumeName"] == pv["metadata"]["name"]

    def attached() -> bool:
        node = store.get("nodes", None, node_name)
        return attachment_name(volume_id) in [
            v["name"] for v in node["status"].get("volumesAttached") or []
        ]

    await eventually(attached)
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["Attachments"][0]["InstanceId"] == instance_id_of(
        store.get("nodes", None, node_name)
    )
    store.delete("pods", "jhub", "carol", grace_period_seconds=0)
    await eventually(
        lambda: (
            not ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"]
        )
    )


async def test_attach_in_the_wrong_zone_fails_like_aws(
    store: Store, make_pool: MakePool, ec2: Any, eventually: Any
) -> None:
    make_pool("mem16", zones=["us-east-1b"], capacities=["spot"], min_size=1)
    node_name = await eventually(
        lambda: (
            store.items_raw("nodes") and store.items_raw("nodes")[0]["metadata"]["name"]
        )
    )
    volume_id = ec2.create_volume(
        AvailabilityZone="us-east-1a", Size=10, VolumeType="gp3"
    )["VolumeId"]
    store.create("persistentvolumes", None, static_volume("old-home", volume_id))
    store.create(
        "persistentvolumeclaims",
        "jhub",
        claim("claim-dave", "", volume="old-home"),
    )
    await eventually(
        lambda: (
            store.get("persistentvolumeclaims", "jhub", "claim-dave")["status"]["phase"]
            == "Bound"
        )
    )
    assert (
        store.get("persistentvolumes", None, "old-home")["spec"]["claimRef"]["name"]
        == "claim-dave"
    )
    pod = user_pod("dave", "mem16", "r5.large", claim="claim-dave")
    pod["spec"]["nodeName"] = node_name
    store.create("pods", "jhub", pod)
    failed = await eventually(lambda: events(store, "dave", "FailedAttachVolume"))
    assert "InvalidVolume.ZoneMismatch" in failed[0]["message"]
    assert failed[0]["message"].startswith(
        'AttachVolume.Attach failed for volume "old-home"'
    )
    assert (
        ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"] == []
    )


async def test_immediate_claim_is_provisioned_and_reclaimed_on_delete(
    store: Store, ec2: Any, eventually: Any
) -> None:
    store.create(
        "storageclasses",
        None,
        storage_class("scratch", mode="Immediate", zones=["us-east-1b"]),
    )
    store.create(
        "persistentvolumeclaims",
        "jhub",
        claim("scratch", "scratch", size="5Gi"),
    )

    def bound() -> str | None:
        pvc = store.get("persistentvolumeclaims", "jhub", "scratch")
        return (
            pvc["spec"].get("volumeName") if pvc["status"]["phase"] == "Bound" else None
        )

    pv_name = await eventually(bound)
    volume_id = store.get("persistentvolumes", None, pv_name)["spec"]["csi"][
        "volumeHandle"
    ]
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert (volume["AvailabilityZone"], volume["Size"]) == ("us-east-1b", 5)
    store.delete("persistentvolumeclaims", "jhub", "scratch")
    await eventually(lambda: not store.exists("persistentvolumes", None, pv_name))
    assert (
        ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])[
            "Volumes"
        ]
        == []
    )


async def test_retained_volume_is_released_not_deleted(
    store: Store, ec2: Any, eventually: Any
) -> None:
    volume_id = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
    kept = static_volume(
        "kept",
        volume_id,
        persistentVolumeReclaimPolicy="Retain",
        claimRef={"namespace": "jhub", "name": "claim-kept"},
    )
    store.create("persistentvolumes", None, kept)
    store.create(
        "persistentvolumeclaims",
        "jhub",
        claim("claim-kept", ""),
    )
    await eventually(
        lambda: (
            store.get("persistentvolumeclaims", "jhub", "claim-kept")["spec"].get(
                "volumeName"
            )
            == "kept"
        )
    )
    store.delete("persistentvolumeclaims", "jhub", "claim-kept")
    await eventually(
        lambda: (
            store.get("persistentvolumes", None, "kept")["status"]["phase"]
            == "Released"
        )
    )
    assert (
        ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"]
        == "available"
    )
