"""The scale benchmark, tiny: six users, a burst of three, the warmer at 10 × 3.

``bench/bench_scale.py`` runs a thousand users (``make bench``, not in CI);
this runs the same code on the same stack (PostgreSQL, slapd, devcluster in
sim mode, the real hub and proxy) at a size that takes about a minute, so that
a break in it shows in ``make test``: every spawn is ready, nothing is lost by
the end, the accounting has one row per spawn, and every figure is measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.paths import REPO

sys.path.insert(0, str(REPO / "bench"))

import bench_scale as bench  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_tiny_scale_run_loses_nothing_and_measures_everything(
    tmp_path: Path,
) -> None:
    args = bench.parse_args(
        ["--users", "6", "--burst", "3", "--ramp-min", "2", "--time-factor", "0.05"]
        + ["--warm-pools", "10", "--warm-nodes", "100", "--warm-runs", "2"]
        + ["--tmp", str(tmp_path), "--out", str(tmp_path / "scale.json")]
    )
    report = bench.run(args)
    assert report["largest_without_loss"] == 6, report["breaks"]
    assert report["breaks"] == []
    assert report["warmer"]["plan_within_limit"]
    assert report["warmer"]["warm_nodes_planned"] > 0
    (out,) = report["runs"]

    for phase, spawns in (("ramp", 6), ("burst", 3)):
        figures = out[phase]
        assert figures["spawns"] == spawns
        assert figures["lost"] == 0, figures["lost_why"]
        assert figures["spawn_to_ready_simulated_s"]["n"] == spawns
        assert figures["beyond_node_boot_simulated_s"]["p99"] is not None
    # every ramp spawn waited for a node of its own to boot (one user, one node)
    assert out["ramp"]["waited_for_a_node_boot"] == 6
    assert out["end"] == {
        "users": 6,
        "hub_ready": 6,
        "pods_running": 6,
        "servers_pending_at_end": 0,
        "pods_without_a_ready_server": 0,
        "orphan_pods": 0,
        "orphan_users": [],
        "lost": 0,
        "lost_users": [],
    }
    # one row per spawn that became ready (all of them here), none of others
    assert out["accounting"]["server_rows"] == 9
    assert out["accounting"]["spawns_ready"] == 9
    assert out["accounting"]["rows_equal_spawns_ready"]
    assert out["accounting"]["rows_equal_spawns"]
    assert out["accounting"]["open_equal_running"]
    hub_requests = out["ramp"]["kubernetes_requests_from_hub"]
    assert hub_requests and all(r["per_real_s"] > 0 for r in hub_requests.values())
    assert {"hub", "proxy", "devcluster"} <= set(out["rss_mib_peak"])
    assert out["hub_api_ms_whole_run"]["poll"]["p99"] is not None
    assert out["sim_server_errors"] == []
