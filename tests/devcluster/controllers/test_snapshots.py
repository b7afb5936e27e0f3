"""devcluster's snapshot contents: capture a PV's files, restore them into a new PV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devcluster.controllers.volumes.snapshots import SnapshotData, install


class FakeEc2:
    """DescribeVolumes / DescribeSnapshots over two dicts."""

    def __init__(self) -> None:
        self.volumes: dict[str, dict[str, Any]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def describe_volumes(self, VolumeIds: list[str]) -> dict[str, Any]:  # noqa: N803
        self.calls.append("describe_volumes")
        if VolumeIds[0] not in self.volumes:
            raise ClientError({"Error": {"Code": "InvalidVolume.NotFound"}}, "X")
        return {"Volumes": [self.volumes[VolumeIds[0]]]}

    def describe_snapshots(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("describe_snapshots")
        if "SnapshotIds" in kw:
            return {"Snapshots": [self.snapshots[i] for i in kw["SnapshotIds"]]}
        wanted = set(kw["Filters"][0]["Values"])
        return {
            "Snapshots": [s for s in self.snapshots.values() if s["VolumeId"] in wanted]
        }


def pv(name: str, volume_id: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id}},
    }


@pytest.fixture
def setup(tmp_path: Path) -> tuple[SnapshotData, FakeEc2, list[dict[str, Any]]]:
    ec2 = FakeEc2()
    ec2.volumes["vol-old"] = {"VolumeId": "vol-old"}
    ec2.volumes["vol-new"] = {"VolumeId": "vol-new", "SnapshotId": "snap-1"}
    ec2.snapshots["snap-1"] = {
        "SnapshotId": "snap-1",
        "VolumeId": "vol-old",
        "State": "pending",
    }
    home = tmp_path / "volumes" / "pv-old"
    (home / "work").mkdir(parents=True)
    (home / "work" / "a.txt").write_text("first")
    return SnapshotData(ec2, tmp_path, scan_every_s=0), ec2, [pv("pv-old", "vol-old")]


def test_snapshot_keeps_the_files_of_its_moment(setup) -> None:
    data, ec2, pvs = setup
    assert data.capture_new(pvs) == ["snap-1"]
    (data.volume_dir("pv-old") / "work" / "a.txt").write_text("changed later")
    new = pv("pv-new", "vol-new")
    assert data.prefill(new, pvs) is True
    assert (data.volume_dir("pv-new") / "work" / "a.txt").read_text() == "first"
    assert data.prefill(new, pvs) is False, "restored only once"


def test_restore_captures_a_snapshot_not_seen_yet(setup) -> None:
    data, _, pvs = setup
    assert data.prefill(pv("pv-new", "vol-new"), pvs) is True
    assert (data.volume_dir("pv-new") / "work" / "a.txt").read_text() == "first"
    assert data.captured == {"snap-1"}


def test_restore_fills_an_empty_directory_a_mount_made(setup) -> None:
    data, _, pvs = setup
    data.volume_dir("pv-new").mkdir(parents=True)
    assert data.prefill(pv("pv-new", "vol-new"), pvs) is True
    assert (data.volume_dir("pv-new") / "work" / "a.txt").exists()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        pytest.param(pv("pv-x", "vol-old"), "not from a snapshot", id="plain-volume"),
        pytest.param(pv("pv-x", "vol-gone"), "volume missing", id="no-volume"),
        pytest.param(
            {"metadata": {"name": "nfs"}, "spec": {}}, "not EBS", id="not-ebs"
        ),
    ],
)
def test_nothing_to_restore(setup, target: dict[str, Any], reason: str) -> None:
    data, _, pvs = setup
    assert data.prefill(target, pvs) is False, reason
    assert not data.volume_dir("pv-x").exists()


def test_unknown_source_is_not_restored(
    setup, caplog: pytest.LogCaptureFixture
) -> None:
    data, _, _ = setup
    assert data.prefill(pv("pv-new", "vol-new"), []) is False
    assert "contents of snapshot snap-1 are unknown" in caplog.text


class Store:
    def __init__(self, pvs: list[dict[str, Any]]) -> None:
        self.pvs = pvs

    def items_raw(self, plural: str) -> list[dict[str, Any]]:
        assert plural == "persistentvolumes"
        return self.pvs


class Loop:
    def __init__(self, ebs: FakeEc2, store: Store) -> None:
        self.ebs, self.store, self.passes = ebs, store, 0

    async def run_pass(self) -> None:
        self.passes += 1


async def test_install_restores_before_each_pass_and_looks_once(
    setup, tmp_path
) -> None:
    _, ec2, pvs = setup
    loop = Loop(ec2, Store([*pvs, pv("pv-new", "vol-new")]))
    data = install(loop, tmp_path)
    assert install(loop, tmp_path) is data, "installing twice wraps once"
    await loop.run_pass()
    assert loop.passes == 1
    assert (data.volume_dir("pv-new") / "work" / "a.txt").read_text() == "first"
    looked = len(ec2.calls)
    await loop.run_pass()
    assert "describe_volumes" not in ec2.calls[looked:], "PVs are looked at once"
