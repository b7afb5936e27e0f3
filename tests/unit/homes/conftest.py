"""Fixtures of the home tests (the fakes they use are in ``fakes.py``).

- ``alice_home``: ``(kube, ec2, faults)`` of ``fakes.world()``: a cluster with
  alice's bound 10 GiB home in us-east-1a holding ``DATA``.
"""

from __future__ import annotations

import pytest

from tests.unit.homes.fakes import FakeEc2, FakeKube, Faults, world


@pytest.fixture
def alice_home() -> tuple[FakeKube, FakeEc2, Faults]:
    return world()
