"""How long a cold start takes: medians of observed starts, fallbacks, words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wbspawner.model import ALL_ZONES, Pool, Profiles, WaitSample
from wbspawner.spawn.waits import (
    KEEP,
    STATED_START_S,
    Estimate,
    Waits,
    keep_last,
    summarize,
    wait_words,
)
from wbspawner.spawn.waits import estimate as estimate_of

A, B = "us-east-1a", "us-east-1b"
T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)


def estimate(pool: Pool, zone: str | None, seen: list[WaitSample] | None) -> Estimate:
    """The estimate from samples, through the medians the hub reads."""
    return estimate_of(pool, zone, None if seen is None else summarize(seen))


def sample(
    uid: str,
    boot: float,
    start: float | None = None,
    zone: str = A,
    pool: str = "mem64",
    minute: int = 0,
) -> WaitSample:
    at = T0 + timedelta(minutes=minute)
    return WaitSample(uid=uid, pool=pool, zone=zone, at=at, boot_s=boot, start_s=start)


def test_nothing_observed_is_the_stated_figure(profiles: Profiles) -> None:
    cpu = estimate(profiles.pools["mem64"], A, [])
    gpu = estimate(profiles.pools["gpu-t4"], A, None)
    assert (cpu.total_s, cpu.observed) == (180, False)
    assert (gpu.total_s, gpu.observed) == (300, False)


def test_the_median_of_the_zone_and_not_of_other_pools(profiles: Profiles) -> None:
    seen = [
        sample("a", 18, 6),
        sample("b", 20, 8),
        sample("c", 60, 30),  # one slow start does not move the median far
        sample("d", 400, 90, zone=B),
        sample("e", 500, 90, pool="cpu4"),
    ]
    wait = estimate(profiles.pools["mem64"], A, seen)
    assert (wait.boot_s, wait.start_s, wait.observed) == (20, 8, True)


def test_a_zone_without_samples_takes_the_pools_other_zones(
    profiles: Profiles,
) -> None:
    seen = [sample("a", 20, 6, zone=A), sample("b", 40, 10, zone=B)]
    assert estimate(profiles.pools["mem64"], "us-east-1c", seen).total_s == 38
    assert estimate(profiles.pools["mem64"], None, seen).total_s == 38


def test_a_boot_without_a_user_start_adds_a_first_pull(profiles: Profiles) -> None:
    """Placeholders show the boot only; a user's start then takes a first pull."""
    wait = estimate(profiles.pools["mem64"], A, [sample("p", 19)])
    assert (wait.boot_s, wait.start_s) == (19, STATED_START_S)


def test_waits_of_a_user_are_the_estimate_in_their_zone(profiles: Profiles) -> None:
    seen = [sample("a", 20, 5, zone=A), sample("b", 100, 20, zone=B)]
    times = summarize(seen)
    assert Waits(times=times, zone=B).of(profiles.pools["mem64"]).total_s == 120


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        pytest.param(0, "about 5 seconds", id="never-zero"),
        pytest.param(26, "about 25 seconds", id="seconds"),
        pytest.param(117, "about 115 seconds", id="under-two-minutes"),
        pytest.param(118, "about 2 minutes", id="two-minutes"),
        pytest.param(180, "about 3 minutes", id="stated"),
        pytest.param(299, "about 5 minutes", id="rounded"),
    ],
)
def test_wait_words(seconds: float, words: str) -> None:
    assert wait_words(seconds) == words


@pytest.mark.parametrize("seconds", [5, 12, 26, 61, 117, 118, 150, 400, 1000])
def test_the_words_stay_within_a_quarter_of_the_wait(seconds: float) -> None:
    number, unit = wait_words(seconds).split()[1:]
    said = float(number) * (60 if unit == "minutes" else 1)
    assert abs(said - seconds) <= 0.25 * seconds


def test_keep_last_keeps_the_newest_per_cell_and_kind() -> None:
    users = [sample(f"u{i}", 20 + i, 5, minute=i) for i in range(KEEP + 3)]
    holders = [sample(f"p{i}", 30, minute=i) for i in range(KEEP + 1)]
    other = [sample("x", 50, 5, zone=B)]
    kept = keep_last(users[:4], users[2:] + holders + other)
    assert [s.uid for s in kept if s.uid.startswith("u")] == [
        s.uid for s in users[-KEEP:]
    ]
    assert len([s for s in kept if s.start_s is None]) == KEEP
    assert "x" in {s.uid for s in kept}
    assert [s.at for s in kept] == sorted(s.at for s in kept)


def test_keep_last_counts_a_pod_once() -> None:
    first = sample("u", 20, 5)
    again = sample("u", 99, 9, minute=5)  # the same pod, read again later
    assert keep_last([first], [again]) == (first,)


def test_summarize_gives_each_zone_and_the_whole_pool() -> None:
    seen = [
        sample("a", 20, 6, zone=A),
        sample("p", 30, zone=A),
        sample("b", 40, 10, zone=B),
    ]
    times = summarize(seen).by_pool["mem64"]
    assert (times[A].boot_s, times[A].start_s, times[A].samples) == (25, 6, 2)
    assert (times[B].boot_s, times[B].start_s, times[B].samples) == (40, 10, 1)
    assert (times[ALL_ZONES].boot_s, times[ALL_ZONES].start_s) == (30, 8)


def test_a_zone_without_user_starts_takes_the_pools_start(profiles: Profiles) -> None:
    """Each part falls back on its own: the zone's boot, the pool's start."""
    seen = [sample("p", 30, zone=A), sample("b", 40, 10, zone=B)]
    wait = estimate(profiles.pools["mem64"], A, seen)
    assert (wait.boot_s, wait.start_s) == (30, 10)
