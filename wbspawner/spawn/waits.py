"""How long a cold start takes, in seconds and in words, from what was observed.

This module owns the estimate behind "Starts in about N …" on the spawn form and
"usually about N" on the progress page: the median of the last few cold starts
the warmer saw in the pool and zone (:class:`~wbspawner.model.WaitSample`: the
wait for a new node, then for the pod to be Ready on it), falling back to the
pool's other zones, and to the stated figures (:data:`BOOT_MINUTES_CPU`,
:data:`BOOT_MINUTES_GPU`) when nothing was observed.

The warmer keeps the samples (:func:`keep_last`, read by
:mod:`wbspawner.warmer.waits`) and reduces them to medians
(:func:`summarize`); the hub reads only those few numbers
(:class:`~wbspawner.model.WaitTimes`) and says the wait (:func:`estimate`).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wbspawner.model import ALL_ZONES, Pool, WaitSample, WaitTime, WaitTimes

BOOT_MINUTES_CPU = 3
"""Stated minutes from scale-up to a CPU server (EKS AL2023 AMI, image cached)."""
BOOT_MINUTES_GPU = 5
"""Stated minutes for a GPU node (larger AMI, NVIDIA driver and device plugin)."""
STATED_START_S = 60.0
"""Seconds from a new node to a Ready pod when only the boot was observed (a
first image pull; the stated figures above include it)."""
KEEP = 9
"""Samples kept per pool, zone and kind (user pods, placeholders): the median
of the last nine moves with the cluster yet ignores one odd start."""


def boot_minutes(pool: Pool) -> int:
    """Return the stated minutes a new node of the pool takes to a server.

    Args:
        pool: the pool.

    Returns:
        Minutes from scale-up to a server, when nothing was observed.
    """
    return BOOT_MINUTES_GPU if pool.is_gpu else BOOT_MINUTES_CPU


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """How long a cold start of a pool in a zone takes."""

    boot_s: float
    """Seconds until the pod has a new node."""
    start_s: float
    """Seconds from the node to a Ready pod (images, home volume, container)."""
    observed: bool
    """Whether any of it comes from observed starts (else the stated figures)."""

    @property
    def total_s(self) -> float:
        """Return the whole wait, in seconds."""
        return self.boot_s + self.start_s


def _median(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def _medians(samples: Sequence[WaitSample]) -> WaitTime:
    return WaitTime(
        boot_s=_median(s.boot_s for s in samples),
        start_s=_median(s.start_s for s in samples),
        samples=len(samples),
    )


def summarize(samples: Iterable[WaitSample]) -> WaitTimes:
    """Return the medians of cold starts per pool and zone, and per pool.

    Args:
        samples: the kept samples (:func:`keep_last`).

    Returns:
        Per pool, an entry per zone with samples and one over all its zones
        (:data:`~wbspawner.model.ALL_ZONES`).
    """
    by_cell: dict[str, dict[str, list[WaitSample]]] = {}
    for sample in samples:
        zones = by_cell.setdefault(sample.pool, {})
        zones.setdefault(sample.zone, []).append(sample)
        zones.setdefault(ALL_ZONES, []).append(sample)
    return WaitTimes.of(
        {
            pool: {zone: _medians(found) for zone, found in zones.items()}
            for pool, zones in by_cell.items()
        }
    )


def _near(times: WaitTimes | None, pool: str, zone: str | None) -> WaitTime:
    """Return the pool's medians in the zone, each else over all its zones."""
    zones = times.by_pool.get(pool, {}) if times else {}
    every = zones.get(ALL_ZONES) or WaitTime()
    here = zones.get(zone) if zone else None
    if here is None:
        return every
    return WaitTime(
        boot_s=every.boot_s if here.boot_s is None else here.boot_s,
        start_s=every.start_s if here.start_s is None else here.start_s,
        samples=here.samples,
    )


def estimate(pool: Pool, zone: str | None, times: WaitTimes | None) -> Estimate:
    """Return how long a cold start of ``pool`` in ``zone`` takes.

    Each part is the median of the observed starts in the zone, else in all the
    pool's zones. With no boot observed the stated figure stands for the whole
    wait; with a boot but no Ready user pod observed, a first pull
    (:data:`STATED_START_S`) is added to it.

    Args:
        pool: the pool.
        zone: the zone the pod is pinned to (its home's), or ``None``: any.
        times: the observed medians (:func:`summarize`), or ``None`` when unknown.

    Returns:
        The estimate.
    """
    near = _near(times, pool.name, zone)
    boot, start = near.boot_s, near.start_s
    if boot is None and start is None:
        return Estimate(boot_s=boot_minutes(pool) * 60.0, start_s=0.0, observed=False)
    return Estimate(
        boot_s=boot_minutes(pool) * 60.0 if boot is None else boot,
        start_s=STATED_START_S if start is None else start,
        observed=True,
    )


def wait_words(seconds: float) -> str:
    """Return a wait in words: ``about 25 seconds``, ``about 3 minutes``.

    Under two minutes in steps of five seconds, else in whole minutes (each
    within a quarter of the wait).

    Args:
        seconds: the wait.

    Returns:
        Plain text.
    """
    if seconds < 117.5:
        return f"about {max(5, round(seconds / 5) * 5)} seconds"
    return f"about {round(seconds / 60)} minutes"


def keep_last(
    known: Iterable[WaitSample], fresh: Iterable[WaitSample], keep: int = KEEP
) -> tuple[WaitSample, ...]:
    """Return the samples to keep: the newest ``keep`` per pool, zone and kind.

    A pod already known (its uid) is not counted twice.

    Args:
        known: the samples kept so far.
        fresh: newly observed samples.
        keep: how many to keep per pool, zone and kind (user pod, placeholder).

    Returns:
        A new tuple, oldest first.
    """
    by_uid = {s.uid: s for s in known}
    for sample in fresh:
        by_uid.setdefault(sample.uid, sample)
    ordered = sorted(by_uid.values(), key=lambda s: (s.at, s.uid))
    counts: dict[tuple[str, str, bool], int] = {}
    out: list[WaitSample] = []
    for sample in reversed(ordered):
        key = (sample.pool, sample.zone, sample.start_s is None)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] <= keep:
            out.append(sample)
    return tuple(reversed(out))


@dataclass(frozen=True, slots=True, kw_only=True)
class Waits:
    """The observed cold starts, seen from one user's spawn (their home's zone)."""

    times: WaitTimes | None = None
    """The observed medians, or ``None`` when unknown."""
    zone: str | None = None
    """The zone the user's pod is pinned to (their home's), or ``None``: any."""

    def of(self, pool: Pool) -> Estimate:
        """Return the wait of a cold start of ``pool`` for this user.

        Args:
            pool: the pool.

        Returns:
            The estimate (:func:`estimate`).
        """
        return estimate(pool, self.zone, self.times)
