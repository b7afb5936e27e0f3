"""Pod pieces from a size choice: placement, resources, labels, security, homes."""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

import pytest
import yaml

from tests.paths import REPO
from wbspawner.errors import UserFacingError
from wbspawner.homes.policy import zone_of_pv
from wbspawner.model import HomeSettings, Profiles
from wbspawner.profiles import access
from wbspawner.spawn.manifests import (
    HOME_VOLUME,
    PodChoice,
    SpawnUser,
    choice_of_pod,
    home_storage,
    label_value,
    labels,
    node_placement,
    overrides_for,
    resources,
    security_context,
)

GOLDEN = REPO / "tests" / "golden"
UPDATE_GOLDEN = os.environ.get("WBSPAWNER_UPDATE_GOLDEN") == "1"
BOB = SpawnUser(name="bob", uid=10002, gid=100, home_size_gib=20)


def test_placement_selects_pool_and_tolerates_its_taints(profiles: Profiles) -> None:
    placement = node_placement(profiles.pools["mem64"])
    assert placement["node_selector"] == {"wbspawner.io/pool": "mem64"}
    assert placement["tolerations"] == [
        {
            "key": "wbspawner.io/pool",
            "operator": "Equal",
            "value": "mem64",
            "effect": "NoSchedule",
        },
        {
            "key": "wbspawner.io/capacity",
            "operator": "Equal",
            "value": "spot",
            "effect": "NoSchedule",
        },
    ]


def test_placement_pins_the_zone_when_given(profiles: Profiles) -> None:
    placement = node_placement(profiles.pools["cpu16"], "us-east-1b")
    assert placement["node_selector"] == {
        "wbspawner.io/pool": "cpu16",
        "topology.kubernetes.io/zone": "us-east-1b",
    }


def test_gpu_pool_tolerates_the_gpu_taint(profiles: Profiles) -> None:
    keys = [t["key"] for t in node_placement(profiles.pools["gpu-t4"])["tolerations"]]
    assert keys == ["wbspawner.io/pool", "wbspawner.io/capacity", "nvidia.com/gpu"]


def test_on_demand_only_pool_has_no_spot_toleration(profiles: Profiles) -> None:
    on_demand = dataclasses.replace(
        profiles.pools["mem64"], capacity_types=("on-demand",)
    )
    keys = [t["key"] for t in node_placement(on_demand)["tolerations"]]
    assert keys == ["wbspawner.io/pool"]


@pytest.mark.parametrize(
    "pool_name", ["cpu4", "cpu16", "mem64", "mem128", "mem256", "mem512", "gpu-t4"]
)
def test_request_equals_limit_equals_full_node(
    profiles: Profiles, pool_name: str
) -> None:
    pool = profiles.pools[pool_name]
    res = resources(pool)
    assert res["cpu_guarantee"] == res["cpu_limit"] == pool.request.cpu_m / 1000
    assert res["mem_guarantee"] == res["mem_limit"] == pool.request.memory_mib * 2**20
    # A full-node request never exceeds the node's nominal memory.
    assert res["mem_limit"] < pool.memory_mib * 2**20


def test_gpu_pool_requests_and_limits_its_gpus(profiles: Profiles) -> None:
    res = resources(profiles.pools["gpu-a10g-x4"])
    assert res["extra_resource_guarantees"] == {"nvidia.com/gpu": "4"}
    assert res["extra_resource_limits"] == {"nvidia.com/gpu": "4"}
    assert "extra_resource_limits" not in resources(profiles.pools["mem64"])


def test_labels_and_annotations_name_pool_size_and_user(profiles: Profiles) -> None:
    size = profiles.size("large")
    assert size is not None
    out = labels(size, profiles.pools["mem64"], "first.last@example.org")
    assert out["extra_labels"]["wbspawner.io/pool"] == "mem64"
    assert out["extra_labels"]["wbspawner.io/size"] == "large"
    assert out["extra_annotations"]["wbspawner.io/user"] == "first.last@example.org"
    assert out["extra_annotations"]["wbspawner.io/on-demand-price"] == "0.5040"


@pytest.mark.parametrize("zone", [pytest.param("us-east-1b", id="pinned"), None])
def test_a_pod_says_what_it_was_made_for(profiles: Profiles, zone: str | None) -> None:
    """What a restarted hub reads back from a pod it did not see start."""
    size = profiles.size("gpu-t4")
    assert size is not None
    pool = profiles.pools["gpu-t4"]
    made = overrides_for(size, size.images[0], pool, BOB, zone, profiles.homes)
    pod = {
        "metadata": {
            "labels": made["extra_labels"],
            "annotations": made["extra_annotations"],
        },
        "spec": {"nodeSelector": made["node_selector"]},
    }
    assert choice_of_pod(pod) == PodChoice(size="gpu-t4", pool="gpu-t4", zone=zone)


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param(None, id="none"),
        pytest.param({}, id="empty"),
        pytest.param({"metadata": {"annotations": None}, "spec": {}}, id="nulls"),
    ],
)
def test_a_pod_of_no_size_says_nothing(pod: dict[str, Any] | None) -> None:
    assert choice_of_pod(pod) == PodChoice(size=None, pool=None, zone=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("bob", "bob", id="plain"),
        pytest.param("Bob_Smith.2", "Bob_Smith.2", id="allowed-punctuation"),
        pytest.param("a@b.org", "a-b.org-", id="at-sign-gets-hash"),
        pytest.param("-x-", "x-", id="edges-get-hash"),
    ],
)
def test_label_value_is_valid(text: str, expected: str) -> None:
    value = label_value(text)
    assert value.startswith(expected)
    assert len(value) <= 63
    assert value[0].isalnum() and value[-1].isalnum()


