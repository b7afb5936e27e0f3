"""The warmer benchmark, tiny: the oracle and no warming on two seeded days.

``bench/bench_warmer.py`` replays five seeded days of up to 200 people under
four kinds of warming (``make bench``-sized, not in CI); this runs the same
code (devcluster in sim mode over HTTP, moto groups, the oracle's placeholders)
on two days of 20 people cut at 08:40, so that a break in the oracle, the
seeded days or the per-day summary shows in the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

sys.path.insert(0, str(REPO / "bench"))

import bench_warmer as bench  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_the_oracle_warms_each_spawns_node_on_two_seeded_days(
    tmp_path: Path,
) -> None:
    out, plot = tmp_path / "warmer.json", tmp_path / "warmer.svg"
    argv = ["--days", "2", "--max-team", "20", "--until", "08:40"]
    argv += ["--scenarios", "none", "oracle", "--time-factor", "0.0025"]
    assert bench.main([*argv, "--out", str(out), "--plot", str(plot)]) == 0
    report = json.loads(out.read_text())

    days = report["days"]
    assert [d["day"] for d in days] == [1, 2]
    assert all(d["variation"]["team"] == 20 for d in days)
    assert days[0]["variation"]["seed"] != days[1]["variation"]["seed"]
    spawns = sum(d["results"]["oracle"]["spawns"] for d in days)
    assert spawns >= 3, "too few spawns before 08:40 to measure anything"
    for d in days:
        none, oracle = d["results"]["none"], d["results"]["oracle"]
        assert none["spawns"] == oracle["spawns"]
        assert oracle["never_ready"] == 0
        # without warming a node is made for a waiting user; the oracle's
        # node was up (booted, image pulled) before nearly every spawn
        assert none["on_running_node"] < oracle["on_running_node"]
        assert none["extra_cost_vs_none"] == 0
        assert oracle["extra_cost_vs_none"] > 0
    mean = report["summary"]["oracle"]["mean"]
    assert mean["on_running_node"] >= 0.75, days
    worst = report["summary"]["oracle"]["worst"]
    assert worst["ready_within_15s"] == min(
        d["results"]["oracle"]["ready_within_15s"] for d in days
    )
    assert report["simulated"]["oracle_lead_s"] >= 240
    svg = plot.read_text()
    assert svg.startswith("<svg") and "oracle" in svg and "none" in svg
