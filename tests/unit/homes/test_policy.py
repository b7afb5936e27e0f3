"""Zone choice, PV zones, move advice and the no-capacity message of homes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wbspawner.homes.policy import (
    MoveAdvice,
    ZoneFacts,
    choose_zone,
    first_home_zone,
    has_capacity,
    no_capacity_message,
    should_offer_move,
    zone_of_pv,
)
from wbspawner.model import HomeSettings, Pool, WarmStatus

A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"


R5 = ("r5.2xlarge",)
"""The pool of these tests: one type (its spot prices are the ones given)."""


F = ZoneFacts


@pytest.mark.parametrize(
    ("facts", "default", "zone", "reason"),
    [
        pytest.param([], None, A, "first zone", id="nothing-known-first-zone"),
        pytest.param([], B, B, "default zone", id="nothing-known-default"),
        pytest.param([], "eu-west-1a", A, "first zone", id="default-not-in-pool"),
        pytest.param(
            [F(zone=B, warm_nodes=1), F(zone=C, spot_price=0.01, spot_available=True)],
            None,
            B,
            "warm capacity",
            id="warm-beats-cheap-spot",
        ),
        pytest.param(
            [F(zone=A, warm_nodes=1), F(zone=C, warm_nodes=2)],
            None,
            C,
            "2 ready",
            id="most-warm-nodes",
        ),
        pytest.param(
            [F(zone=A, warm_nodes=1), F(zone=C, warm_nodes=1)],
            C,
            C,
            "warm",
            id="warm-tie-goes-to-default",
        ),
        pytest.param(
            [
                F(zone=A, spot_price=0.20),
                F(zone=B, spot_price=0.15),
                F(zone=C, spot_price=0.18),
            ],
            None,
            B,
            "lowest price",
            id="cheapest-spot",
        ),
        pytest.param(
            [
                F(zone=A, spot_price=0.20),
                F(zone=B, spot_price=0.15, free_nodes=0),
                F(zone=C, spot_price=0.18),
            ],
            None,
            C,
            "lowest price",
            id="cheapest-spot-without-room-skipped",
        ),
        pytest.param(
            [
                F(zone=A, spot_price=0.10, spot_available=False),
                F(zone=B, spot_price=0.15),
            ],
            None,
            B,
            "lowest price",
            id="cheap-but-unavailable-spot-skipped",
        ),
        pytest.param(
            [F(zone=C, spot_available=True)],
            None,
            C,
            "spot capacity available",
            id="spot-known-no-price",
        ),
        pytest.param(
            [F(zone=A, free_nodes=2), F(zone=B, free_nodes=5)],
            None,
            B,
            "free capacity",
            id="most-free-capacity",
        ),
        pytest.param(
            [F(zone=A, free_nodes=3), F(zone=C, free_nodes=3)],
            C,
            C,
            "free capacity",
            id="free-tie-goes-to-default",
        ),
        pytest.param(
            [F(zone="us-west-2a", warm_nodes=9)],
            None,
            A,
            "first zone",
            id="facts-outside-pool-ignored",
        ),
    ],
)
def test_choose_zone(
    make_pool: Callable[..., Pool],
    facts: list[ZoneFacts],
    default: str | None,
    zone: str,
    reason: str,
) -> None:
    choice = choose_zone(make_pool(instance_types=R5), facts, default)
    assert choice.zone == zone
    assert reason in choice.reason


def test_choose_zone_on_demand_pool_ignores_spot_prices(
    make_pool: Callable[..., Pool],
) -> None:
    facts = [F(zone=A, spot_price=0.01, free_nodes=1), F(zone=B, free_nodes=4)]
    choice = choose_zone(
        make_pool(instance_types=R5, capacity_types=("on-demand",)), facts, None
    )
    assert (choice.zone, choice.reason.split(":")[0]) == (B, "free capacity")


def test_choose_zone_needs_zones(make_pool: Callable[..., Pool]) -> None:
    with pytest.raises(ValueError, match="has no zones"):
        choose_zone(make_pool(instance_types=R5, zones=()), [], None)


def _pv(match: list[dict[str, object]], labels: dict[str, str] | None = None) -> dict:
    terms = [{"matchExpressions": match}] if match else []
    return {
        "metadata": {"name": "pv1", "labels": labels or {}},
        "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": terms}}},
    }


@pytest.mark.parametrize(
    ("pv", "zone"),
    [
        pytest.param(
            _pv(
                [
                    {
                        "key": "topology.kubernetes.io/zone",
                        "operator": "In",
                        "values": [B],
                    }
                ]
            ),
            B,
            id="well-known-key",
        ),
        pytest.param(
            _pv(
                [
                    {
                        "key": "topology.ebs.csi.aws.com/zone",
                        "operator": "In",
                        "values": [C],
                    }
                ]
            ),
            C,
            id="old-driver-key",
        ),
        pytest.param(
            _pv(
                [
                    {
                        "key": "topology.kubernetes.io/zone",
                        "operator": "In",
                        "values": [A, B],
                    }
                ]
            ),
            None,
            id="two-zones-ambiguous",
        ),
        pytest.param(
            _pv(
                [
                    {
                        "key": "topology.kubernetes.io/zone",
                        "operator": "NotIn",
                        "values": [A],
                    }
                ]
            ),
            None,
            id="not-in-is-no-zone",
        ),
        pytest.param(
            _pv(
                [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]
            ),
            None,
            id="other-key",
        ),
        pytest.param(_pv([], {"topology.kubernetes.io/zone": A}), A, id="label"),
        pytest.param({"metadata": {"name": "x"}}, None, id="no-spec"),
    ],
)
def test_zone_of_pv(pv: dict, zone: str | None) -> None:
    assert zone_of_pv(pv) == zone


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(F(zone=A), True, id="unknown-means-maybe"),
        pytest.param(F(zone=A, free_nodes=0), False, id="group-at-max"),
        pytest.param(F(zone=A, free_nodes=0, warm_nodes=1), True, id="warm-node"),
        pytest.param(F(zone=A, spot_available=False), True, id="on-demand-fallback"),
    ],
)
def test_has_capacity(
    make_pool: Callable[..., Pool], facts: ZoneFacts, expected: bool
) -> None:
    assert has_capacity(make_pool(instance_types=R5), facts) is expected


def test_has_capacity_spot_only_pool_without_spot(
    make_pool: Callable[..., Pool],
) -> None:
    assert not has_capacity(
        make_pool(instance_types=R5, capacity_types=("spot",)),
        F(zone=A, spot_available=False),
    )


@pytest.mark.parametrize(
    ("auto", "facts", "action", "target"),
    [
        pytest.param(
            False, [F(zone=A, free_nodes=1)], "none", None, id="home-zone-fine"
        ),
        pytest.param(
            False,
            [F(zone=A, free_nodes=0), F(zone=B, free_nodes=0), F(zone=C, free_nodes=0)],
            "none",
            None,
            id="nowhere-better",
        ),
        pytest.param(
            False,
            [F(zone=A, free_nodes=0), F(zone=B, free_nodes=0), F(zone=C, free_nodes=2)],
            "offer",
            C,
            id="offer",
        ),
        pytest.param(
            True,
            [F(zone=A, free_nodes=0), F(zone=B, warm_nodes=1), F(zone=C, free_nodes=2)],
            "move",
            B,
            id="auto-move-to-warm",
        ),
    ],
)
def test_should_offer_move(
    make_pool: Callable[..., Pool],
    auto: bool,
    facts: list[ZoneFacts],
    action: str,
    target: str | None,
) -> None:
    settings = HomeSettings(auto_move=auto)
    advice = should_offer_move(A, make_pool(instance_types=R5), facts, settings)
    assert (advice.action, advice.target_zone) == (action, target)


def test_should_offer_move_home_zone_outside_pool(
    make_pool: Callable[..., Pool],
) -> None:
    """A home in a zone the pool does not use can never start there."""
    pool = make_pool(instance_types=R5, zones=(B, C))
    advice = should_offer_move(A, pool, [], HomeSettings())
    assert (advice.action, advice.target_zone) == ("offer", B)


CONFLICT = (
    "0/4 nodes are available: 1 node(s) had untolerated taint "
    "{node-role: core}, 3 node(s) had volume node affinity conflict. "
    "preemption: 0/4 nodes are available: 4 Preemption is not helpful"
)


@pytest.mark.parametrize(
    ("advice", "expected"),
    [
        pytest.param(
            None, "an admin can move your home to another zone", id="no-advice"
        ),
        pytest.param(
            MoveAdvice(action="offer", target_zone=B, reason="r"),
            f"ask an admin to move your home to {B}",
            id="offer",
        ),
        pytest.param(
            MoveAdvice(action="move", target_zone=C, reason="r"),
            f"Your home is being moved to {C}",
            id="moving",
        ),
    ],
)
def test_no_capacity_message(
    make_pool: Callable[..., Pool], advice: MoveAdvice | None, expected: str
) -> None:
    message = no_capacity_message(CONFLICT, A, make_pool(instance_types=R5), advice)
    assert message is not None
    assert message.startswith(f"Your home directory is stored in zone {A}")
    assert "no 64 GiB node can be started there" in message
    assert expected in message


@pytest.mark.parametrize(
    ("event", "zone"),
    [
        pytest.param(
            "Successfully assigned jh/jupyter-alice to n1", A, id="not-about-capacity"
        ),
        pytest.param(CONFLICT, None, id="no-home-yet"),
    ],
)
def test_no_capacity_message_not_applicable(
    make_pool: Callable[..., Pool], event: str, zone: str | None
) -> None:
    assert no_capacity_message(event, zone, make_pool(instance_types=R5)) is None


@pytest.mark.parametrize(
    ("warm", "spot", "default", "zone"),
    [
        pytest.param(None, None, None, None, id="no-evidence-leaves-zone-open"),
        pytest.param({}, {}, "eu-west-1a", None, id="default-outside-pool-ignored"),
        pytest.param(None, None, C, C, id="configured-default"),
        pytest.param({"mem64": {B: 1}}, None, None, B, id="warm-node-from-warmer"),
        pytest.param({"mem64": {B: 0}}, None, None, None, id="no-ready-warm-nodes"),
        pytest.param({"mem128": {B: 2}}, None, None, None, id="other-pools-warmth"),
        pytest.param(
            None,
            {("r5.2xlarge", A): 0.20, ("r5.2xlarge", C): 0.12, ("m5.large", B): 0.01},
            None,
            C,
            id="cheapest-spot-of-the-pools-types",
        ),
        pytest.param(
            {"mem64": {A: 1}},
            {("r5.2xlarge", C): 0.12},
            None,
            A,
            id="warm-beats-spot",
        ),
    ],
)
def test_first_home_zone(
    make_pool: Callable[..., Pool],
    warm: dict[str, dict[str, int]] | None,
    spot: dict[tuple[str, str], float] | None,
    default: str | None,
    zone: str | None,
) -> None:
    status = WarmStatus.of(warm) if warm is not None else None
    choice = first_home_zone(make_pool(instance_types=R5), status, spot, default)
    assert (choice.zone if choice else None) == zone
