"""Write bench/traces/workday.yaml: a workday of logins, reproducible from a seed.

About 40 people of a data-science team on a Wednesday: most arrive between
08:00 and 10:30, a few after lunch; half stop for lunch and start again; they
leave between 15:00 and 18:45. Each person has habits (when they usually come,
whether they take a lunch break, when they leave) that vary by about 12 minutes
from day to day; ``past_starts`` are the times of day of their server starts
over the 20 workdays before (as the hub's accounting records them; the warmer
learns habits from them). Sizes follow a typical mix (mostly 16 and
64 GiB, some 4 and 128 GiB, a few GPU and one 256 GiB user); homes are spread
over three zones; two people are new (no home yet), three with a home do not
come today, and four pick another size than the day before.

``Variation`` makes other days from the same generator: another seed, team
size (20–200; the size mix scales with it), arrival spread (the sigma of usual
arrival times, times a factor), the share of people who pick another size than
the day before, and the share of new people. ``seeded_days`` draws such days
for the benchmark (``bench/bench_warmer.py --days N``), so that the warm
settings are measured on days they were not tuned on.

Run: ``python bench/make_workday_trace.py`` (the committed trace was made so);
``python bench/make_workday_trace.py --seed 7 --team 120 --out day.yaml`` for
another day.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

SEED = 20261125
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
MIX = (
    ("medium", 16),
    ("large", 12),
    ("small", 5),
    ("xlarge", 3),
    ("gpu-t4", 3),
    ("xxlarge", 1),
)
OTHER = {"medium": "large", "large": "medium", "small": "medium", "xlarge": "large"}
JITTER = 12.0
"""How much a person's times vary from day to day, minutes (one sigma)."""
PAST_DAYS = 20
"""Workdays of recorded starts before the day (the warmer's habits)."""
ABSENT = 0.1
"""Share of past days a person did not come."""


@dataclass(frozen=True)
class Variation:
    """How one generated day differs from the shipped one (its defaults)."""

    seed: int = SEED
    team: int = 40
    """People who have a home (the size mix scales with it), plus the new."""
    spread: float = 1.0
    """Factor on the sigma of the usual arrival times (35 minutes)."""
    change_share: float = 0.1
    """Share of people who pick another size than the day before."""
    new_share: float = 0.05
    """Share of people who are new (no home, no habits)."""


def seeded_days(count: int, seed: int = 1, max_team: int = 200) -> list[Variation]:
    """``count`` days with team size, spread and shares drawn from ``seed``.

    ``max_team`` caps the team sizes drawn (20 to it), for quick runs.
    """
    rng = random.Random(seed)
    return [
        Variation(
            seed=rng.randrange(1, 10**6),
            team=rng.randint(20, max(20, max_team)),
            spread=round(rng.uniform(0.6, 1.6), 2),
            change_share=round(rng.uniform(0.0, 0.3), 2),
            new_share=round(rng.uniform(0.0, 0.15), 2),
        )
        for _ in range(count)
    ]


def hhmm(minute: float) -> str:
    m = int(round(minute))
    return f"{m // 60:02d}:{m % 60:02d}"


