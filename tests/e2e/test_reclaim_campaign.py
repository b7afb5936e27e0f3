"""The interruption benchmark's campaign, short: two reclaims and the baseline.

``bench/bench_interruptions.py`` runs twenty reclaims at random moments of bob's
sessions (``make bench``, not in CI); this runs the same code on two, and the
baseline with the notice channel off, so that a break in it shows in
``make test``: every figure is measured, nothing bob typed is lost with the
channel on, and the baseline loses what he typed (the measure can see a loss).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from playwright.sync_api import Browser

from devcluster.demo.workbench import Workbench
from tests.paths import REPO

sys.path.insert(0, str(REPO / "bench"))

import bench_interruptions as bench  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SEED = 7


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": [bench.POOL], "zones": [bench.ZONE], "warmer": False}


def test_two_reclaims_lose_nothing_and_the_baseline_does(
    workbench: Workbench, browser: Browser
) -> None:
    moments = bench.plan(SEED, 2, max_idle_s=1.0, max_chars=60, max_pause_s=0.5)
    baseline = bench.baseline_moment(SEED, 3)
    run = bench.campaign(workbench, browser, moments, baseline, progress=print)
    out = bench.result(run, seed=SEED, time_factor=workbench.time_factor, wall_s=0)

    summary = out["summary"]
    assert summary["reclaims"] == 2
    assert summary["typed_bytes"] > 0
    assert summary["lost_bytes"] == 0, out["reclaims"]
    for metric in bench.METRICS:
        assert summary[metric]["n"] == 2, (metric, out["reclaims"])
    assert summary["notice_to_shown_s"]["max"] < 10
    assert summary["notice_to_stopped_s"]["max"] < bench.BUDGET_S
    assert summary["reason_shown"] == 2
    for record in out["reclaims"]:
        assert record["notice_to_shown_s"] <= record["notice_to_saved_s"]
        assert record["notice_to_saved_s"] <= record["notice_to_stopped_s"]
        assert record["next_zone"] == bench.ZONE

    assert out["baseline_record"]["saved_from"] is None
    lost = out["baseline_channel_off"]
    assert lost["typed_bytes"] > 0
    assert lost["lost_bytes"] == lost["typed_bytes"], out["baseline_record"]
