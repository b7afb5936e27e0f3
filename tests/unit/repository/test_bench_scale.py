"""The scale benchmark's pure parts: its users, its profiles, the warmer at size."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.paths import REPO
from wbspawner.catalog.instances import load_catalog
from wbspawner.profiles.loader import load_profiles

sys.path.insert(0, str(REPO / "bench"))

import bench_scale as bench  # noqa: E402
import scale_warmer  # noqa: E402


def test_users_spread_over_three_zones_with_the_size_mix() -> None:
    users = bench.scale_users(300, seed=1)
    assert len({u.uid for u, _, _ in users}) == 300
    assert {z for _, _, z in users} == set(bench.ZONES)
    assert {s for _, s, _ in users} == {s for s, _ in bench.SIZE_MIX}


def test_the_profiles_copy_has_room_for_every_user(tmp_path: Path) -> None:
    """One user, one node: each used pool may start its users' share of a zone."""
    users = bench.scale_users(1000, seed=1)
    pools = bench.write_profiles(tmp_path / "profiles", users)
    profiles = load_profiles([tmp_path / "profiles"], load_catalog())
    shipped = load_profiles([REPO / "profiles"], load_catalog())
    assert pools == ["cpu16", "cpu4", "mem128", "mem256", "mem64"]
    for name in pools:
        count = sum(
            1 for _, s, _ in users if profiles.pool_of(profiles.size(s)).name == name
        )
        assert profiles.pools[name].max_nodes >= count / 3
    assert profiles.pools["mem512"] == shipped.pools["mem512"]  # unused: as shipped


def test_the_warmer_plans_100_pools_and_1000_nodes_within_100_ms() -> None:
    profiles = load_profiles([REPO / "profiles"], load_catalog())
    figures = scale_warmer.measure(profiles, pools=100, nodes=1000, runs=3)
    assert figures["warm_nodes_planned"] > 0
    assert figures["decisions"] == 300
    assert figures["plan"]["median_ms"] <= scale_warmer.PLAN_LIMIT_MS
    assert figures["plan_within_limit"]
