"""The spawn form's size list: who sees what, with hardware, prices and warm state."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

from wbspawner.model import ImageChoice, Profiles, Size, WaitSample
from wbspawner.spawn.form import (
    CARD,
    IMAGE_OPTION,
    admin_warning,
    banner,
    hardware,
    kubespawner_profiles,
    size_card,
    warm_text,
)
from wbspawner.spawn.waits import Waits, summarize

A = "us-east-1a"


def sized(profiles: Profiles, slug: str) -> Size:
    size = profiles.size(slug)
    assert size is not None, slug
    return size


@pytest.mark.parametrize(
    ("groups", "is_admin", "slugs"),
    [
        pytest.param(
            ["jupyter-users"],
            False,
            ["small", "medium", "large", "xlarge", "xxlarge"],
            id="bob",
        ),
        pytest.param(
            ["gpu-users", "jupyter-users"],
            False,
            [
                "small",
                "medium",
                "large",
                "xlarge",
                "xxlarge",
                "gpu-t4",
                "gpu-a10g",
                "gpu-a10g-x4",
            ],
            id="gina",
        ),
        pytest.param(
            ["gpu-users"],
            False,
            ["small", "medium", "gpu-t4", "gpu-a10g", "gpu-a10g-x4"],
            id="gpu-only",
        ),
        pytest.param(
            ["jupyter-admins"],
            True,
            [
                "small",
                "medium",
                "large",
                "xlarge",
                "xxlarge",
                "huge",
                "gpu-t4",
                "gpu-a10g",
                "gpu-a10g-x4",
            ],
            id="admin",
        ),
        pytest.param([], False, [], id="no-groups"),
    ],
)
def test_lists_exactly_the_sizes_the_user_may_use(
    profiles: Profiles, groups: list[str], is_admin: bool, slugs: list[str]
) -> None:
    entries = kubespawner_profiles(profiles, groups, is_admin)
    assert [e["slug"] for e in entries] == slugs
    if entries:
        assert sum(e["default"] for e in entries) == 1


def test_entry_card_shows_hardware_prices_and_note(profiles: Profiles) -> None:
    entry = next(
        e
        for e in kubespawner_profiles(profiles, ["jupyter-users"], False)
        if e["slug"] == "large"
    )
    assert entry["display_name"] == "64 GiB"
    assert "description" not in entry  # the card is all the form shows
    card = entry[CARD]
    assert card.name == "64 GiB"
    assert card.hardware == "64 GiB memory · 8 CPUs"
    assert card.on_demand == "$0.50/h on-demand"
    assert card.spot is not None and card.spot.endswith("/h spot (estimated)")
    assert card.wait is None and not card.ready  # warm state unknown
    assert card.note == "8 CPUs, larger data sets"


def test_entry_carries_placement_and_resources(profiles: Profiles) -> None:
    entry = kubespawner_profiles(profiles, ["jupyter-users"], False)[2]
    override = entry["kubespawner_override"]
    pool = profiles.pools["mem64"]
    assert override["node_selector"] == {"wbspawner.io/pool": "mem64"}
    assert override["mem_limit"] == pool.request.memory_mib * 2**20
    assert set(entry["profile_options"]) == {IMAGE_OPTION}
    choices = entry["profile_options"][IMAGE_OPTION]["choices"]
    assert list(choices) == ["scipy", "datascience"]
    assert choices["scipy"]["default"] is True
    assert choices["datascience"]["kubespawner_override"] == {
        "image": "quay.io/jupyter/datascience-notebook:2026-07-20"
    }


def test_single_image_needs_no_dropdown(profiles: Profiles) -> None:
    size = profiles.sizes[0]
    only = dataclasses.replace(size, images=(size.images[0],))
    changed = dataclasses.replace(profiles, sizes=(only, *profiles.sizes[1:]))
    entry = kubespawner_profiles(changed, ["jupyter-users"], False)[0]
    assert "profile_options" not in entry
    assert entry["kubespawner_override"]["image"] == size.images[0].image


def test_group_restricted_image_is_hidden(profiles: Profiles) -> None:
    size = profiles.sizes[0]
    secret = ImageChoice(
        slug="secret",
        display_name="Secret",
        image="x/secret:1",
        allowed_groups=("gpu-users",),
    )
    changed = dataclasses.replace(
        profiles,
        sizes=(
            dataclasses.replace(size, images=(*size.images, secret)),
            *profiles.sizes[1:],
        ),
    )
    bob = kubespawner_profiles(changed, ["jupyter-users"], False)[0]
    gina = kubespawner_profiles(changed, ["gpu-users"], False)[0]
    assert "secret" not in bob["profile_options"][IMAGE_OPTION]["choices"]
    assert "secret" in gina["profile_options"][IMAGE_OPTION]["choices"]


def test_admin_text_is_escaped_for_kubespawner_and_plain_on_the_card(
    profiles: Profiles,
) -> None:
    """KubeSpawner reads the entry's names raw; the card's template escapes them
    (tests/unit/pages/test_spawnform.py checks the rendered card)."""
    size = dataclasses.replace(
        profiles.sizes[0],
        display_name="<b>4 GiB</b>",
        description="<script>alert(1)</script>",
        images=(
            dataclasses.replace(profiles.sizes[0].images[0], display_name="<i>A</i>"),
            *profiles.sizes[0].images[1:],
        ),
    )
    changed = dataclasses.replace(profiles, sizes=(size, *profiles.sizes[1:]))
    entry = kubespawner_profiles(changed, ["jupyter-users"], False)[0]
    assert entry["display_name"] == "&lt;b&gt;4 GiB&lt;/b&gt;"
    choices = entry["profile_options"][IMAGE_OPTION]["choices"]
    assert choices[size.images[0].slug]["display_name"] == "&lt;i&gt;A&lt;/i&gt;"
    card = entry[CARD]
    assert card.name == "<b>4 GiB</b>"
    assert card.note == "<script>alert(1)</script>"
    assert card.images[0].name == "<i>A</i>"


def test_gpu_hardware_names_the_gpus(profiles: Profiles) -> None:
    assert hardware(profiles.pools["gpu-a10g-x4"]).endswith("4× NVIDIA A10G GPU")


def test_observed_spot_price_is_labelled(profiles: Profiles) -> None:
    prices = {("r5.2xlarge", "us-east-1a"): 0.1234, ("r6i.2xlarge", "us-east-1b"): 0.2}
    large = sized(profiles, "large")
    card = size_card(large, profiles.pool_of(large), profiles, None, prices)
    assert (card.on_demand, card.spot) == (
        "$0.50/h on-demand",
        "$0.12/h spot (current price)",
    )


def test_on_demand_first_pool_still_shows_spot(profiles: Profiles) -> None:
    huge = sized(profiles, "huge")
    assert profiles.pool_of(huge).name == "mem512"
    card = size_card(huge, profiles.pool_of(huge), profiles, None, None)
    assert card.on_demand == "$4.03/h on-demand"
    assert card.spot is not None and card.spot.endswith("/h spot (estimated)")


def test_on_demand_only_pool_has_no_spot_line(profiles: Profiles) -> None:
    large = sized(profiles, "large")
    pool = dataclasses.replace(profiles.pool_of(large), capacity_types=("on-demand",))
    card = size_card(large, pool, profiles, None, None)
    assert (card.on_demand, card.spot) == ("$0.50/h on-demand", None)


@pytest.mark.parametrize(
    ("warm", "expected"),
    [
        pytest.param(None, None, id="unknown"),
        pytest.param({"mem64": 1}, "Ready now", id="warm"),
        pytest.param({"mem64": 0}, "Starts in about 3 minutes", id="cold"),
        pytest.param({}, "Starts in about 3 minutes", id="pool-absent"),
    ],
)
def test_warm_text(
    profiles: Profiles, warm: dict[str, int] | None, expected: str | None
) -> None:
    assert warm_text(profiles.pools["mem64"], warm) == expected


def test_gpu_nodes_take_longer(profiles: Profiles) -> None:
    assert warm_text(profiles.pools["gpu-t4"], {}) == "Starts in about 5 minutes"


def test_cold_start_says_the_observed_wait(profiles: Profiles) -> None:
    """Cold starts seen in the user's zone set the wait; other zones' do not."""
    at = datetime(2026, 12, 7, 9, tzinfo=UTC)
    seen = (
        WaitSample(uid="a", pool="mem64", zone=A, at=at, boot_s=19, start_s=7),
        WaitSample(uid="b", pool="mem64", zone="us-east-1b", at=at, boot_s=300),
    )
    pool = profiles.pools["mem64"]
    here = warm_text(pool, {}, Waits(times=summarize(seen), zone=A))
    assert here == "Starts in about 25 seconds"
    entries = kubespawner_profiles(
        profiles,
        ["jupyter-users"],
        False,
        {},
        waits=Waits(times=summarize(seen), zone=A),
    )
    by_slug = {e["slug"]: e[CARD] for e in entries}
    assert by_slug["large"].wait == "Starts in about 25 seconds"
    assert by_slug["medium"].wait == "Starts in about 3 minutes"  # nothing observed


def test_warm_status_shows_in_the_form(profiles: Profiles) -> None:
    entries = kubespawner_profiles(
        profiles, ["jupyter-users"], False, warm_status={"mem64": 2}
    )
    by_slug = {e["slug"]: e[CARD] for e in entries}
    assert by_slug["large"].wait == "Ready now" and by_slug["large"].ready
    assert by_slug["medium"].wait == "Starts in about 3 minutes"
    assert not by_slug["medium"].ready


def test_banners_escape_text() -> None:
    assert "&lt;i&gt;" in banner("<i>x</i>", "info")
    assert "alert-warning" in banner("x", "bogus")
    warning = admin_warning("a.yaml: $.sizes[0]: <bad>\nb.yaml: $.pools: also")
    assert warning.count("<li>") == 2
    assert "&lt;bad&gt;" in warning
    assert "was not applied" in warning


def test_fifty_sizes_render_quickly(profiles: Profiles) -> None:
    base = profiles.sizes[1]
    many = tuple(
        dataclasses.replace(base, slug=f"s{i}", default=i == 0) for i in range(50)
    )
    changed = dataclasses.replace(profiles, sizes=many)
    started = time.perf_counter()
    entries = kubespawner_profiles(changed, ["jupyter-users"], False)
    elapsed = time.perf_counter() - started
    assert len(entries) == 50
    assert elapsed < 0.5


def test_card_says_it_in_plain_text(profiles: Profiles) -> None:
    """The hub's own template escapes the card; nothing in it is HTML."""
    entries = kubespawner_profiles(profiles, ["gpu-users"], False, {"gpu-t4": 1})
    card = next(e for e in entries if e["slug"] == "gpu-t4")[CARD]
    assert card.name == "GPU, 1× NVIDIA T4"
    assert card.gpu and card.ready and card.wait == "Ready now"
    assert card.on_demand == "$0.53/h on-demand"
    assert card.spot is not None and card.spot.endswith("spot (estimated)")
    assert [i.slug for i in card.images] == ["pytorch", "tensorflow"]
    assert card.image == "pytorch"
    assert card.unavailable is None
    medium = next(e for e in entries if e["slug"] == "medium")[CARD]
    assert not medium.gpu and not medium.ready
    assert medium.wait == "Starts in about 3 minutes"
