"""Homes follow capacity: zone facts from groups, advice, messages, the move marker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wbspawner.homes.follow import (
    MARKER_TTL,
    GroupRoom,
    Underway,
    advice_after_refusal,
    move_command,
    move_failed_message,
    move_underway,
    moving_message,
    offer_message,
    underway_message,
    zone_facts,
)
from wbspawner.homes.policy import MoveAdvice, ZoneFacts
from wbspawner.homes.records import (
    MOVE_CLAIM,
    MOVE_HEARTBEAT,
    MOVE_ID,
    MOVE_STATE,
    MOVE_TO,
)
from wbspawner.model import HomeSettings, Pool, WarmStatus

A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"
NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
CLAIM = "jhub/home-bob"


@pytest.fixture
def pool(make_pool: Callable[..., Pool]) -> Pool:
    return make_pool(
        name="mem64", display_name="64 GiB", instance_types=("r5.2xlarge",)
    )


def test_zone_facts_add_the_room_of_every_group_of_a_zone(pool: Pool) -> None:
    groups = [
        GroupRoom(zone=A, max_size=0, desired=0),
        GroupRoom(zone=B, max_size=10, desired=4),
        GroupRoom(zone=B, max_size=10, desired=12),  # over its maximum: no room
        GroupRoom(zone=C, max_size=3, desired=1),
        GroupRoom(zone="us-east-1d", max_size=5, desired=0),  # not a pool zone
    ]
    warm = WarmStatus.of({"mem64": {C: 2}})
    assert zone_facts(pool, groups, warm) == [
        ZoneFacts(zone=A, free_nodes=0),
        ZoneFacts(zone=B, free_nodes=6),
        ZoneFacts(zone=C, free_nodes=2, warm_nodes=2),
    ]


def test_a_zone_without_groups_has_no_room(pool: Pool) -> None:
    facts = zone_facts(pool, [GroupRoom(zone=B, max_size=2, desired=0)], None)
    assert [(f.zone, f.free_nodes) for f in facts] == [(A, 0), (B, 2), (C, 0)]


@pytest.mark.parametrize(
    ("auto", "facts", "action", "zone"),
    [
        pytest.param(
            True,
            [ZoneFacts(zone=A, free_nodes=9), ZoneFacts(zone=B, free_nodes=3)],
            "move",
            B,
            id="refused-home-zone-counts-as-short-whatever-its-room",
        ),
        pytest.param(
            False,
            [ZoneFacts(zone=B, free_nodes=3)],
            "offer",
            B,
            id="auto-move-off-offers",
        ),
        pytest.param(
            True,
            [ZoneFacts(zone=B, free_nodes=1), ZoneFacts(zone=C, free_nodes=5)],
            "move",
            C,
            id="most-room-wins",
        ),
        pytest.param(
            True,
            [ZoneFacts(zone=B, free_nodes=0), ZoneFacts(zone=C, free_nodes=0)],
            "none",
            None,
            id="no-zone-has-room",
        ),
    ],
)
def test_advice_after_refusal(
    pool: Pool,
    auto: bool,
    facts: list[ZoneFacts],
    action: str,
    zone: str | None,
) -> None:
    advice = advice_after_refusal(A, pool, facts, HomeSettings(auto_move=auto))
    assert (advice.action, advice.target_zone) == (action, zone)


def test_moving_message_names_both_zones_and_the_size(pool: Pool) -> None:
    assert moving_message(A, B, pool).startswith(
        "Moving your home to us-east-1b: no 64 GiB node can start in us-east-1a."
    )


def test_offer_message_gives_the_admin_the_command(pool: Pool) -> None:
    advice = MoveAdvice(action="offer", target_zone=B, reason="")
    text = offer_message("AWS has no 64 GiB capacity.", "bob", advice, pool)
    assert text == (
        "AWS has no 64 GiB capacity. A 64 GiB node can start in us-east-1b: an "
        "admin can move your home there (your files are kept) with "
        "`wbspawner home move bob --zone us-east-1b`."
    )
    assert move_command("bob", B) == "wbspawner home move bob --zone us-east-1b"


@pytest.mark.parametrize(
    "advice",
    [
        pytest.param(MoveAdvice(action="none", target_zone=None, reason=""), id="none"),
        pytest.param(MoveAdvice(action="move", target_zone=B, reason=""), id="move"),
    ],
)
def test_offer_message_without_an_offer_keeps_the_refusal(
    pool: Pool, advice: MoveAdvice
) -> None:
    assert offer_message("No node.", "bob", advice, pool) == "No node."


def test_move_failed_message_says_nothing_is_lost(pool: Pool) -> None:
    text = move_failed_message(A, B, pool)
    assert "moving your home to us-east-1b failed" in text
    assert "Your files are safe (nothing was deleted)" in text


def pv(
    state: str = "in-progress",
    beat: datetime | None = NOW - timedelta(seconds=30),
    claim: str = CLAIM,
    move_id: str = "m1",
) -> dict[str, Any]:
    annotations = {
        MOVE_CLAIM: claim,
        MOVE_STATE: state,
        MOVE_TO: B,
        MOVE_ID: move_id,
    }
    if beat is not None:
        annotations[MOVE_HEARTBEAT] = beat.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": f"pv-{move_id}", "annotations": annotations}}


@pytest.mark.parametrize(
    ("pvs", "expected"),
    [
        pytest.param([], None, id="no-pv"),
        pytest.param(
            [pv()], Underway(move_id="m1", target_zone=B, running=True), id="fresh"
        ),
        pytest.param(
            [pv(beat=NOW - MARKER_TTL)],
            Underway(move_id="m1", target_zone=B, running=False),
            id="stale-heartbeat-no-longer-runs",
        ),
        pytest.param(
            [pv(beat=None)],
            Underway(move_id="m1", target_zone=B, running=False),
            id="heartbeat-dropped-by-a-failure",
        ),
        pytest.param([pv(state="done")], None, id="finished"),
        pytest.param([pv(claim="jhub/home-alice")], None, id="another-claim"),
        pytest.param(
            [pv(beat=None, move_id="m0"), pv(move_id="m2")],
            Underway(move_id="m2", target_zone=B, running=True),
            id="a-running-move-first",
        ),
    ],
)
def test_move_underway(pvs: list[dict[str, Any]], expected: Underway | None) -> None:
    assert move_underway(pvs, CLAIM, NOW) == expected


@pytest.mark.parametrize(
    ("running", "claim_exists", "expected"),
    [
        pytest.param(
            True,
            True,
            "Your home is being moved to us-east-1b; try again in a few minutes. "
            "Your files are kept.",
            id="running",
        ),
        pytest.param(False, True, None, id="stopped-claim-there-spawn-goes-on"),
        pytest.param(
            False,
            False,
            "A move of your home to us-east-1b stopped before it finished; your "
            "files are kept. Ask an admin to finish it with "
            "`wbspawner home move bob --zone us-east-1b`.",
            id="stopped-without-claim-would-bind-an-empty-volume",
        ),
    ],
)
def test_underway_message(
    running: bool, claim_exists: bool, expected: str | None
) -> None:
    underway = Underway(move_id="m1", target_zone=B, running=running)
    assert underway_message("bob", underway, claim_exists) == expected
    assert underway_message("bob", None, claim_exists) is None
