"""The server's data pieces: its ServiceAccount, shared volumes, EFS objects."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from wbspawner.model import HomeSettings, S3Grant, SharedVolume
from wbspawner.profiles.data_access import DataAccess
from wbspawner.spawn import data_pods
from wbspawner.spawn.manifests import home_storage

K8S = "1.33"
EFS = SharedVolume(
    name="shared",
    mount_path="/data/shared",
    kind="efs",
    file_system_id="fs-12345678",
    access_point="fsap-87654321",
)
NFS = SharedVolume(
    name="scratch",
    mount_path="/data/scratch",
    read_only=False,
    kind="nfs",
    server="nfs.example.org",
    path="/exports/scratch",
)
CLAIM = SharedVolume(
    name="ref", mount_path="/data/ref", kind="claim", claim="reference-data"
)


def test_no_data_leaves_the_overrides_alone() -> None:
    base = home_storage(HomeSettings(), 10)
    kept = copy.deepcopy(base)
    assert data_pods.with_data(base, DataAccess()) == kept
    assert base == kept


def test_grants_add_the_account_and_volumes_after_the_home() -> None:
    access = DataAccess(s3=(S3Grant(bucket="b"),), volumes=(CLAIM, EFS, NFS))
    out = data_pods.with_data(home_storage(HomeSettings(), 10), access)
    assert out["service_account"] == access.service_account
    assert out["automount_service_account_token"] is False
    assert [v["name"] for v in out["volumes"]] == [
        "home",
        "data-ref",
        "data-shared",
        "data-scratch",
    ]
    assert out["volumes"][1]["persistentVolumeClaim"] == {
        "claimName": "reference-data",
        "readOnly": True,
    }
    assert out["volumes"][3]["nfs"] == {
        "server": "nfs.example.org",
        "path": "/exports/scratch",
        "readOnly": False,
    }
    assert [(m["mountPath"], m.get("readOnly")) for m in out["volume_mounts"]] == [
        ("/home/jovyan", None),
        ("/data/ref", True),
        ("/data/shared", True),
        ("/data/scratch", False),
    ]


def test_volumes_only_keep_the_configured_account() -> None:
    out = data_pods.with_data({}, DataAccess(volumes=(NFS,)))
    assert "service_account" not in out


@pytest.mark.parametrize("namespace", ["jhub", "dask-gateway"])
def test_efs_objects_bind_to_each_other_and_validate(namespace: str) -> None:
    pv, pvc = data_pods.efs_objects(EFS, namespace)
    kubernetes_validate.validate(pv, K8S, strict=True)
    kubernetes_validate.validate(pvc, K8S, strict=True)
    assert pv["spec"]["csi"] == {
        "driver": "efs.csi.aws.com",
        "volumeHandle": "fs-12345678::fsap-87654321",
    }
    assert pv["spec"]["claimRef"] == {
        "namespace": namespace,
        "name": pvc["metadata"]["name"],
    }
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["metadata"]["name"] == data_pods.claim_name(EFS)


def test_service_account_validates() -> None:
    sa = data_pods.service_account(
        "wbspawner-data-0123456789", "jhub", "arn:aws:iam::1:role/r", "0123456789"
    )
    kubernetes_validate.validate(sa, K8S, strict=True)
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"
    }
