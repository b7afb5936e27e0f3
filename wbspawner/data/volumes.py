"""Plan the static volumes of EFS shares: a PersistentVolume and claim per namespace.

This module owns the Kubernetes side of shared file systems that
``wbspawner data apply`` makes: each ``efs`` volume of the data section gets,
in each namespace, a PersistentVolume of the EFS CSI driver bound by name to a
claim (:func:`wbspawner.spawn.data_pods.efs_objects`). A PersistentVolume's
source cannot change, so a volume whose file system changed is deleted (claim
first) and made anew; volumes no group names any more are deleted. NFS exports
and existing claims need nothing made.

Pure: no I/O.
"""

from __future__ import annotations

from wbspawner.data.state import Action, Observed, Target
from wbspawner.model import DataSettings, SharedVolume
from wbspawner.spawn import data_pods as pods


def efs_volumes(settings: DataSettings) -> dict[str, SharedVolume]:
    """Return the EFS volumes of every group, by name."""
    return {
        v.name: v
        for data in settings.groups.values()
        for v in data.volumes
        if v.kind == "efs"
    }


def volume_actions(
    target: Target, settings: DataSettings, observed: Observed
) -> list[Action]:
    """Return the actions that make each EFS share's volume and claim so.

    Args:
        target: the namespaces.
        settings: the profiles' data section.
        observed: wbspawner's volumes and claims now.

    Returns:
        Per share and namespace: a changed volume's deletion, then creations;
        at the end the deletion of claims and volumes no share needs.
    """
    out: list[Action] = []
    wanted_pv: set[str] = set()
    wanted_pvc: set[tuple[str, str]] = set()
    for volume in efs_volumes(settings).values():
        for ns in target.namespaces:
            pv, pvc = pods.efs_objects(volume, ns)
            pv_name, claim = pv["metadata"]["name"], pvc["metadata"]["name"]
            wanted_pv.add(pv_name)
            wanted_pvc.add((ns, claim))
            have = observed.volumes.get(pv_name)
            handle = pods.efs_volume_handle(volume)
            same = have is not None and (
                ((have.get("spec") or {}).get("csi") or {}).get("volumeHandle")
                == handle
            )
            if not same:
                if have is not None:  # a PV's source cannot change: make it anew
                    out += _delete_volume(ns, claim, pv_name, "its file system changed")
                out.append(
                    Action(
                        kind="create-volume",
                        target=pv_name,
                        detail=f"EFS {handle} for {ns}",
                        params=pv,
                    )
                )
            if not same or (ns, claim) not in observed.claims:
                out.append(
                    Action(
                        kind="create-claim",
                        target=f"{ns}/{claim}",
                        detail=f"bound to {pv_name}",
                        params=pvc,
                    )
                )
    for ns, claim in sorted(set(observed.claims) - wanted_pvc):
        out.append(
            Action(kind="delete-claim", target=f"{ns}/{claim}", detail="no longer used")
        )
    for pv_name in sorted(set(observed.volumes) - wanted_pv):
        out.append(
            Action(kind="delete-volume", target=pv_name, detail="no longer used")
        )
    return out


def _delete_volume(ns: str, claim: str, pv: str, why: str) -> list[Action]:
    return [
        Action(kind="delete-claim", target=f"{ns}/{claim}", detail=why),
        Action(kind="delete-volume", target=pv, detail=why),
    ]
