"""Fakes of the EC2 and Kubernetes adapters for the home tests.

- ``FakeEc2``: volumes and snapshots in memory (``records.VolumeApi``); every
  volume and snapshot carries ``data`` bytes, copied by snapshot and restore, so
  tests can tell whether a user's files survive. Snapshots stay ``pending`` for
  ``pending_polls`` describes. ``deleted`` lists every deletion.
- ``FakeKube``: claims, PVs and pods in memory (``records.ClaimApi``, async) with a
  small PV controller like Kubernetes': a claim naming a PV binds to it when the
  PV's ``claimRef`` allows; deleting a claim releases its PV, and a PV with
  reclaim policy ``Delete`` then deletes its volume in ``FakeEc2`` (which is
  exactly the loss ``Retain`` must prevent). A claim used by a pod stays
  terminating (``kubernetes.io/pvc-protection``).
- ``Faults``: makes the n-th adapter call raise, to inject failures and crashes
  (``Crash`` is a ``BaseException``, like a killed process: no cleanup runs).
- ``world(pending_polls=2)``: a cluster with alice's bound 10 GiB home in
  us-east-1a holding ``DATA`` (the ``alice_home`` fixture; called directly where
  a table needs it at collection or the snapshots must stay pending longer).
- ``home_data(kube, ec2)``: the bytes alice's claim resolves to; ``pv_data`` the
  bytes of every PV's volume.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wbspawner.errors import KubeError, PermanentAwsError
from wbspawner.homes.records import SnapshotInfo, VolumeInfo

NS, USER, CLAIM = "jhub", "alice", "home-alice"
A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"
DATA = b"alice's notebooks \x00\x01" * 100
Obj = dict[str, Any]


class Crash(BaseException):  # noqa: N818 - it models a dying process, not an error
    """The process dies here (nothing catches it)."""


class Faults:
    """Make the ``at``-th adapter call (0-based, over both fakes) raise ``error``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.at: int | None = None
        self.error: BaseException | None = None
        self.only: str | None = None
        self.times: int | None = None

    def fail(self, at: int, error: BaseException) -> None:
        self.at, self.error = at, error

    def fail_method(
        self, method: str, error: BaseException, times: int | None = None
    ) -> None:
        """Make calls of ``method`` raise (``times`` times; ``None``: always)."""
        self.only, self.error, self.times = method, error, times

    def clear(self) -> None:
        self.at = self.error = self.only = self.times = None

    def hit(self, name: str) -> None:
        index = len(self.calls)
        self.calls.append(name)
        if self.error is None:
            return
        if index == self.at or (self.only is not None and name == self.only):
            error = self.error
            self.at = None
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.clear()
            raise error


