"""Security properties of every pod wbspawner asks for, for every example size.

User servers (``wbspawner.spawn.manifests``, turned into a pod by KubeSpawner's own
``make_pod``) and Dask schedulers and workers (``wbspawner.gateway.pods``) run
as a non-root uid, with no privilege escalation, no capabilities and the
runtime's default seccomp profile, and never with host namespaces, host paths
or privileged containers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from kubespawner.objects import make_pod

from tests.paths import REPO
from wbspawner.catalog.instances import load_catalog
from wbspawner.errors import UserFacingError
from wbspawner.gateway import pods
from wbspawner.gateway.workers import worker_resources
from wbspawner.model import Profiles
from wbspawner.profiles.loader import load_profiles
from wbspawner.spawn import manifests

PROFILE_SETS = {
    "profiles": REPO / "profiles",
    **{
        p.name: p
        for p in sorted((REPO / "profiles" / "examples").iterdir())
        if p.is_dir()
    },
}
UID, GID = 20001, 20001
FORBIDDEN = {"privileged", "hostNetwork", "hostPID", "hostIPC", "hostPath"}


@functools.cache
def _profiles(name: str) -> Profiles:
    return load_profiles([PROFILE_SETS[name]], load_catalog())


def _walk_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _walk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk_keys(inner)


def _serialize(obj: Any) -> dict[str, Any]:
    """Kubernetes camelCase dict of a client object, as KubeSpawner sends it.

    ``ApiClient()`` opens an aiohttp session (needs a running loop); the
    serialisation itself uses no instance state.
    """
    client = ApiClient.__new__(ApiClient)
    result: dict[str, Any] = client.sanitize_for_serialization(obj)
    return result


def _user_cases() -> Iterator[Any]:
    for name in PROFILE_SETS:
        profiles = _profiles(name)
        for size in profiles.sizes:
            for image in size.images:
                yield pytest.param(
                    name, size.slug, image.slug, id=f"{name}-{size.slug}-{image.slug}"
                )


def _assert_locked_down(pod_sc: dict[str, Any], container_sc: dict[str, Any]) -> None:
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_sc.get("runAsUser") != 0
    assert container_sc["runAsNonRoot"] is True
    assert container_sc["allowPrivilegeEscalation"] is False
    assert container_sc["capabilities"] == {"drop": ["ALL"]}
    assert container_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not container_sc.get("privileged")


@pytest.mark.parametrize(
    ("profiles_name", "size_slug", "image_slug"), list(_user_cases())
)
def test_user_pod_runs_as_the_user_locked_down(profiles_name, size_slug, image_slug):
    profiles = _profiles(profiles_name)
    size = profiles.size(size_slug)
    assert size is not None
    image = next(i for i in size.images if i.slug == image_slug)
    user = manifests.SpawnUser(name="alice", uid=UID, gid=GID, home_size_gib=10)
    out = manifests.overrides_for(
        size, image, profiles.pool_of(size), user, "us-east-1a", profiles.homes
    )
    assert not FORBIDDEN & set(_walk_keys(out))
    pod = make_pod(
        name="jupyter-alice",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image=out["image"],
        uid=out["uid"],
        gid=out["gid"],
        fs_gid=out["fs_gid"],
        supplemental_gids=out["supplemental_gids"],
        allow_privilege_escalation=out["allow_privilege_escalation"],
        container_security_context=out["container_security_context"],
        pod_security_context=out["pod_security_context"],
        volumes=out.get("volumes"),
        volume_mounts=out.get("volume_mounts"),
    )
    spec = _serialize(pod)["spec"]
    assert not FORBIDDEN & set(_walk_keys(spec))
    (container,) = spec["containers"]
    _assert_locked_down(spec["securityContext"], container["securityContext"])
    assert spec["securityContext"]["runAsUser"] == UID
    assert spec["securityContext"]["runAsGroup"] == GID
    assert spec["securityContext"]["fsGroup"] in (GID, manifests.USERS_GID)
    assert container["securityContext"].get("runAsUser") in (None, UID)
    for volume in spec.get("volumes", []):
        assert set(volume) <= {
            "name",
            "persistentVolumeClaim",
            "emptyDir",
            "configMap",
            "secret",
            "projected",
        }


@pytest.mark.parametrize(
    ("uid", "gid", "match"),
    [
        (0, GID, "root"),
        (UID, 0, "root"),
        (None, GID, "no uidNumber"),
        (UID, None, "no gidNumber"),
        (-5, GID, "out of range"),
    ],
    ids=["uid-0", "gid-0", "no-uid", "no-gid", "negative"],
)
def test_user_pod_never_runs_as_root(uid, gid, match):
    with pytest.raises(UserFacingError, match=match):
        manifests.security_context(uid, gid, "mallory")


def _dask_cases() -> Iterator[Any]:
    for name in PROFILE_SETS:
        profiles = _profiles(name)
        for size in profiles.dask.worker_sizes:
            yield pytest.param(name, size.name, id=f"{name}-{size.name}")


@pytest.mark.parametrize(("profiles_name", "size_name"), list(_dask_cases()))
def test_dask_pods_are_locked_down(profiles_name, size_name):
    profiles = _profiles(profiles_name)
    size = next(s for s in profiles.dask.worker_sizes if s.name == size_name)
    pool = profiles.pools[size.pool]
    sched_pool = profiles.pools.get(profiles.dask.scheduler_pool or "", pool)
    out = pods.kube_overrides(
        size, pool, sched_pool, worker_resources(size, pool), "alice"
    )
    assert not FORBIDDEN & set(_walk_keys(out))
    for role in ("worker", "scheduler"):
        pod_sc = out[f"{role}_extra_pod_config"]["securityContext"]
        container_sc = out[f"{role}_extra_container_config"]["securityContext"]
        _assert_locked_down(pod_sc, container_sc)
        assert pod_sc["runAsUser"] == pods.DASK_UID != 0
        # The owner label is what the scheduler network policy selects on.
        assert out[f"{role}_extra_pod_labels"][manifests.USER_LABEL] == "alice"


def test_every_profile_set_has_sizes_and_dask_sizes_somewhere():
    sizes = sum(len(_profiles(n).sizes) for n in PROFILE_SETS)
    dask = sum(len(_profiles(n).dask.worker_sizes) for n in PROFILE_SETS)
    assert sizes >= 4
    assert dask >= 1
