"""The warmer's status as JSON: what ``<prefix>api/status`` and the page show.

This module owns the shape of the status document: per pool × zone the warm
nodes, placeholders (running and pending), users, nodes by capacity type, the
warm cost per hour now and since local midnight, all nodes' cost per hour; the
totals; the plan with every decision and its reason; the last changes made;
the errors kept.

Pure: the app gathers a :class:`StatusView`, this module renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from wbspawner.model import CostSettings, Pool
from wbspawner.warmer.policy import WarmPlan
from wbspawner.warmer.report import Sample, cells, cost_since, local_midnight
from wbspawner.warmer.snapshot import ClusterSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusView:
    """Everything the status page shows, gathered by the app."""

    pools: Mapping[str, Pool]
    cost: CostSettings
    timezone: str
    snapshot: ClusterSnapshot | None
    plan: WarmPlan | None
    errors: Sequence[Mapping[str, str]]
    samples: Sequence[Sample]
    now: datetime
    dry_run: bool = False
    last_actions: Sequence[str] = ()


def plan_json(plan: WarmPlan) -> dict[str, Any]:
    """Return a plan as JSON-ready data: its cost, targets and every decision.

    Args:
        plan: the plan.

    Returns:
        ``cost_per_hour``, ``budget_per_hour``, ``targets``, ``decisions``.
    """
    return {
        "mode": plan.mode,
        "cost_per_hour": round(plan.cost_per_hour, 4),
        "budget_per_hour": plan.budget_per_hour,
        "targets": [
            {
                "pool": t.pool,
                "zone": t.zone,
                "capacity_type": t.capacity_type,
                "count": t.count,
                "price_per_hour": round(t.price_per_hour, 4),
                "reason": t.reason,
            }
            for t in plan.targets
        ],
        "decisions": [
            {"pool": d.pool, "zone": d.zone, "message": d.message}
            for d in plan.decisions
        ],
        "asg_min": [
            {
                "pool": t.pool,
                "zone": t.zone,
                "capacity_type": t.capacity_type,
                "min_size": t.min_size,
                "reason": t.reason,
            }
            for t in plan.asg_min
        ],
    }


def status_json(view: StatusView) -> dict[str, Any]:
    """Return the status as JSON-ready data (``GET <prefix>api/status``).

    Args:
        view: what to show.

    Returns:
        ``updated_at``, ``timezone`` (the site's), ``mode``, ``dry_run``,
        ``cells`` (per pool × zone),
        ``totals``, ``plan`` (targets and every decision with its reason),
        ``last_actions`` and ``errors``.
    """
    plan, snap = view.plan, view.snapshot
    found = cells(view.pools, snap, plan, view.cost) if snap else []
    start = local_midnight(view.now, ZoneInfo(view.timezone))
    samples = list(view.samples)
    out_cells = [
        {
            "pool": c.pool,
            "zone": c.zone,
            "target": c.target,
            "warm_nodes": c.warm_nodes,
            "placeholders": {
                "running": c.placeholders_running,
                "pending": c.placeholders_pending,
            },
            "users": c.users,
            "nodes": {"spot": c.spot_nodes, "on_demand": c.on_demand_nodes},
            "warm_cost_per_hour": round(c.warm_cost_per_hour, 4),
            "warm_cost_today": round(
                cost_since(samples, start, view.now, (c.pool, c.zone)), 4
            ),
            "node_cost_per_hour": round(c.node_cost_per_hour, 4),
        }
        for c in found
    ]
    return {
        "updated_at": snap.taken_at.isoformat() if snap else None,
        "timezone": view.timezone,
        "mode": plan.mode if plan else None,
        "dry_run": view.dry_run,
        "cells": out_cells,
        "totals": {
            "warm_cost_per_hour": round(sum(c.warm_cost_per_hour for c in found), 4),
            "warm_cost_today": round(cost_since(samples, start, view.now), 4),
            "node_cost_per_hour": round(sum(c.node_cost_per_hour for c in found), 4),
        },
        "plan": None if plan is None else plan_json(plan),
        "last_actions": list(view.last_actions),
        "errors": list(view.errors),
    }