class FakeEc2:
    """EBS volumes and snapshots in memory."""

    def __init__(self, faults: Faults, pending_polls: int = 2) -> None:
        self.faults = faults
        self.pending_polls = pending_polls
        self.volumes: dict[str, VolumeInfo] = {}
        self.snapshots: dict[str, SnapshotInfo] = {}
        self.data: dict[str, bytes] = {}
        self.polls: dict[str, int] = {}
        self.deleted: list[str] = []
        self.created: list[str] = []
        self._ids = itertools.count(1)

    def add_volume(self, zone: str, data: bytes, **kw: Any) -> VolumeInfo:
        vid = f"vol-{next(self._ids):017x}"
        vol = VolumeInfo(volume_id=vid, zone=zone, size_gib=10, **kw)
        self.volumes[vid], self.data[vid] = vol, data
        return vol

    @staticmethod
    def _has(tags: Mapping[str, str], want: Mapping[str, str]) -> bool:
        return all(tags.get(k) == v for k, v in want.items())

    def describe_volume(self, volume_id: str) -> VolumeInfo | None:
        self.faults.hit("ec2.describe_volume")
        vol = self.volumes.get(volume_id)
        if vol is not None and vol.state == "creating":  # available on the next look
            self.volumes[volume_id] = replace(vol, state="available")
        return vol

    def find_volumes(
        self, tags: Mapping[str, str], zone: str | None = None
    ) -> list[VolumeInfo]:
        self.faults.hit("ec2.find_volumes")
        return [
            v
            for v in self.volumes.values()
            if self._has(v.tags, tags) and zone in (None, v.zone)
        ]

    def create_volume_from_snapshot(
        self,
        snapshot_id: str,
        like: VolumeInfo,
        zone: str,
        tags: Mapping[str, str],
        client_token: str,
    ) -> VolumeInfo:
        self.faults.hit("ec2.create_volume_from_snapshot")
        for vid, vol in self.volumes.items():  # ClientToken: same request, same volume
            if self.data.get(f"token:{vid}") == client_token.encode():
                return vol
        vol = self.add_volume(
            zone,
            self.data[snapshot_id],
            volume_type=like.volume_type,
            iops=like.iops,
            throughput=like.throughput,
            encrypted=like.encrypted,
            kms_key_id=like.kms_key_id,
            snapshot_id=snapshot_id,
            tags=dict(tags),
            state="creating",
        )
        self.volumes[vol.volume_id] = replace(vol, size_gib=like.size_gib)
        self.data[f"token:{vol.volume_id}"] = client_token.encode()
        self.created.append(vol.volume_id)
        return self.volumes[vol.volume_id]

    def describe_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        self.faults.hit("ec2.describe_snapshot")
        snap = self.snapshots.get(snapshot_id)
        if snap is not None and snap.state == "pending":
            self.polls[snapshot_id] = self.polls.get(snapshot_id, 0) + 1
            if self.polls[snapshot_id] >= self.pending_polls:
                snap = self.snapshots[snapshot_id] = replace(snap, state="completed")
        return snap

    def find_snapshots(self, tags: Mapping[str, str]) -> list[SnapshotInfo]:
        self.faults.hit("ec2.find_snapshots")
        return [s for s in self.snapshots.values() if self._has(s.tags, tags)]

    def create_snapshot(
        self, volume_id: str, description: str, tags: Mapping[str, str]
    ) -> SnapshotInfo:
        self.faults.hit("ec2.create_snapshot")
        if volume_id not in self.volumes:
            raise PermanentAwsError("no such volume", code="InvalidVolume.NotFound")
        sid = f"snap-{next(self._ids):017x}"
        self.snapshots[sid] = SnapshotInfo(
            snapshot_id=sid,
            volume_id=volume_id,
            state="pending",
            tags=dict(tags),
            size_gib=self.volumes[volume_id].size_gib,
        )
        self.data[sid] = self.data[volume_id]
        self.created.append(sid)
        return self.snapshots[sid]

    def tag(self, resource_id: str, tags: Mapping[str, str]) -> None:
        self.faults.hit("ec2.tag")
        if resource_id in self.volumes:
            vol = self.volumes[resource_id]
            self.volumes[resource_id] = replace(vol, tags={**vol.tags, **tags})
        else:
            snap = self.snapshots[resource_id]
            self.snapshots[resource_id] = replace(snap, tags={**snap.tags, **tags})

    def delete_volume(self, volume_id: str) -> bool:
        self.faults.hit("ec2.delete_volume")
        self.deleted.append(volume_id)
        return self.volumes.pop(volume_id, None) is not None

    def delete_snapshot(self, snapshot_id: str) -> bool:
        self.faults.hit("ec2.delete_snapshot")
        self.deleted.append(snapshot_id)
        return self.snapshots.pop(snapshot_id, None) is not None


class FakeKube:
    """Claims, PVs and pods in memory, with a PV controller acting on every call."""

    def __init__(self, faults: Faults, ec2: FakeEc2) -> None:
        self.faults = faults
        self.ec2 = ec2
        self.pvcs: dict[tuple[str, str], Obj] = {}
        self.pvs: dict[str, Obj] = {}
        self.pods: dict[tuple[str, str], str] = {}
        """(namespace, pod) -> claim it uses."""
        self._uids = itertools.count(1)

    # ------------------------------------------------------------ controller
    def reconcile(self) -> None:
        for (ns, name), pvc in list(self.pvcs.items()):
            meta = pvc["metadata"]
            if meta.get("deletionTimestamp") and not self._used(ns, name):
                self._remove_claim(ns, name)
                continue
            pv = self.pvs.get(pvc["spec"].get("volumeName") or "")
            if pv is None or pvc["status"].get("phase") == "Bound":
                continue
            ref = pv["spec"].get("claimRef") or {}
            if (ref.get("namespace"), ref.get("name")) != (ns, name):
                continue
            if ref.get("uid") not in (None, meta["uid"]):
                continue  # Released: still names its deleted claim
            ref["uid"] = meta["uid"]
            pv["status"]["phase"] = "Bound"
            pvc["status"] = {"phase": "Bound"}

    def _used(self, ns: str, claim: str) -> bool:
        return any(c == claim and n == ns for (n, _), c in self.pods.items())

    def _remove_claim(self, ns: str, name: str) -> None:
        pvc = self.pvcs.pop((ns, name))
        pv = self.pvs.get(pvc["spec"].get("volumeName") or "")
        if (
            pv is None
            or pv["spec"].get("claimRef", {}).get("uid") != pvc["metadata"]["uid"]
        ):
            return
        if pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete":
            del self.pvs[pv["metadata"]["name"]]  # the CSI driver deletes the volume
            self.ec2.volumes.pop(pv["spec"]["csi"]["volumeHandle"], None)
            self.ec2.deleted.append(pv["spec"]["csi"]["volumeHandle"])
        else:
            pv["status"]["phase"] = "Released"

    def _hit(self, name: str) -> None:
        self.reconcile()
        self.faults.hit(name)

    # ---------------------------------------------------------------- claims
    async def get_pvc(self, namespace: str, name: str) -> Obj | None:
        self._hit("kube.get_pvc")
        return copy.deepcopy(self.pvcs.get((namespace, name)))

    async def create_pvc(self, namespace: str, body: Obj) -> Obj:
        self._hit("kube.create_pvc")
        name = body["metadata"]["name"]
        if (namespace, name) in self.pvcs:
            raise KubeError("exists", status=409, reason="AlreadyExists")
        pvc = copy.deepcopy(body)
        pvc["metadata"].update(namespace=namespace, uid=f"uid-{next(self._uids)}")
        pvc["status"] = {"phase": "Pending"}
        self.pvcs[(namespace, name)] = pvc
        self.reconcile()
        return copy.deepcopy(pvc)

    async def patch_pvc(self, namespace: str, name: str, patch: Obj) -> Obj:
        self._hit("kube.patch_pvc")
        pvc = self.pvcs[(namespace, name)]
        merge(pvc, patch)
        return copy.deepcopy(pvc)

    async def delete_pvc(self, namespace: str, name: str) -> None:
        self._hit("kube.delete_pvc")
        if (namespace, name) in self.pvcs:
            self.pvcs[(namespace, name)]["metadata"]["deletionTimestamp"] = "now"
            self.reconcile()

    # ------------------------------------------------------------------- PVs
    async def get_pv(self, name: str) -> Obj | None:
        self._hit("kube.get_pv")
        return copy.deepcopy(self.pvs.get(name))

    async def list_pvs(self, label_selector: str | None = None) -> list[Obj]:
        self._hit("kube.list_pvs")
        return [
            copy.deepcopy(pv)
            for pv in self.pvs.values()
            if not label_selector
            or label_selector in (pv["metadata"].get("labels") or {})
        ]

    async def create_pv(self, body: Obj) -> Obj:
        self._hit("kube.create_pv")
        name = body["metadata"]["name"]
        if name in self.pvs:
            raise KubeError("exists", status=409, reason="AlreadyExists")
        self.pvs[name] = {**copy.deepcopy(body), "status": {"phase": "Available"}}
        return copy.deepcopy(self.pvs[name])

    async def patch_pv(self, name: str, patch: Obj) -> Obj:
        self._hit("kube.patch_pv")
        merge(self.pvs[name], patch)
        return copy.deepcopy(self.pvs[name])

    async def delete_pv(self, name: str) -> None:
        self._hit("kube.delete_pv")
        self.pvs.pop(name, None)

    async def pods_using_claim(self, namespace: str, claim: str) -> list[str]:
        self._hit("kube.pods_using_claim")
        return sorted(
            p for (n, p), c in self.pods.items() if n == namespace and c == claim
        )