def test_long_label_values_stay_distinct() -> None:
    a, b = label_value("x" * 80 + "a"), label_value("x" * 80 + "b")
    assert len(a) == len(b) == 63
    assert a != b


def test_security_context_runs_as_the_user() -> None:
    out = security_context(10002, 100)
    assert (out["uid"], out["gid"], out["fs_gid"]) == (10002, 100, 100)
    assert out["allow_privilege_escalation"] is False
    assert out["container_security_context"] == {
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert out["pod_security_context"]["runAsUser"] == 10002
    assert out["pod_security_context"]["runAsNonRoot"] is True


@pytest.mark.parametrize(
    ("uid", "gid", "match"),
    [
        pytest.param(0, 100, "uidNumber is 0 \\(root\\)", id="root-uid"),
        pytest.param(10002, 0, "gidNumber is 0 \\(root\\)", id="root-gid"),
        pytest.param(None, 100, "has no uidNumber", id="missing-uid"),
        pytest.param(10002, None, "has no gidNumber", id="missing-gid"),
        pytest.param(-5, 100, "out of range", id="negative"),
        pytest.param(2**31, 100, "out of range", id="too-big"),
        pytest.param(True, 100, "not a number", id="bool"),
    ],
)
def test_security_context_refuses_root_and_missing_ids(
    uid: Any, gid: Any, match: str
) -> None:
    with pytest.raises(UserFacingError, match=match) as info:
        security_context(uid, gid, "bob")
    assert info.value.reason == "account"


def test_home_storage_mounts_the_users_claim() -> None:
    homes = HomeSettings(storage_class="gp3-home", mount_path="/home/jovyan")
    out = home_storage(homes, 50)
    assert out["storage_pvc_ensure"] is True
    assert out["storage_class"] == "gp3-home"
    assert out["storage_capacity"] == "50Gi"
    assert out["volumes"] == [
        {"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    ]
    assert out["volume_mounts"] == [{"name": HOME_VOLUME, "mountPath": "/home/jovyan"}]


def test_overrides_do_not_mutate_inputs_and_are_fresh(profiles: Profiles) -> None:
    size = profiles.size("gpu-t4")
    assert size is not None
    before = copy.deepcopy(dict(size.environment))
    first = overrides_for(
        size, size.images[0], profiles.pools["gpu-t4"], BOB, None, profiles.homes
    )
    first["environment"]["EXTRA"] = "x"
    first["node_selector"]["x"] = "y"
    second = overrides_for(
        size, size.images[0], profiles.pools["gpu-t4"], BOB, None, profiles.homes
    )
    assert "EXTRA" not in second["environment"]
    assert "x" not in second["node_selector"]
    assert dict(size.environment) == before


def test_overrides_carry_the_size_environment(profiles: Profiles) -> None:
    size = profiles.size("gpu-t4")
    assert size is not None
    out = overrides_for(
        size,
        size.images[1],
        profiles.pools["gpu-t4"],
        BOB,
        "us-east-1c",
        profiles.homes,
    )
    assert out["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert out["environment"]["WBSPAWNER_SIZE"] == "gpu-t4"
    assert out["image"] == size.images[1].image
    assert out["extra_annotations"]["wbspawner.io/image"] == size.images[1].slug


def _pv_pinned(key: str, zone: str) -> dict[str, Any]:
    """A PV whose node affinity requires label ``key`` to be ``zone``."""
    expression = {"key": key, "operator": "In", "values": [zone]}
    terms = [{"matchExpressions": [expression]}]
    return {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": terms}}}}


@pytest.mark.parametrize(
    ("pv", "zone"),
    [
        pytest.param(
            _pv_pinned("topology.kubernetes.io/zone", "us-east-1b"),
            "us-east-1b",
            id="node-affinity",
        ),
        pytest.param(
            _pv_pinned("topology.ebs.csi.aws.com/zone", "us-east-1c"),
            "us-east-1c",
            id="ebs-csi-key",
        ),
        pytest.param(
            {"metadata": {"labels": {"topology.kubernetes.io/zone": "us-east-1a"}}},
            "us-east-1a",
            id="label",
        ),
        pytest.param({"spec": {}}, None, id="unpinned"),
    ],
)
def test_pv_zone(pv: dict[str, Any], zone: str | None) -> None:
    """The spawner pins to the zone the home PV names (homes.policy reads it)."""
    assert zone_of_pv(pv) == zone


def test_overrides_match_golden(profiles: Profiles, shipped_size: str) -> None:
    """Rendered overrides per size; regenerate with WBSPAWNER_UPDATE_GOLDEN=1."""
    slug = shipped_size
    size = profiles.size(slug)
    assert size is not None
    image = access.default_image(size.images)
    assert image is not None
    user = SpawnUser(
        name="bob",
        uid=10002,
        gid=100,
        home_size_gib=access.home_size_gib(size, ["jupyter-users"]),
    )
    rendered = overrides_for(
        size, image, profiles.pool_of(size), user, "us-east-1a", profiles.homes
    )
    path = GOLDEN / f"{slug}.yaml"
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(rendered, sort_keys=True), encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with WBSPAWNER_UPDATE_GOLDEN=1"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == rendered


def test_every_example_size_has_a_golden_file(profiles: Profiles) -> None:
    expected = {s.slug for s in profiles.sizes}
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == expected
