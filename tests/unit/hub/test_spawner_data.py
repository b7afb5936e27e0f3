"""The spawner gives a user's pod the ServiceAccount and volumes of their groups.

A user without data grants gets exactly the pod they got before data access
existed, also from a spawner whose previous start had grants; a start whose
ServiceAccount was never made is refused with what to do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.unit.hub.test_spawner import Source, bob, make_spawner
from wbspawner.hub.spawner import WorkbenchSpawner
from wbspawner.model import DataSettings, GroupData, Profiles, S3Grant, SharedVolume
from wbspawner.profiles.data_access import access_for

pytestmark = pytest.mark.usefixtures("offline_kubeconfig")

SHARED = SharedVolume(
    name="shared", mount_path="/data/shared", kind="claim", claim="shared-data"
)
DATA = DataSettings(
    groups={
        "jupyter-users": GroupData(
            s3=(S3Grant(bucket="team-a", access="read-write"),), volumes=(SHARED,)
        )
    }
)


async def _pod(spawner: WorkbenchSpawner) -> dict[str, Any]:
    spawner.user_options = {"profile": "large", "image": "datascience"}
    await spawner.load_user_options()
    pod: dict[str, Any] = spawner.api.api_client.sanitize_for_serialization(
        await spawner.get_pod_manifest()
    )
    kubernetes_validate.validate(pod, "1.30", strict=True)
    return pod


async def test_grants_become_the_pods_account_and_mounts(profiles: Profiles) -> None:
    with_data = dataclasses.replace(profiles, data=DATA)
    spec = (await _pod(make_spawner(Source(with_data), bob())))["spec"]
    access = access_for(DATA, ["jupyter-users"])
    assert spec["serviceAccountName"] == access.service_account
    assert spec["automountServiceAccountToken"] is False
    assert [v["name"] for v in spec["volumes"]] == ["home", "data-shared"]
    assert spec["volumes"][1]["persistentVolumeClaim"] == {
        "claimName": "shared-data",
        "readOnly": True,
    }
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["/data/shared"]["readOnly"] is True


async def test_without_grants_the_pod_is_todays(profiles: Profiles) -> None:
    source = Source(profiles)
    spawner = make_spawner(source, bob())
    before = await _pod(spawner)
    source.profiles = dataclasses.replace(profiles, data=DATA)
    granted = await _pod(spawner)
    assert granted["spec"]["serviceAccountName"]
    source.profiles = profiles  # the grant is gone before the next start
    after = await _pod(spawner)
    assert after["spec"] == before["spec"]
    assert "serviceAccountName" not in after["spec"]


async def test_a_missing_service_account_is_explained(profiles: Profiles) -> None:
    spawner = make_spawner(Source(dataclasses.replace(profiles, data=DATA)), bob())
    await _pod(spawner)
    account = spawner.service_account
    said = (
        f'pods "jupyter-bob" is forbidden: error looking up service account '
        f'jhub/{account}: serviceaccount "{account}" not found'
    )
    refused = ApiException(status=403, reason="Forbidden")
    refused.body = json.dumps({"kind": "Status", "message": said, "code": 403})
    inner = asyncio.get_running_loop().create_future()
    inner.set_exception(refused)
    result, refusal = await spawner._outcome(inner)
    assert result is None and refusal is not None
    assert "Ask an admin to run `wbspawner data apply`" in refusal.message
    other = asyncio.get_running_loop().create_future()
    other.set_exception(ApiException(status=500, reason="Internal"))
    with pytest.raises(ApiException):
        await spawner._outcome(other)
