"""``home list``'s rows: a home whose EBS volume EC2 no longer knows is flagged."""

from __future__ import annotations

import pytest

from tests.unit.homes.fakes import NS, USER, FakeEc2, FakeKube, Faults
from wbspawner.errors import TemporaryAwsError
from wbspawner.homes.views import home_rows


async def test_an_existing_volume_is_not_flagged(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, _ = alice_home
    rows = await home_rows(kube, list(kube.pvcs.values()), NS, ec2)
    assert [(r.user, r.status, r.volume_missing) for r in rows] == [
        (USER, "Bound", False)
    ]


async def test_a_volume_gone_from_ec2_is_flagged_and_nothing_is_deleted(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    """AWS state lost (a volume deleted behind Kubernetes' back): the PV still
    names it; the row says so, and the claim and PV stay as they are."""
    kube, ec2, faults = alice_home
    volume = next(iter(ec2.volumes))
    del ec2.volumes[volume]
    pvs, pvcs = dict(kube.pvs), dict(kube.pvcs)
    rows = await home_rows(kube, list(kube.pvcs.values()), NS, ec2)
    assert [(r.volume_id, r.status, r.volume_missing) for r in rows] == [
        (volume, "Bound, EBS volume missing", True)
    ]
    assert (kube.pvs, kube.pvcs) == (pvs, pvcs)
    assert [c for c in faults.calls if not c.startswith(("kube.get", "kube.list"))] == [
        "ec2.describe_volume"
    ]
    unchecked = await home_rows(kube, list(kube.pvcs.values()), NS)
    assert unchecked[0].status == "Bound" and not unchecked[0].volume_missing


async def test_ec2_unreachable_is_an_error_not_a_missing_volume(
    alice_home: tuple[FakeKube, FakeEc2, Faults],
) -> None:
    kube, ec2, faults = alice_home
    faults.fail_method("ec2.describe_volume", TemporaryAwsError("timed out"), 1)
    with pytest.raises(TemporaryAwsError, match="timed out"):
        await home_rows(kube, list(kube.pvcs.values()), NS, ec2)
