"""Kubernetes events as progress messages, and when waiting is pointless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wbspawner.model import Profiles, WaitSample
from wbspawner.spawn.progress import (
    ProgressContext,
    capacity_failure,
    describe_event,
    timeout_message,
    zone_in_group_name,
    zone_is_short,
)
from wbspawner.spawn.waits import summarize

B = "us-east-1b"

CTX = ProgressContext(node_name="64 GiB", pool="mem64", boot_s=180)
PINNED = ProgressContext(
    node_name="64 GiB", pool="mem64", boot_s=180, zone="us-east-1b"
)


def ev(reason: str, message: str = "", kind: str = "Normal") -> dict[str, Any]:
    return {
        "reason": reason,
        "message": message,
        "type": kind,
        "lastTimestamp": None,
        "eventTime": None,
    }


@pytest.mark.parametrize(
    ("event", "ctx", "expected"),
    [
        pytest.param(
            ev(
                "TriggeredScaleUp",
                "pod triggered scale-up: [{wbspawner-mem64-us-east-1b-spot 0->1 "
                "(max: 10)}]",
            ),
            CTX,
            "Starting a 64 GiB node in us-east-1b, usually about 3 minutes",
            id="scale-up-zone-from-group",
        ),
        pytest.param(
            ev("TriggeredScaleUp", "pod triggered scale-up: [{pool-a 0->1 (max: 3)}]"),
            CTX,
            "Starting a 64 GiB node, usually about 3 minutes",
            id="scale-up-no-zone",
        ),
        pytest.param(
            ev("TriggeredScaleUp", "pod triggered scale-up: [{pool-a 0->1 (max: 3)}]"),
            PINNED,
            "Starting a 64 GiB node in us-east-1b, usually about 3 minutes",
            id="scale-up-home-zone",
        ),
        pytest.param(
            ev(
                "FailedScheduling",
                "0/3 nodes are available: 3 node(s) had untolerated taint "
                "{wbspawner.io/pool: cpu16}.",
                "Warning",
            ),
            CTX,
            "Waiting for a free 64 GiB node",
            id="failed-scheduling",
        ),
        pytest.param(
            ev(
                "FailedScheduling",
                "0/2 nodes are available: 2 node(s) had volume node affinity conflict.",
                "Warning",
            ),
            PINNED,
            "Your home is in us-east-1b; waiting for a 64 GiB node in that zone",
            id="volume-zone-conflict",
        ),
        pytest.param(
            ev(
                "Scheduled",
                "Successfully assigned jhub/jupyter-bob to ip-10-0-2-7.ec2.internal",
            ),
            CTX,
            "Got a 64 GiB node (ip-10-0-2-7.ec2.internal)",
            id="scheduled",
        ),
        pytest.param(
            ev("Pulling", 'Pulling image "quay.io/jupyter/scipy-notebook:2026"'),
            CTX,
            "Downloading quay.io/jupyter/scipy-notebook:2026 (the first start on a "
            "new node takes a minute)",
            id="pulling",
        ),
        pytest.param(
            ev("Pulled", 'Successfully pulled image "img:1" in 2.1s'),
            CTX,
            "Image img:1 is ready",
            id="pulled",
        ),
        pytest.param(
            ev("Started", "Started container notebook"),
            CTX,
            "Your server is starting; waiting for it to answer",
            id="started",
        ),
        pytest.param(
            ev(
                "FailedAttachVolume",
                'Multi-Attach error for volume "pvc-1" Volume is already '
                "exclusively attached to one node",
                "Warning",
            ),
            CTX,
            "Your home volume is still attached to a previous node; AWS releases it "
            "within about 6 minutes",
            id="multi-attach",
        ),
        pytest.param(
            ev("SomethingNew", "a message from the cluster"),
            CTX,
            "a message from the cluster",
            id="unknown-kept",
        ),
    ],
)
def test_describe_event(
    event: dict[str, Any], ctx: ProgressContext, expected: str
) -> None:
    assert describe_event(event, ctx) == expected


@pytest.mark.parametrize(
    ("message", "ctx", "match"),
    [
        pytest.param(
            "pod didn't trigger scale-up: 3 max node group size reached",
            CTX,
            "All 64 GiB nodes are in use and the pool has reached its maximum size. "
            "Try again later or pick another size; an admin can raise the limit of "
            "pool mem64.",
            id="max-reached",
        ),
        pytest.param(
            "pod didn't trigger scale-up (it wouldn't fit if a new node is added): "
            "1 Insufficient memory",
            CTX,
            "This size asks for more than a new 64 GiB node can hold, so no node can "
            "be started for it. Please tell an admin (pool mem64).",
            id="wouldnt-fit",
        ),
        pytest.param(
            "pod didn't trigger scale-up: 2 not ready for scale-up",
            PINNED,
            "AWS has no 64 GiB capacity in us-east-1b right now. Try again in a few "
            "minutes or pick another size; an admin can move your home to another "
            "zone.",
            id="no-capacity-home-zone",
        ),
        pytest.param(
            "pod didn't trigger scale-up: 5 node(s) didn't match Pod's node "
            "affinity/selector",
            CTX,
            "No node group can start a 64 GiB node. Please tell an admin: pool mem64 "
            "has no node group there.",
            id="no-group",
        ),
        pytest.param(
            "pod didn't trigger scale-up:",
            PINNED,
            "No node group can start a 64 GiB node in us-east-1b. Please tell an "
            "admin: the cluster autoscaler finds no node groups at all (pool mem64).",
            id="no-groups-at-all",
        ),
        pytest.param(
            "pod didn't trigger scale-up: 2 node(s) had untolerated taint "
            "{wbspawner.io/pool: mem64}",
            CTX,
            "No node group can start a 64 GiB node. Please tell an admin: pool mem64 "
            "has no node group there.",
            id="only-other-pools",
        ),
    ],
)
def test_refused_scale_up_is_a_failure(
    message: str, ctx: ProgressContext, match: str
) -> None:
    events = [ev("FailedScheduling", "0/1 nodes"), ev("NotTriggerScaleUp", message)]
    assert capacity_failure(events, ctx) == match
    assert describe_event(events[-1], ctx) == match


@pytest.mark.parametrize(
    "later",
    [
        pytest.param("TriggeredScaleUp", id="scale-up"),
        pytest.param("Scheduled", id="scheduled"),
    ],
)
def test_later_progress_clears_a_refusal(later: str) -> None:
    events = [
        ev(
            "NotTriggerScaleUp",
            "pod didn't trigger scale-up: 1 max node group size reached",
        ),
        ev(later, "ok"),
    ]
    assert capacity_failure(events, CTX) is None


def test_no_events_no_failure() -> None:
    assert capacity_failure([], CTX) is None
    assert capacity_failure([ev("FailedScheduling", "0/0 nodes")], CTX) is None


def test_unexplained_refusal_keeps_waiting() -> None:
    events = [ev("NotTriggerScaleUp", "pod didn't trigger scale-up: something new")]
    assert capacity_failure(events, CTX) is None
    assert describe_event(events[0], CTX) == (
        "No new 64 GiB node can be started yet; still trying"
    )


def test_timeout_message_names_the_last_step() -> None:
    events = [ev("Pulling", 'Pulling image "img:1"')]
    assert timeout_message(events, CTX, 600) == (
        "Your 64 GiB server did not start within 10 minutes. The last step was: "
        "Downloading img:1 (the first start on a new node takes a minute). Try "
        "again, or pick another size if this keeps happening."
    )


def test_timeout_message_prefers_the_capacity_reason() -> None:
    events = [ev("NotTriggerScaleUp", "1 max node group size reached")]
    assert timeout_message(events, CTX, 600).startswith("All 64 GiB nodes")


@pytest.mark.parametrize(
    ("message", "zone"),
    [
        pytest.param(
            "pod triggered scale-up: [{wbspawner-dev-mem64-b-spot 0->1 (max: 10)}]",
            "us-east-1b",
            id="pools-naming",
        ),
        pytest.param(
            "pod triggered scale-up: [{wbspawner-dev-mem64-c-ondemand 0->1 (max: 2)}]",
            "us-east-1c",
            id="on-demand-group",
        ),
        pytest.param(
            "pod triggered scale-up: [{x-mem64-bos1a-spot 0->1 (max: 1)}]",
            "us-east-1-bos-1a",
            id="local-zone",
        ),
        pytest.param(
            "pod triggered scale-up: [{grp-us-east-1c-spot 0->1 (max: 1)}]",
            "us-east-1c",
            id="full-zone-name",
        ),
        pytest.param("pod triggered scale-up: [{grp 0->1 (max: 1)}]", None, id="none"),
        pytest.param(
            "pod triggered scale-up: [{wbspawner-dev-mem128-b-spot 0->1 (max: 2)}]",
            None,
            id="another-pools-group",
        ),
    ],
)
def test_zone_in_group_name(message: str, zone: str | None) -> None:
    zones = ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1-bos-1a")
    assert zone_in_group_name(message, "mem64", zones) == zone


def test_scale_up_names_the_zone_of_a_pools_group() -> None:
    ctx = ProgressContext(
        node_name="64 GiB", pool="mem64", boot_s=180, zones=("us-east-1b",)
    )
    event = ev("TriggeredScaleUp", "pod triggered scale-up: [{w-mem64-b-spot 0->1}]")
    assert describe_event(event, ctx) == (
        "Starting a 64 GiB node in us-east-1b, usually about 3 minutes"
    )


@pytest.mark.parametrize(
    ("events", "short"),
    [
        pytest.param(
            [
                ev(
                    "NotTriggerScaleUp",
                    "pod didn't trigger scale-up: 2 max node group "
                    "size reached, 4 node(s) didn't match Pod's node affinity/selector",
                )
            ],
            True,
            id="home-zone-groups-at-max",
        ),
        pytest.param(
            [
                ev(
                    "NotTriggerScaleUp",
                    "pod didn't trigger scale-up: 2 in backoff after failed scale-up",
                )
            ],
            True,
            id="backed-off-after-aws-had-no-capacity",
        ),
        pytest.param(
            [
                ev(
                    "NotTriggerScaleUp",
                    "pod didn't trigger scale-up: 1 Insufficient "
                    "memory; wouldn't fit if a new node is added",
                )
            ],
            False,
            id="size-fits-no-node",
        ),
        pytest.param(
            [ev("NotTriggerScaleUp", "pod didn't trigger scale-up:")],
            False,
            id="no-node-groups-at-all",
        ),
        pytest.param(
            [
                ev(
                    "NotTriggerScaleUp",
                    "pod didn't trigger scale-up: 2 max node group size reached",
                ),
                ev("TriggeredScaleUp", "pod triggered scale-up"),
            ],
            False,
            id="a-later-scale-up-clears-it",
        ),
        pytest.param([], False, id="no-events"),
    ],
)
def test_zone_is_short(events: list[dict[str, Any]], short: bool) -> None:
    assert zone_is_short(events) is short


def test_observed_waits_are_said_on_the_progress_page(profiles: Profiles) -> None:
    """The messages say the cold start observed in the zone, not the stated one."""
    at = datetime(2026, 12, 7, 9, tzinfo=UTC)
    seen = [WaitSample(uid="a", pool="mem64", zone=B, at=at, boot_s=19, start_s=7)]
    ctx = ProgressContext.for_pool(profiles.pools["mem64"], B, summarize(seen))
    scale = describe_event(ev("TriggeredScaleUp", "scale-up: [{g 0->1}]"), ctx)
    assert scale == "Starting a 64 GiB node in us-east-1b, usually about 20 seconds"
    pulling = describe_event(ev("Pulling", 'Pulling image "img:1"'), ctx)
    assert pulling == (
        "Downloading img:1 (on a new node, your server is usually ready about "
        "5 seconds after the node)"
    )