def clip(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


@dataclass(frozen=True)
class Habit:
    """When one person usually comes, goes to lunch and leaves (minutes)."""

    late: bool
    arrive: float
    lunch: bool
    lunch_out: float
    lunch_len: float
    leave: float


def habit(rng: random.Random, spread: float = 1.0) -> Habit:
    late = rng.random() < 0.1
    arrive = (
        rng.uniform(13 * 60, 14.5 * 60)
        if late
        else clip(rng.gauss(9 * 60, 35 * spread), 7 * 60 + 50, 10 * 60 + 45)
    )
    return Habit(
        late=late,
        arrive=arrive,
        lunch=not late and rng.random() < 0.5,
        lunch_out=rng.gauss(12 * 60, 15),
        lunch_len=clip(rng.gauss(55, 12), 30, 90),
        leave=rng.gauss(17 * 60, 40),
    )


def day(rng: random.Random, h: Habit) -> list[tuple[float, float]]:
    """One day of a person: their habit with the day's variation (minutes)."""
    arrive = clip(rng.gauss(h.arrive, JITTER), 7 * 60 + 50, 14.75 * 60)
    leave = clip(rng.gauss(h.leave, JITTER), max(arrive + 90, 15 * 60), 18 * 60 + 45)
    if h.lunch:
        out = clip(rng.gauss(h.lunch_out, JITTER), arrive + 60, 12 * 60 + 45)
        back = out + clip(rng.gauss(h.lunch_len, JITTER / 2), 30, 90)
        return [(arrive, out), (back, leave)]
    return [(arrive, leave)]


def make_trace(seed: int = SEED, var: Variation | None = None) -> dict[str, object]:
    """One day; ``var`` (with its own seed) overrides ``seed`` and the defaults."""
    var = var or Variation(seed=seed)
    rng = random.Random(var.seed)
    scale = var.team / 40
    sizes = [s for s, n in MIX for _ in range(max(1, round(n * scale)))]
    rng.shuffle(sizes)
    users: list[dict[str, object]] = []
    for i, size in enumerate(sizes):
        h = habit(rng, var.spread)
        users.append(
            {
                "name": f"user{i + 1:02d}",
                "size": size,
                "home": ZONES[rng.randrange(3)],
                "last_size": size,
                "past_starts": past_starts(rng, h),
                "sessions": [f"{hhmm(a)}-{hhmm(b)}" for a, b in day(rng, h)],
            }
        )
    changers = [u for u in users if u["size"] in OTHER]
    changing = min(len(changers), round(var.change_share * len(sizes)))
    for user in rng.sample(changers, changing):
        user["last_size"] = OTHER[str(user["size"])]
    mediums = [u for u in users if u["size"] == "medium"]
    new = min(len(mediums), round(var.new_share * len(sizes)))
    for user in rng.sample(mediums, new):
        user["home"] = None
        user["last_size"] = None
        user["past_starts"] = []
    away = ("medium", "large", "medium") * max(1, round(scale))
    for i, size in enumerate(away[: max(1, round(3 * scale))]):
        users.append(
            {
                "name": f"away{i + 1}",
                "size": size,
                "home": ZONES[rng.randrange(3)],
                "last_size": size,
                "past_starts": past_starts(rng, habit(rng)),
                "sessions": [],
            }
        )
    detail = "" if var == Variation(seed=var.seed) else f", {asdict(var)}"
    return {
        "description": f"A workday of a {var.team}-person data-science team (generated"
        f" by bench/make_workday_trace.py, seed {var.seed}{detail}).",
        "day": "2026-11-25",
        "timezone": "America/New_York",
        "start": "07:30",
        "end": "19:00",
        "users": users,
    }


def past_starts(rng: random.Random, h: Habit) -> list[str]:
    """Server starts (times of day) of the last ``PAST_DAYS`` workdays."""
    starts = {
        hhmm(a)
        for _ in range(PAST_DAYS)
        if rng.random() >= ABSENT
        for a, _b in day(rng, h)
    }
    return sorted(starts)


def write_trace(out: Path, var: Variation) -> Path:
    """Write one generated day to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# A workday of logins for bench/bench_warmer.py. Each user has a size,\n"
        "# a home zone (null: new, the home is made where the first node is), the\n"
        "# size the hub remembers from their last spawn, the times of day of their\n"
        "# server starts over the 20 workdays before, and today's sessions (local\n"
        "# time, start-stop). Regenerate: python bench/make_workday_trace.py\n"
    )
    text = yaml.safe_dump(
        make_trace(var=var), sort_keys=False, width=100, default_flow_style=None
    )
    out.write_text(header + text)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Variation()
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--team", type=int, default=default.team)
    parser.add_argument("--spread", type=float, default=default.spread)
    parser.add_argument("--change-share", type=float, default=default.change_share)
    parser.add_argument("--new-share", type=float, default=default.new_share)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "traces" / "workday.yaml",
    )
    args = parser.parse_args(argv)
    var = Variation(
        args.seed, args.team, args.spread, args.change_share, args.new_share
    )
    print(write_trace(args.out, var))


if __name__ == "__main__":
    main()
