"""The home move against fakes: safety under faults and crashes, and convergence.

Every adapter call of a clean move is made to fail in turn, and the process is
made to die at every call and between every pair of steps; each time no volume
may be deleted, the user's files must stay reachable, and running the move
again must converge to the home in the new zone with byte-identical data.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.unit.homes.fakes import (
    CLAIM,
    DATA,
    NS,
    USER,
    A,
    B,
    C,
    Crash,
    FakeEc2,
    FakeKube,
    Faults,
    home_data,
    pv_data,
    world,
)
from wbspawner.adapters.aws import map_error
from wbspawner.errors import KubeError, PermanentAwsError, WbError
from wbspawner.homes import MoveFailedError, MoveRefusedError
from wbspawner.homes.follow import Underway, move_underway, underway_message
from wbspawner.homes.move import STEPS, HomeMover, MoveRequest, StepReport
from wbspawner.homes.policy import zone_of_pv
from wbspawner.homes.records import MOVE_HEARTBEAT, Waits, annotations_of

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
REQ = MoveRequest(namespace=NS, user=USER, target_zone=B, retention_days=14)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def mover(kube: FakeKube, ec2: FakeEc2, **kw: object) -> HomeMover:
    clock = Clock()
    waits = Waits(snapshot_s=600, volume_s=60, bind_s=60, interval_s=1)
    options: dict = dict(
        waits=waits,
        now=lambda: NOW,
        sleep=clock.sleep,
        monotonic=lambda: clock.t,
        token=lambda: "abc123",
    )
    options.update(kw)
    return HomeMover(kube, ec2, **options)


def claim_of(kube: FakeKube) -> dict:
    return kube.pvcs[(NS, CLAIM)]


def assert_converged(kube: FakeKube, ec2: FakeEc2) -> None:
    """The home is in B with the original bytes; nothing was lost or duplicated."""
    claim = claim_of(kube)
    assert claim["status"]["phase"] == "Bound"
    pv = kube.pvs[claim["spec"]["volumeName"]]
    assert zone_of_pv(pv) == B
    assert home_data(kube, ec2) == DATA
    assert ec2.deleted == []
    assert kube.pvs["pvc-1"]["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert [i for i in ec2.created if i.startswith("vol-")] == [
        pv["spec"]["csi"]["volumeHandle"]
    ], "exactly one new volume"
    assert len([i for i in ec2.created if i.startswith("snap-")]) == 1


# ------------------------------------------------------------------ clean move
async def test_move_copies_the_home_to_the_target_zone(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    old_volume = kube.pvs["pvc-1"]["spec"]["csi"]["volumeHandle"]
    result = await mover(kube, ec2).run(REQ)
    assert result.status == "moved"
    assert (result.old_zone, result.zone, result.old_volume) == (A, B, old_volume)
    assert_converged(kube, ec2)
    new = ec2.volumes[result.new_volume or ""]
    old = ec2.volumes[old_volume]
    same = ("size_gib", "volume_type", "iops", "throughput", "encrypted", "kms_key_id")
    assert {k: getattr(new, k) for k in same} == {k: getattr(old, k) for k in same}
    assert new.tags["team"] == "data"
    assert new.tags["CSIVolumeName"] == result.new_pv
    assert ec2.snapshots[result.snapshot_id or ""].tags["wbspawner.io/user"] == USER
    assert kube.pvs["pvc-1"]["status"]["phase"] == "Released"
    until = (NOW + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result.retain_until == until
    assert old.tags["wbspawner.io/retain-until"] == until
    ann = claim_of(kube)["metadata"]["annotations"]
    assert ann["wbspawner.io/moved-from-volume"] == old_volume
    assert ann["wbspawner.io/retain-until"] == until
    assert ann["hub.jupyter.org/username"] == USER
    assert "pv.kubernetes.io/bind-completed" not in ann
    assert claim_of(kube)["metadata"]["labels"] == {"hub.jupyter.org/username": USER}


async def test_move_again_is_already_there(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    await mover(kube, ec2).run(REQ)
    result = await mover(kube, ec2, token=lambda: "other1").run(REQ)
    assert result.status == "already-there"
    assert_converged(kube, ec2)


async def test_move_back_and_forth_keeps_the_bytes(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    await mover(kube, ec2).run(REQ)
    back = await mover(kube, ec2, token=lambda: "back01").run(
        replace(REQ, target_zone=A)
    )
    assert (back.old_zone, back.zone) == (B, A)
    assert home_data(kube, ec2) == DATA
    assert ec2.deleted == []


async def test_steps_report_in_order(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    seen: list[StepReport] = []
    await mover(kube, ec2, on_step=seen.append).run(REQ)
    assert tuple(r.step for r in seen) == STEPS
    assert not any(r.already_done for r in seen)


# -------------------------------------------------------------------- refusals
async def test_refused_while_the_server_runs(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    kube.pods[(NS, "jupyter-alice")] = CLAIM
    with pytest.raises(
        MoveRefusedError, match="alice's server is running .*jupyter-alice"
    ):
        await mover(kube, ec2).run(REQ)
    writes = [
        c
        for c in faults.calls
        if not c.split(".")[1].startswith(("get", "list", "pods"))
    ]
    assert writes == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda k: k.pvcs.clear(), "does not exist", id="no-claim"),
        pytest.param(
            lambda k: k.pvcs[(NS, CLAIM)]["spec"].pop("volumeName"),
            "has no volume yet",
            id="unbound",
        ),
        pytest.param(
            lambda k: k.pvs["pvc-1"]["spec"].pop("csi"),
            "not an EBS volume",
            id="not-ebs",
        ),
    ],
)
async def test_refused_without_a_bound_ebs_home(
    alice_home: tuple[FakeKube, FakeEc2, Faults], change, message: str
) -> None:
    kube, ec2, _ = alice_home
    change(kube)
    with pytest.raises(MoveRefusedError, match=message):
        await mover(kube, ec2).run(REQ)


async def _failed_move_to_b(kube: FakeKube, ec2: FakeEc2, faults: Faults) -> None:
    faults.fail_method("ec2.create_volume_from_snapshot", PermanentAwsError("no zone"))
    with pytest.raises(MoveFailedError, match="step 'volume': no zone"):
        await mover(kube, ec2).run(REQ)
    faults.clear()


async def test_failed_move_is_replaced_by_a_move_elsewhere(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    await _failed_move_to_b(kube, ec2, faults)
    first_snapshot = min(ec2.snapshots)
    result = await mover(kube, ec2, token=lambda: "new001").run(
        replace(REQ, target_zone=C)
    )
    assert (result.status, result.zone, result.move_id) == (
        "moved",
        C,
        "m20260504t080000-new001",
    )
    assert zone_of_pv(kube.pvs[claim_of(kube)["spec"]["volumeName"]]) == C
    assert home_data(kube, ec2) == DATA
    assert first_snapshot in ec2.snapshots and ec2.deleted == []


async def test_move_to_the_home_zone_abandons_an_unfinished_move(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    await _failed_move_to_b(kube, ec2, faults)
    result = await mover(kube, ec2).run(replace(REQ, target_zone=A))
    assert result.status == "already-there"
    assert kube.pvs["pvc-1"]["metadata"]["annotations"]["wbspawner.io/move-state"] == (
        "abandoned"
    )
    assert home_data(kube, ec2) == DATA


async def test_move_that_switched_the_claim_must_be_finished_first(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home

    def die(report: StepReport) -> None:
        if report.step == "claim":
            raise Crash("killed after claim")

    with pytest.raises(Crash, match="killed"):
        await mover(kube, ec2, on_step=die).run(REQ)
    with pytest.raises(MoveRefusedError, match="already switched the claim; finish it"):
        await mover(kube, ec2).run(replace(REQ, target_zone=C))
    await mover(kube, ec2).run(REQ)
    assert_converged(kube, ec2)


# -------------------------------------------------------------- fault injection
async def _clean_calls() -> list[str]:
    kube, ec2, faults = world()
    await mover(kube, ec2).run(REQ)
    return faults.calls


CLEAN_CALLS = asyncio.run(_clean_calls())


def _injected(name: str) -> Exception:
    if name.startswith("ec2."):
        return PermanentAwsError(f"injected fault in {name}", code="Injected")
    return KubeError(f"injected fault in {name}", status=500)


@pytest.mark.parametrize(
    "index", [pytest.param(i, id=f"{i:02d}-{c}") for i, c in enumerate(CLEAN_CALLS)]
)
async def test_failure_at_every_call_keeps_the_home_and_rerun_converges(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
    index: int,
) -> None:
    kube, ec2, faults = alice_home
    faults.fail(index, _injected(CLEAN_CALLS[index]))
    with pytest.raises(WbError, match="injected fault"):
        await mover(kube, ec2).run(REQ)
    assert ec2.deleted == []
    assert home_data(kube, ec2) == DATA, "the claim resolves to an intact volume"
    await mover(kube, ec2).run(REQ)
    assert_converged(kube, ec2)


@pytest.mark.parametrize(
    "index", [pytest.param(i, id=f"{i:02d}-{c}") for i, c in enumerate(CLEAN_CALLS)]
)
async def test_crash_at_every_call_loses_nothing_and_rerun_converges(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
    index: int,
) -> None:
    kube, ec2, faults = alice_home
    faults.fail(index, Crash("process killed"))
    with pytest.raises(Crash, match="killed"):
        await mover(kube, ec2).run(REQ)
    assert ec2.deleted == []
    assert DATA in pv_data(kube, ec2), "an existing PV still holds the files"
    assert home_data(kube, ec2) in (DATA, None)
    await mover(kube, ec2).run(REQ)
    assert_converged(kube, ec2)


@pytest.mark.parametrize("after", [pytest.param(s, id=f"after-{s}") for s in STEPS])
async def test_crash_between_steps_keeps_the_claim_and_rerun_converges(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
    after: str,
) -> None:
    kube, ec2, _ = alice_home

    def die(report: StepReport) -> None:
        if report.step == after:
            raise Crash(f"killed after {after}")

    with pytest.raises(Crash, match=f"killed after {after}"):
        await mover(kube, ec2, on_step=die).run(REQ)
    assert home_data(kube, ec2) == DATA
    assert ec2.deleted == []
    seen: list[StepReport] = []
    await mover(kube, ec2, on_step=seen.append).run(REQ)
    assert_converged(kube, ec2)
    if after == "record":
        assert seen == [], "the finished move is not repeated"
    else:
        upto = STEPS[: STEPS.index(after) + 1]
        expected = [s for s in upto if s not in ("verify", "record")]
        assert [r.step for r in seen if r.already_done] == expected


async def test_claim_is_missing_only_inside_the_rebind(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    """At every adapter call the files are reachable; the claim resolves except
    between deleting the old claim and creating the new one."""
    kube, ec2, faults = alice_home
    gaps: list[str] = []
    hit = faults.hit

    def watch(name: str) -> None:
        assert DATA in pv_data(kube, ec2)
        if home_data(kube, ec2) is None:
            gaps.append(name)
        hit(name)

    faults.hit = watch  # type: ignore[method-assign]
    await mover(kube, ec2).run(REQ)
    assert gaps and set(gaps) <= {"kube.get_pvc", "kube.patch_pv", "kube.create_pvc"}
    assert len(gaps) <= 4


# ---------------------------------------------------------- specific failures
async def test_new_claim_refused_puts_the_claim_back_on_the_old_pv(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    faults.fail_method("kube.create_pvc", KubeError("quota exceeded", status=403), 1)
    with pytest.raises(
        MoveFailedError, match="step 'claim': quota exceeded.*stays on the old"
    ):
        await mover(kube, ec2).run(REQ)
    assert claim_of(kube)["spec"]["volumeName"] == "pvc-1"
    assert claim_of(kube)["status"]["phase"] == "Bound"
    assert home_data(kube, ec2) == DATA
    faults.clear()
    await mover(kube, ec2).run(REQ)
    assert_converged(kube, ec2)


async def test_claim_that_never_binds_is_rolled_back(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    reconcile = kube.reconcile

    def no_binding_to_new() -> None:
        for pv_name, pv in kube.pvs.items():
            if pv_name != "pvc-1":
                pv["spec"]["claimRef"]["name"] = "someone-else"
        reconcile()

    kube.reconcile = no_binding_to_new  # type: ignore[method-assign]
    with pytest.raises(
        MoveFailedError, match="step 'verify'.*timed out.*stays on the old"
    ):
        await mover(kube, ec2).run(REQ)
    assert claim_of(kube)["spec"]["volumeName"] == "pvc-1"
    assert home_data(kube, ec2) == DATA
    kube.reconcile = reconcile  # type: ignore[method-assign]
    await mover(kube, ec2).run(REQ)
    assert_converged(kube, ec2)


async def test_snapshot_in_error_state_is_retaken_on_rerun(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    describe = ec2.describe_snapshot

    def broken(snapshot_id: str):  # the first snapshot fails
        snap = describe(snapshot_id)
        if snap is not None and snapshot_id == min(ec2.snapshots):
            ec2.snapshots[snapshot_id] = snap = replace(snap, state="error")
        return snap

    ec2.describe_snapshot = broken  # type: ignore[method-assign]
    with pytest.raises(
        MoveFailedError, match="step 'snapshot'.*failed; run the move again"
    ):
        await mover(kube, ec2).run(REQ)
    assert home_data(kube, ec2) == DATA
    ec2.describe_snapshot = describe  # type: ignore[method-assign]
    result = await mover(kube, ec2).run(REQ)
    assert result.snapshot_id != min(ec2.snapshots)
    assert home_data(kube, ec2) == DATA


async def test_slow_snapshot_times_out_then_resumes_with_the_same_snapshot() -> None:
    kube, ec2, _ = world(pending_polls=1000)
    quick = Waits(snapshot_s=5, volume_s=5, bind_s=5, interval_s=1)
    with pytest.raises(
        MoveFailedError, match="timed out after 5 s waiting for snapshot"
    ):
        await mover(kube, ec2, waits=quick).run(REQ)
    assert home_data(kube, ec2) == DATA
    ec2.pending_polls = 1
    await mover(kube, ec2).run(REQ)
    assert_converged(kube, ec2)


async def test_permission_error_is_clear_and_changes_nothing(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    denied = ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized"}},
        "CreateSnapshot",
    )
    faults.fail_method("ec2.create_snapshot", map_error(denied, "ec2:CreateSnapshot"))
    with pytest.raises(
        MoveFailedError,
        match=r"AWS denied ec2:CreateSnapshot .*"
        r"alice stays on the old, unchanged volume vol-\w+ in us-east-1a",
    ):
        await mover(kube, ec2).run(REQ)
    assert home_data(kube, ec2) == DATA
    assert claim_of(kube)["spec"]["volumeName"] == "pvc-1"


async def test_new_volume_that_differs_is_not_used(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    create = ec2.create_volume_from_snapshot

    def small(*args, **kw):
        vol = create(*args, **kw)
        ec2.volumes[vol.volume_id] = replace(vol, size_gib=5)
        return ec2.volumes[vol.volume_id]

    ec2.create_volume_from_snapshot = small  # type: ignore[method-assign]
    with pytest.raises(MoveFailedError, match="differs from .*size 5 instead of 10"):
        await mover(kube, ec2).run(REQ)
    assert claim_of(kube)["spec"]["volumeName"] == "pvc-1"
    assert ec2.deleted == []


def test_faults_helper_counts_calls() -> None:
    faults = Faults()
    faults.fail(1, Crash("second"))
    faults.hit("a")
    with pytest.raises(Crash, match="second"):
        faults.hit("b")
    assert faults.calls == ["a", "b"]


# ------------------------------------------------------- the marker of a move
def underway(kube: FakeKube) -> Underway | None:
    return move_underway(kube.pvs.values(), f"{NS}/{CLAIM}", NOW)


async def test_a_running_move_is_marked_and_the_mark_ends_with_it(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    """Spawns are refused while the heartbeat is fresh; a finished move leaves none."""
    kube, ec2, _ = alice_home
    seen: list[Underway | None] = []
    await mover(kube, ec2, on_step=lambda r: seen.append(underway(kube))).run(REQ)
    running = Underway(
        move_id=seen[0].move_id if seen[0] else "", target_zone=B, running=True
    )
    assert seen[:-1] == [running] * (len(STEPS) - 1), "marked from the first step"
    assert seen[-1] is None and underway(kube) is None
    assert all(MOVE_HEARTBEAT not in annotations_of(pv) for pv in kube.pvs.values())


async def test_a_failed_move_drops_its_heartbeat(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    """The old claim is intact after a failure: spawns may go on at once."""
    kube, ec2, faults = alice_home
    faults.fail_method("ec2.create_volume_from_snapshot", _injected("ec2.create"))
    with pytest.raises(MoveFailedError, match="injected fault"):
        await mover(kube, ec2).run(REQ)
    found = underway(kube)
    assert found is not None and not found.running
    assert underway_message(USER, found, claim_exists=True) is None
