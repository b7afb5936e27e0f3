"""What a node's taints say about why it goes (wbspawner.spawn.interruptions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wbspawner.spawn.interruptions import (
    MAINTENANCE,
    SCALE_IN,
    SPOT_RECLAIM,
    Interruption,
    home_message,
    interruption_of,
    lab_message,
)

NOTICED = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def node(*taints: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "n"}, "spec": {"taints": list(taints)}}


CORDONED = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param("aws-node-termination-handler/spot-itn", SPOT_RECLAIM, id="spot"),
        pytest.param(
            "aws-node-termination-handler/scheduled-maintenance",
            MAINTENANCE,
            id="maint",
        ),
        pytest.param(
            "aws-node-termination-handler/asg-lifecycle-termination", SCALE_IN, id="asg"
        ),
    ],
)
def test_nth_taints_say_why_the_node_goes(key: str, reason: str) -> None:
    taint = {
        "key": key,
        "value": "x",
        "effect": "NoSchedule",
        "timeAdded": "2026-12-07T15:00:00Z",
    }
    assert interruption_of(node(CORDONED, taint)) == Interruption(reason, NOTICED)


@pytest.mark.parametrize(
    "found",
    [
        pytest.param(None, id="no-node"),
        pytest.param(node(), id="no-taints"),
        pytest.param(node(CORDONED), id="only-cordoned"),
        pytest.param(
            node({"key": "aws-node-termination-handler/rebalance-recommendation"}),
            id="rebalance-is-no-drain",
        ),
    ],
)
def test_other_nodes_announce_nothing(found: Any) -> None:
    assert interruption_of(found) is None


def test_a_taint_without_a_time_still_counts() -> None:
    found = interruption_of(node({"key": "aws-node-termination-handler/spot-itn"}))
    assert found == Interruption(SPOT_RECLAIM, None)
    assert lab_message(found, NOTICED) == (
        "This server's spot node will be reclaimed in about 2 minutes."
    )


@pytest.mark.parametrize(
    ("seconds_later", "message"),
    [
        pytest.param(0, "in about 2 minutes.", id="at-once"),
        pytest.param(5, "in about 2 minutes.", id="5-s"),
        pytest.param(61, "in about 1 minute.", id="61-s"),
        pytest.param(95, "now.", id="95-s"),
        pytest.param(200, "now.", id="after"),
    ],
)
def test_the_spot_notice_counts_down_from_the_taint(
    seconds_later: int, message: str
) -> None:
    now = NOTICED + timedelta(seconds=seconds_later)
    text = lab_message(Interruption(SPOT_RECLAIM, NOTICED), now)
    assert text.startswith("This server's spot node ") and text.endswith(message)


def test_each_reason_has_its_own_words() -> None:
    for reason, lab, home in [
        (MAINTENANCE, "scheduled maintenance.", "went away for scheduled maintenance"),
        (SCALE_IN, "removed from the cluster.", "was removed from the cluster"),
        (SPOT_RECLAIM, "minutes.", "AWS reclaimed its spot node"),
    ]:
        found = Interruption(reason, NOTICED)
        assert lab_message(found, NOTICED).endswith(lab)
        assert home in home_message(found)
        assert home_message(found).endswith("start it again to go on.")
