"""Pure builders of what a home move writes: PV, claim, tags, ids and times.

This module owns the *shape* of the objects a move creates, so that the state
machine in :mod:`wbspawner.homes.move` only decides *when* to write them. Every
function returns new data and never mutates its inputs.

The static PV follows the EBS CSI driver's static-provisioning example (driver
``ebs.csi.aws.com``, ``volumeHandle``, ``fsType``, zone node affinity) and is
pre-bound to the user's claim through ``claimRef`` (no uid), so the PV
controller binds it to the new claim that names it in ``spec.volumeName``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from wbspawner.homes.records import (
    EBS_DRIVER,
    TAG_MOVE_ID,
    TAG_MOVED_FROM,
    TAG_USER,
    Obj,
    VolumeInfo,
)
from wbspawner.model import ZONE_LABEL

CREATED_BY_MOVE = "wbspawner.io/created-by-move"
"""Annotation on a PV (and its volume's tags) made by a move: the move id."""

_SYSTEM_ANNOTATION_PREFIXES = (
    "pv.kubernetes.io/",
    "volume.beta.kubernetes.io/",
    "volume.kubernetes.io/",
    "kubectl.kubernetes.io/",
)
"""Annotations the control plane owns on a claim; never copied to a new claim."""
_CSI_TAGS_NAMING_THE_PV = ("CSIVolumeName", "kubernetes.io/created-for/pv/name")
_LABEL_VALUE_OK = re.compile(r"[^A-Za-z0-9_.-]")


def iso(moment: datetime) -> str:
    """Return an RFC 3339 UTC timestamp with seconds, e.g. ``2026-05-01T08:00:00Z``.

    Args:
        moment: an aware datetime.

    Returns:
        The text.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retain_until(moved_at: datetime, days: int) -> str:
    """Return when the old volume and snapshot of a move may be deleted.

    Args:
        moved_at: when the move was recorded.
        days: the retention (``homes.retention_days``).

    Returns:
        An RFC 3339 timestamp.
    """
    return iso(moved_at + timedelta(days=max(days, 0)))


def make_move_id(now: datetime, token: str) -> str:
    """Return a new move id, e.g. ``m20260501t080000-a1b2c3``.

    Args:
        now: when the move starts.
        token: a few random hex characters.

    Returns:
        A lowercase id usable in PV names, tag values and client tokens.
    """
    return f"m{now.astimezone(UTC):%Y%m%dt%H%M%S}-{token}".lower()


def label_value(text: str) -> str:
    """Return ``text`` as a valid label value (≤ 63 characters, safe characters).

    Args:
        text: e.g. a user name.

    Returns:
        The value; characters a label may not hold become ``-``.
    """
    value = _LABEL_VALUE_OK.sub("-", text)[:63].strip("-_.")
    return value or "x"


def target_pv_name(claim: str, move_id: str) -> str:
    """Return the name of the static PV a move creates.

    Args:
        claim: the user's claim name, e.g. ``home-alice``.
        move_id: the move id.

    Returns:
        ``<claim>-<move id>``, at most 253 characters.
    """
    return f"{claim}-{move_id}"[-253:].lstrip("-.")


def claim_record(pvc: Mapping[str, Any]) -> str:
    """Return what is needed to rebuild a claim, as compact JSON.

    Stored on the old PV when a move starts, so that a move interrupted after the
    old claim was deleted can still create the new one alike.

    Args:
        pvc: the user's claim.

    Returns:
        JSON with the claim's labels, user annotations and spec essentials.
    """
    meta = pvc.get("metadata") or {}
    spec = pvc.get("spec") or {}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(_SYSTEM_ANNOTATION_PREFIXES)
    }
    record = {
        "labels": dict(meta.get("labels") or {}),
        "annotations": annotations,
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "resources": dict(spec.get("resources") or {}),
        "storageClassName": spec.get("storageClassName"),
        "volumeMode": spec.get("volumeMode") or "Filesystem",
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def new_claim(
    record: str, name: str, pv_name: str, annotations: Mapping[str, str]
) -> Obj:
    """Return a claim rebuilt from :func:`claim_record`, bound to ``pv_name``.

    Args:
        record: the JSON from :func:`claim_record`.
        name: the claim's name.
        pv_name: the PV it names in ``spec.volumeName``.
        annotations: extra annotations (the move's record).

    Returns:
        The claim, without namespace (the API path gives it).
    """
    data: dict[str, Any] = json.loads(record)
    spec: Obj = {
        "accessModes": list(data.get("accessModes") or ["ReadWriteOnce"]),
        "resources": dict(data.get("resources") or {}),
        "volumeName": pv_name,
        "volumeMode": data.get("volumeMode") or "Filesystem",
    }
    if data.get("storageClassName") is not None:
        spec["storageClassName"] = data["storageClassName"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "labels": dict(data.get("labels") or {}),
            "annotations": {**(data.get("annotations") or {}), **annotations},
        },
        "spec": spec,
    }


def static_pv(
    name: str,
    like: Mapping[str, Any],
    volume: VolumeInfo,
    claim: tuple[str, str],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> Obj:
    """Return a static EBS PV for ``volume``, pinned to its zone, pre-bound to a claim.

    Args:
        name: the PV's name.
        like: the old PV (access modes, fsType, volume mode, StorageClass).
        volume: the new EBS volume.
        claim: ``(namespace, name)`` of the claim it is reserved for.
        labels: labels of the PV.
        annotations: annotations of the PV.

    Returns:
        The PV with reclaim policy ``Retain``.
    """
    spec = like.get("spec") or {}
    csi = spec.get("csi") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
        "spec": {
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": f"{volume.size_gib}Gi"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim[0],
                "name": claim[1],
            },
            "csi": {
                "driver": EBS_DRIVER,
                "volumeHandle": volume.volume_id,
                "fsType": csi.get("fsType") or "ext4",
            },
            "nodeAffinity": zone_affinity(volume.zone),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode") or "Filesystem",
        },
    }


def zone_affinity(zone: str) -> Obj:
    """Return a PV ``nodeAffinity`` that pins its pods to one zone.

    Args:
        zone: the availability zone.

    Returns:
        The ``spec.nodeAffinity`` value.
    """
    expr = {"key": ZONE_LABEL, "operator": "In", "values": [zone]}
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}}


def prebind_patch(namespace: str, claim: str) -> Obj:
    """Return a merge patch that reserves a PV for a claim that does not exist yet.

    A Released PV keeps the uid of its deleted claim and binds to nothing; with
    the uid removed, the PV controller binds it to the claim of that name that
    names the PV in ``spec.volumeName``.

    Args:
        namespace: the claim's namespace.
        claim: the claim's name.

    Returns:
        The patch.
    """
    return {
        "spec": {
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": namespace,
                "name": claim,
                "uid": None,
                "resourceVersion": None,
            }
        }
    }


def snapshot_tags(user: str, move_id: str, source: VolumeInfo) -> dict[str, str]:
    """Return the tags of a move's snapshot.

    Args:
        user: the home's owner.
        move_id: the move.
        source: the volume being snapshotted.

    Returns:
        The tags.
    """
    return {
        TAG_USER: user,
        TAG_MOVE_ID: move_id,
        TAG_MOVED_FROM: source.volume_id,
        "Name": f"home of {user} ({move_id})",
    }


def volume_tags(
    user: str, move_id: str, source: VolumeInfo, pv_name: str
) -> dict[str, str]:
    """Return the tags of the new volume: the old volume's, updated for the move.

    The old volume's tags (owner, cost centre, the CSI driver's claim tags) are
    kept; tags naming the old PV now name the new one; AWS-reserved ``aws:``
    tags are dropped (they cannot be set).

    Args:
        user: the home's owner.
        move_id: the move.
        source: the old volume.
        pv_name: the new PV's name.

    Returns:
        The tags.
    """
    tags = {k: v for k, v in source.tags.items() if not k.startswith("aws:")}
    for key in _CSI_TAGS_NAMING_THE_PV:
        if key in tags:
            tags[key] = pv_name
    tags.update(
        {
            TAG_USER: user,
            TAG_MOVE_ID: move_id,
            TAG_MOVED_FROM: source.volume_id,
            CREATED_BY_MOVE: move_id,
        }
    )
    return tags
