"""Several seeded days for ``bench/bench_warmer.py``: traces, rows, mean, worst.

The warm settings were chosen on the shipped workday; measured only there they
may fit that day alone. ``make_days`` writes days drawn by
``make_workday_trace.seeded_days`` (team size 20–200, arrival spread, share of
people who change size, share of new people), each replayed with the same
settings; ``day_rows`` keeps each scenario's figures of a day, ``summary`` the
mean day and the worst (lowest readiness, highest extra cost, separately), and
``plot_days`` draws both per day.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

from make_workday_trace import Variation, seeded_days, write_trace

ROW_KEYS = (
    "spawns",
    "never_ready",
    "ready_within_15s",
    "on_running_node",
    "compute_cost_usd",
    "nodes_started",
    "node_hours",
)


def make_days(
    count: int, seed: int, into: Path, max_team: int = 200
) -> list[tuple[Variation, Path]]:
    """Write ``count`` seeded days into ``into``; return each with its variation."""
    return [
        (var, write_trace(into / f"day-{i + 1}-seed-{var.seed}.yaml", var))
        for i, var in enumerate(seeded_days(count, seed, max_team))
    ]


def day_rows(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each scenario's figures of one day, with its extra cost over ``none``."""
    base = results.get("none", {}).get("compute_cost_usd")
    rows = {}
    for kind, r in results.items():
        row = {k: r[k] for k in ROW_KEYS}
        row["wait_p50_s"], row["wait_p90_s"] = r["wait_s"]["p50"], r["wait_s"]["p90"]
        row["extra_cost_vs_none"] = (
            round(r["compute_cost_usd"] / base - 1, 3) if base else None
        )
        rows[kind] = row
    return rows


def summary(days: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario: the mean day and the worst day over ``days``."""
    out: dict[str, dict[str, Any]] = {}
    for kind in days[0]["results"]:
        rows = [d["results"][kind] for d in days]
        ready = [r["ready_within_15s"] for r in rows]
        extra = [r["extra_cost_vs_none"] for r in rows]
        low = min(range(len(rows)), key=lambda i: ready[i])
        dear = max(range(len(rows)), key=lambda i: extra[i] or 0)
        out[kind] = {
            "mean": {
                "ready_within_15s": round(statistics.fmean(ready), 3),
                "on_running_node": round(
                    statistics.fmean(r["on_running_node"] for r in rows), 3
                ),
                "extra_cost_vs_none": round(statistics.fmean(extra), 3)
                if None not in extra
                else None,
            },
            "worst": {
                "ready_within_15s": ready[low],
                "ready_day": days[low]["day"],
                "extra_cost_vs_none": extra[dear],
                "cost_day": days[dear]["day"],
            },
        }
    return out


def variation_row(var: Variation) -> dict[str, Any]:
    return dataclasses.asdict(var)


def plot_days(days: list[dict[str, Any]]) -> str:
    """Two charts in one SVG: readiness and extra cost of each scenario per day."""
    from wbspawner.pages.svg import Series, line_chart_svg

    kinds = list(days[0]["results"])
    ticks = [(float(d["day"]), f"{d['day']} ({d['variation']['team']})") for d in days]

    def series(key: str) -> list[Series]:
        return [
            Series(
                kind,
                [(float(d["day"]), float(d["results"][kind][key] or 0)) for d in days],
            )
            for kind in kinds
        ]

    a = line_chart_svg(
        series("ready_within_15s"),
        title="Share of spawns ready within 15 s, per seeded day",
        x_label="day (team size)",
        y_label="share of spawns",
        x_ticks=ticks,
    )
    b = line_chart_svg(
        series("extra_cost_vs_none"),
        title="Extra compute cost over no warming, per seeded day",
        x_label="day (team size)",
        y_label="extra cost (share)",
        x_ticks=ticks,
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="540">'
        f'<g>{a}</g><g transform="translate(0,280)">{b}</g></svg>'
    )
