"""The interruption benchmark's pure parts: its plan, its loss count, its figures.

``bench/bench_interruptions.py`` needs the whole stack and a browser (its short
run is ``tests/e2e/test_reclaim_campaign.py``); what it decides and counts
without them is checked here.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.lab_support import EMPTY_NOTEBOOK
from tests.paths import REPO

sys.path.insert(0, str(REPO / "bench"))

import bench_interruptions as bench  # noqa: E402


def test_the_plan_is_what_its_seed_makes() -> None:
    assert bench.plan(18, 20) == bench.plan(18, 20)
    assert bench.plan(18, 20) != bench.plan(19, 20)


def test_the_plan_stays_in_its_bounds() -> None:
    moments = bench.plan(3, 50, max_idle_s=4, max_chars=100, max_pause_s=1)
    assert [m.index for m in moments] == list(range(1, 51))
    assert len({m.notebook for m in moments} | {m.text_file for m in moments}) == 100
    for moment in moments:
        assert 0 <= moment.idle_s <= 4 and 0 <= moment.pause_s <= 1
        assert 1 <= len(moment.notebook_typed) <= 100
        assert 1 <= len(moment.text_typed) <= 100
        assert moment.text_saved.endswith("\n") and moment.channel
        typed = moment.notebook_typed + moment.text_typed
        # nothing an editor would complete, indent or pair
        assert set(typed) <= set(bench.WORDS + " ")


def test_the_baseline_has_the_channel_off() -> None:
    moment = bench.baseline_moment(18, 21)
    assert moment.index == 21 and not moment.channel


@pytest.mark.parametrize(
    ("typed", "saved", "lost"),
    [
        pytest.param("abc def", "abc def", 0, id="all-saved"),
        pytest.param("abc def", "x\nabc def\n", 0, id="saved-among-more"),
        pytest.param("abc def", "", 7, id="nothing-saved"),
        pytest.param("abc def", "abc d", 2, id="an-autosave-kept-a-prefix"),
        pytest.param("abc def", "def", 7, id="a-suffix-is-not-typing-order"),
        pytest.param("é", "", 2, id="bytes-not-characters"),
    ],
)
def test_lost_bytes(typed: str, saved: str, lost: int) -> None:
    assert bench.lost_bytes(typed, saved) == lost


def test_notebook_source_reads_the_first_cell() -> None:
    notebook = {**EMPTY_NOTEBOOK}
    notebook["cells"] = [{**EMPTY_NOTEBOOK["cells"][0], "source": ["a\n", "b"]}]
    assert bench.notebook_source(json.dumps(notebook)) == "a\nb"
    assert bench.notebook_source(json.dumps(EMPTY_NOTEBOOK)) == ""
    assert bench.notebook_source("not json") == ""


def test_spread() -> None:
    assert bench.spread([float(v) for v in range(10, 0, -1)] + [None]) == {
        "n": 10,
        "p50": 5.5,
        "p90": 9.1,
        "max": 10.0,
    }
    assert bench.spread([2.0]) == {"n": 1, "p50": 2.0, "p90": 2.0, "max": 2.0}
    assert bench.spread([None]) == {"n": 0, "p50": None, "p90": None, "max": None}


def test_summarize_counts_losses_and_the_budget() -> None:
    records = [
        {"typed_bytes": 10, "lost_bytes": 0, "notice_to_stopped_s": 5.0, "reason": "r"},
        {"typed_bytes": 20, "lost_bytes": 3, "notice_to_stopped_s": 130.0},
    ]
    summary = bench.summarize(records, 0.02)
    assert summary["reclaims"] == 2
    assert (summary["typed_bytes"], summary["lost_bytes"]) == (30, 3)
    assert summary["reclaims_losing_bytes"] == 1
    assert summary["stopped_within_budget"] == 1
    assert summary["reason_shown"] == 1
    assert summary["notice_to_shown_s"]["n"] == 0


def test_saved_from_names_the_moment_used() -> None:
    assert bench._saved_from(2.0, 1.0) == "report"
    assert bench._saved_from(None, 1.0) == "toast"
    assert bench._saved_from(None, None) is None
