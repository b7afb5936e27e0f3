"""``wbspawner home show`` describes a volume in words, not as a Python repr."""

from __future__ import annotations

import pytest

from wbspawner.homes.records import VolumeInfo
from wbspawner.homes.views import describe_volume


@pytest.mark.parametrize(
    ("volume", "text"),
    [
        pytest.param(
            VolumeInfo(
                volume_id="vol-0abc",
                zone="us-east-1b",
                size_gib=10,
                state="in-use",
                attached_to=("i-0def",),
                encrypted=True,
            ),
            "vol-0abc: 10 GiB gp3 in us-east-1b, in-use, attached to i-0def, encrypted",
            id="attached",
        ),
        pytest.param(
            VolumeInfo(
                volume_id="vol-1",
                zone="us-east-1a",
                size_gib=100,
                volume_type="gp3",
                iops=6000,
                throughput=250,
                encrypted=True,
                kms_key_id="arn:aws:kms:us-east-1:1:key/k",
                snapshot_id="snap-9",
            ),
            "vol-1: 100 GiB gp3 (6000 IOPS, 250 MiB/s) in us-east-1a, available, "
            "encrypted with arn:aws:kms:us-east-1:1:key/k, made from snap-9",
            id="from-a-snapshot",
        ),
        pytest.param(
            VolumeInfo(volume_id="vol-2", zone="us-east-1c", size_gib=5),
            "vol-2: 5 GiB gp3 in us-east-1c, available, not encrypted",
            id="plain",
        ),
    ],
)
def test_describe_volume(volume: VolumeInfo, text: str) -> None:
    assert describe_volume(volume) == text
