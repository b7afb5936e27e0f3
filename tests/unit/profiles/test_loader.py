"""Loading profiles: the shipped and example sets, the frozen model, defaults,
and that any wrong value gives only ProfileConfigErrors."""

from __future__ import annotations

import copy
import dataclasses
import random
import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tests.paths import REPO
from wbspawner.catalog import sizing
from wbspawner.errors import ProfileConfigError
from wbspawner.model import Catalog, Profiles
from wbspawner.profiles.loader import (
    load_profiles,
    profiles_from_documents,
)
from wbspawner.profiles.safe_yaml import parse_yaml

PROFILES = REPO / "profiles"
EXAMPLES = sorted(p for p in (PROFILES / "examples").iterdir() if p.is_dir())


# --------------------------------------------------------------- the example sets


def test_shipped_profiles_have_every_size_class(profiles: Profiles) -> None:
    memory = {p.name: p.memory_mib // 1024 for p in profiles.pools.values()}
    assert {4, 16, 64, 128, 256, 512} <= set(memory.values())
    gpu = {
        p.name: (p.gpu_kind, p.gpu_count) for p in profiles.pools.values() if p.is_gpu
    }
    assert sorted(gpu.values()) == [("A10G", 1), ("A10G", 4), ("T4", 1)]
    assert profiles.pools["gpu-a10g-x4"].request.gpus == 4
    assert set(profiles.admin_groups) == {"jupyter-admins"}
    assert set(profiles.user_groups) == {"jupyter-users", "gpu-users"}
    assert [s.slug for s in profiles.sizes if s.default] == ["medium"]


def test_shipped_pools_prefer_spot_with_on_demand_fallback(profiles: Profiles) -> None:
    for pool in profiles.pools.values():
        assert set(pool.capacity_types) == {"spot", "on-demand"}, pool.name
    assert profiles.pools["mem64"].capacity_types == ("spot", "on-demand")


def test_pool_request_and_price_come_from_sizing_and_pricing(
    catalog: Catalog,
    profiles: Profiles,
) -> None:
    for pool in profiles.pools.values():
        types = [catalog.types[t] for t in pool.instance_types]
        assert pool.request == sizing.full_node_request(types, profiles.sizing)
        assert pool.price_per_hour == min(t.price_per_hour for t in types)
        assert pool.request.memory_mib > 0 and pool.request.cpu_m > 0
        assert pool.request.memory_mib < pool.memory_mib


def test_sources_are_in_name_order_and_digest_is_a_sha256(profiles: Profiles) -> None:
    names = [Path(s).name for s in profiles.sources]
    assert names == sorted(names) and len(names) == 8
    assert re.fullmatch(r"[0-9a-f]{64}", profiles.digest)


@pytest.mark.parametrize("example", [pytest.param(p, id=p.name) for p in EXAMPLES])
def test_every_example_set_loads(catalog: Catalog, example: Path) -> None:
    profiles = load_profiles([example], catalog)
    assert profiles.pools and profiles.sizes
    assert sum(s.default for s in profiles.sizes) == 1


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 2


def test_model_is_frozen_with_tuples_and_read_only_maps(profiles: Profiles) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        profiles.sizes[0].slug = "x"  # type: ignore[misc]
    assert isinstance(profiles.pools, MappingProxyType)
    with pytest.raises(TypeError, match="does not support item assignment"):
        profiles.pools["x"] = profiles.pools["cpu4"]  # type: ignore[index]
    size = profiles.size("gpu-t4")
    assert size is not None
    assert isinstance(size.images, tuple) and isinstance(size.allowed_groups, tuple)
    assert isinstance(size.environment, MappingProxyType)
    assert isinstance(profiles.dask.group_limits, MappingProxyType)
    window = profiles.warm.schedules[0].windows[0]
    assert window.days == frozenset({1, 2, 3, 4, 5})
    assert (window.start_minute, window.end_minute) == (8 * 60, 18 * 60)


def test_defaults_are_applied_from_the_dataclasses(
    catalog: Catalog,
    write_profiles: Callable[[Path, dict[str, str]], Path],
    minimal_yaml: str,
    tmp_path: Path,
) -> None:
    profiles = load_profiles(
        [write_profiles(tmp_path, {"p.yaml": minimal_yaml})], catalog
    )
    pool = profiles.pools["small"]
    assert pool.capacity_types == ("spot", "on-demand")
    assert (pool.min_nodes, pool.max_nodes, pool.root_volume_gib) == (0, 10, 100)
    assert pool.purpose == ("user",) and pool.display_name == "16 GiB"
    size = profiles.sizes[0]
    assert size.description == "" and size.home_size_gib == 10
    assert profiles.admin_groups == ("jupyter-admins",)
    assert profiles.dask.worker_sizes == () and profiles.warm.schedules == ()


def test_measured_capacity_overrides_the_catalogue(
    catalog: Catalog,
    minimal_yaml: str,
    write_profiles: Callable[[Path, dict[str, str]], Path],
    tmp_path: Path,
) -> None:
    before = load_profiles(
        [write_profiles(tmp_path / "a", {"p.yaml": minimal_yaml})], catalog
    )
    text = minimal_yaml + "sizing:\n  measured_capacity_mib:\n    r6i.large: 15000\n"
    after = load_profiles([write_profiles(tmp_path / "b", {"p.yaml": text})], catalog)
    assert after.sizing.measured_capacity_mib == {"r6i.large": 15000}
    r6i = dataclasses.replace(catalog.types["r6i.large"], measured_capacity_mib=15000)
    assert after.catalog.types["r6i.large"] == r6i and before.catalog == catalog
    expected = sizing.full_node_request([catalog.types["r5.large"], r6i], after.sizing)
    assert after.pools["small"].request == expected
    assert after.pools["small"].request != before.pools["small"].request


def test_dask_default_worker_size_is_the_first(
    catalog: Catalog,
    minimal_yaml: str,
    write_profiles: Callable[[Path, dict[str, str]], Path],
    tmp_path: Path,
) -> None:
    text = minimal_yaml.replace(
        "zones: [us-east-1a, us-east-1b]",
        "zones: [us-east-1a]\n    purpose: [user, dask]",
    )
    text += (
        "dask:\n  worker_sizes:\n    - {name: half, pool: small, workers_per_node: 2}\n"
    )
    profiles = load_profiles([write_profiles(tmp_path, {"p.yaml": text})], catalog)
    assert profiles.dask.default_worker_size == "half"
    assert profiles.dask.worker_sizes[0].display_name == "half"


# ------------------------------------------------------------------ robustness

_JUNK: list[object] = [None, "x", -1, 0, [], {}, True, 1.5, [None], {"k": None}]


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if at else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*at, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: object) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _documents(directory: Path) -> list[tuple[str, Any]]:
    docs = []
    for f in sorted(directory.glob("*.yaml")):
        data, problems = parse_yaml(str(f), f.read_text())
        assert problems == []
        docs.append((str(f), data))
    return docs