def merge(target: Obj, patch: Obj) -> None:
    """Apply a JSON merge patch in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def world(pending_polls: int = 2) -> tuple[FakeKube, FakeEc2, Faults]:
    """Alice's bound home in us-east-1a (dynamically provisioned, policy Delete)."""
    faults = Faults()
    ec2 = FakeEc2(faults, pending_polls)
    vol = ec2.add_volume(
        A,
        DATA,
        iops=3000,
        throughput=125,
        encrypted=True,
        kms_key_id="arn:key/1",
        tags={
            "CSIVolumeName": "pvc-1",
            "team": "data",
            "kubernetes.io/created-for/pv/name": "pvc-1",
        },
    )
    kube = FakeKube(faults, ec2)
    kube.pvs["pvc-1"] = {
        "metadata": {"name": "pvc-1"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "10Gi"},
            "claimRef": {"namespace": NS, "name": CLAIM, "uid": "uid-0"},
            "csi": {
                "driver": "ebs.csi.aws.com",
                "volumeHandle": vol.volume_id,
                "fsType": "ext4",
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "topology.kubernetes.io/zone",
                                    "operator": "In",
                                    "values": [A],
                                }
                            ]
                        }
                    ]
                }
            },
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "wbspawner-home",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    }
    kube.pvcs[(NS, CLAIM)] = {
        "metadata": {
            "name": CLAIM,
            "namespace": NS,
            "uid": "uid-0",
            "labels": {"hub.jupyter.org/username": USER},
            "annotations": {
                "hub.jupyter.org/username": USER,
                "pv.kubernetes.io/bind-completed": "yes",
            },
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "volumeName": "pvc-1",
            "resources": {"requests": {"storage": "10Gi"}},
            "storageClassName": "wbspawner-home",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    }
    return kube, ec2, faults


def home_data(kube: FakeKube, ec2: FakeEc2) -> bytes | None:
    """Return the bytes the user's claim resolves to (None: it resolves to nothing)."""
    pvc = kube.pvcs.get((NS, CLAIM))
    if pvc is None or pvc["metadata"].get("deletionTimestamp"):
        return None
    pv = kube.pvs.get(pvc["spec"].get("volumeName") or "")
    if pv is None:
        return None
    vid = pv["spec"]["csi"]["volumeHandle"]
    return ec2.data.get(vid) if vid in ec2.volumes else None


def pv_data(kube: FakeKube, ec2: FakeEc2) -> list[bytes]:
    """Return the bytes of every PV's existing volume (what an admin could recover)."""
    out = []
    for pv in kube.pvs.values():
        vid = pv["spec"]["csi"]["volumeHandle"]
        if vid in ec2.volumes:
            out.append(ec2.data[vid])
    return out
