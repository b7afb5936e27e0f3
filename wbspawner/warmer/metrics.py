"""The warmer's Prometheus metrics.

This module owns the metric names and labels the warmer exports at
``<prefix>metrics``, in its own registry (so tests and several apps in one
process do not collide). Gauges are set from the last pass's cells and plan;
counters count passes and errors.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from wbspawner.warmer.policy import WarmPlan
from wbspawner.warmer.report import Cell

_CELL = ("pool", "zone")


class WarmerMetrics:
    """The warmer's metrics in a registry of their own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.warm_nodes = Gauge(
            "wbspawner_warm_nodes",
            "Ready nodes held by placeholders",
            _CELL,
            registry=r,
        )
        self.placeholders = Gauge(
            "wbspawner_warm_placeholders",
            "Placeholder pods by state",
            (*_CELL, "state"),
            registry=r,
        )
        self.target = Gauge(
            "wbspawner_warm_target",
            "Warm nodes the plan wants",
            (*_CELL, "capacity_type"),
            registry=r,
        )
        self.users = Gauge("wbspawner_user_pods", "User server pods", _CELL, registry=r)
        self.cost = Gauge(
            "wbspawner_warm_cost_per_hour_dollars",
            "What the warm nodes cost now, USD per hour",
            _CELL,
            registry=r,
        )
        self.cost_today = Gauge(
            "wbspawner_warm_cost_today_dollars",
            "Warm capacity's cost since local midnight, USD",
            registry=r,
        )
        self.plan_cost = Gauge(
            "wbspawner_warm_plan_cost_per_hour_dollars",
            "What the plan's warm nodes cost, USD per hour",
            registry=r,
        )
        self.passes = Counter(
            "wbspawner_warm_reconcile", "Reconcile passes", ("outcome",), registry=r
        )
        self.errors = Counter(
            "wbspawner_warm_errors", "Failed changes and reads", ("pool",), registry=r
        )

    def update(self, cells: Iterable[Cell], plan: WarmPlan, cost_today: float) -> None:
        """Set the gauges from one pass.

        Args:
            cells: the pool × zone states.
            plan: the plan.
            cost_today: warm cost since local midnight, USD.
        """
        for gauge in (self.warm_nodes, self.placeholders, self.target, self.users):
            gauge.clear()
        self.cost.clear()
        for c in cells:
            self.warm_nodes.labels(c.pool, c.zone).set(c.warm_nodes)
            self.placeholders.labels(c.pool, c.zone, "running").set(
                c.placeholders_running
            )
            self.placeholders.labels(c.pool, c.zone, "pending").set(
                c.placeholders_pending
            )
            self.users.labels(c.pool, c.zone).set(c.users)
            self.cost.labels(c.pool, c.zone).set(c.warm_cost_per_hour)
        for t in plan.targets:
            self.target.labels(t.pool, t.zone, t.capacity_type).set(t.count)
        self.cost_today.set(cost_today)
        self.plan_cost.set(plan.cost_per_hour)

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
