"""Deleting a moved home's old volume, snapshot and PV only after retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.homes.fakes import (
    CLAIM,
    DATA,
    NS,
    USER,
    B,
    FakeEc2,
    FakeKube,
    Faults,
    home_data,
    world,
)
from wbspawner.errors import PermanentAwsError
from wbspawner.homes.gc import gc_expired
from wbspawner.homes.move import HomeMover, MoveRequest, MoveResult
from wbspawner.homes.records import Waits
from wbspawner.homes.views import home_rows, kept_volumes, plan_move

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=15)
REQ = MoveRequest(namespace=NS, user=USER, target_zone=B, retention_days=14)


async def no_sleep(seconds: float) -> None:
    pass


async def moved():
    kube, ec2, faults = world(pending_polls=1)
    waits = Waits(interval_s=0.0)
    result = await HomeMover(
        kube, ec2, waits=waits, now=lambda: NOW, sleep=no_sleep, token=lambda: "gc0001"
    ).run(REQ)
    return kube, ec2, faults, result


async def test_nothing_is_deleted_before_the_retention_ends() -> None:
    kube, ec2, _, result = await moved()
    items = await gc_expired(kube, ec2, NOW + timedelta(days=13))
    assert [(i.action, i.old_pv) for i in items] == [("kept", "pvc-1")]
    assert items[0].reason.startswith("retained until 2026-05-18T08:00:00Z")
    assert ec2.deleted == []


async def test_after_retention_old_volume_snapshot_and_pv_go() -> None:
    kube, ec2, _, result = await moved()
    items = await gc_expired(kube, ec2, LATER)
    assert [i.action for i in items] == ["deleted"]
    assert set(ec2.deleted) == {result.old_volume, result.snapshot_id}
    assert "pvc-1" not in kube.pvs
    assert home_data(kube, ec2) == DATA
    assert await gc_expired(kube, ec2, LATER) == []


async def test_dry_run_deletes_nothing() -> None:
    kube, ec2, _, _ = await moved()
    items = await gc_expired(kube, ec2, LATER, dry_run=True)
    assert [i.action for i in items] == ["would-delete"]
    assert ec2.deleted == [] and "pvc-1" in kube.pvs


def _unbound(kube, ec2, result: MoveResult) -> None:
    del kube.pvcs[(NS, CLAIM)]


def _back_on_old(kube, ec2, result: MoveResult) -> None:
    kube.pvcs[(NS, CLAIM)]["spec"]["volumeName"] = "pvc-1"


def _attached(kube, ec2, result: MoveResult) -> None:
    from dataclasses import replace

    old = ec2.volumes[result.old_volume or ""]
    ec2.volumes[old.volume_id] = replace(old, attached_to=("i-0abc",), state="in-use")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(_unbound, "is not Bound", id="claim-gone"),
        pytest.param(_back_on_old, "the claim still uses this PV", id="claim-on-old"),
        pytest.param(_attached, "is attached to i-0abc", id="old-volume-attached"),
    ],
)
async def test_kept_when_the_new_home_is_not_safely_in_use(change, reason: str) -> None:
    kube, ec2, _, result = await moved()
    change(kube, ec2, result)
    items = await gc_expired(kube, ec2, LATER)
    assert [i.action for i in items] == ["kept"]
    assert reason in items[0].reason
    assert ec2.deleted == []


async def test_failed_deletion_keeps_the_record_for_the_next_run() -> None:
    kube, ec2, faults, _ = await moved()
    faults.fail_method("ec2.delete_volume", PermanentAwsError("denied", code="X"), 1)
    items = await gc_expired(kube, ec2, LATER)
    assert items[0].action == "kept"
    assert items[0].reason == "deleting failed: denied"
    assert "pvc-1" in kube.pvs
    assert [i.action for i in await gc_expired(kube, ec2, LATER)] == ["deleted"]


async def test_views_show_the_moved_home() -> None:
    kube, ec2, _, result = await moved()
    rows = await home_rows(kube, list(kube.pvcs.values()), NS)
    assert [(r.user, r.zone, r.volume_id, r.status) for r in rows] == [
        (USER, B, result.new_volume, "Bound")
    ]
    assert rows[0].last_move.endswith("from us-east-1a")
    assert await kept_volumes(kube, NS, CLAIM) == [
        ("pvc-1", result.old_volume, "2026-05-18T08:00:00Z")
    ]


async def test_plan_lists_every_step_and_changes_nothing(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    plan = await plan_move(kube, ec2, REQ)
    assert (plan.from_zone, plan.move_id, plan.already_there) == (
        "us-east-1a",
        "(new)",
        False,
    )
    assert [s.state for s in plan.steps] == ["to do"] * 7
    assert "snapshot vol-" in plan.steps[1].detail
    writes = [
        c
        for c in faults.calls
        if not c.split(".")[1].startswith(("get", "list", "pods", "describe", "find"))
    ]
    assert writes == []


async def test_each_item_is_reported_as_soon_as_it_is_decided() -> None:
    """The CLI's progress: on_item sees an item before gc_expired returns."""
    kube, ec2, _, _ = await moved()
    seen: list[tuple[str, bool]] = []
    items = await gc_expired(
        kube,
        ec2,
        LATER,
        on_item=lambda item: seen.append((item.action, "pvc-1" in kube.pvs)),
    )
    assert seen == [("deleted", False)] and [i.action for i in items] == ["deleted"]