def test_any_wrong_value_anywhere_gives_only_profile_config_errors(
    catalog: Catalog,
) -> None:
    """Replace every value of an example (and a sample of the main set) with junk."""
    cases: list[list[tuple[str, Any]]] = []
    for directory in EXAMPLES:
        docs = _documents(directory)
        for n, (name, data) in enumerate(docs):
            for path in _paths(data):
                for junk in _JUNK[:4]:
                    changed = [
                        *docs[:n],
                        (name, _replaced(data, path, junk)),
                        *docs[n + 1 :],
                    ]
                    cases.append(changed)
    main = _documents(PROFILES)
    rng = random.Random(20260720)
    for _ in range(300):
        n = rng.randrange(len(main))
        name, data = main[n]
        path = rng.choice(_paths(data))
        changed = [
            *main[:n],
            (name, _replaced(data, path, rng.choice(_JUNK))),
            *main[n + 1 :],
        ]
        cases.append(changed)
    outcomes = {"ok": 0, "invalid": 0}
    for docs in cases:
        try:
            profiles_from_documents(docs, catalog)
        except ProfileConfigError as err:
            assert err.problems, docs
            outcomes["invalid"] += 1
        else:
            outcomes["ok"] += 1
    assert outcomes["invalid"] > 0.8 * len(cases), outcomes
