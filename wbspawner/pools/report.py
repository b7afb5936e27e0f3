"""What the pools commands print: plans and apply reports as tables and JSON.

This module owns the text an admin reads before and after an apply (a table of
the plan's actions with the fields that change, a summary line, the outcome of
each action) and the JSON the same data becomes with ``--json``. It decides
nothing; :mod:`~wbspawner.pools.plan` and :mod:`~wbspawner.pools.apply` do.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from wbspawner.pools.apply import ActionResult, ApplyReport
from wbspawner.pools.desired import JsonDict
from wbspawner.pools.plan import Action, Plan
from wbspawner.pools.tables import TableFn, text_table


def plan_to_json(plan: Plan) -> JsonDict:
    """Return a plan as JSON-serialisable data.

    Args:
        plan: the plan.

    Returns:
        ``{"cluster", "changes": n, "blocked": n, "actions": [...]}``.
    """
    return {
        "cluster": plan.cluster,
        "changes": len(plan.runnable),
        "blocked": len(plan.blocked),
        "actions": [
            {
                "kind": a.kind,
                "target": a.target,
                "blocked": a.blocked,
                "changes": [
                    {"field": c.field, "old": c.old, "new": c.new} for c in a.changes
                ],
                "params": dict(a.params),
            }
            for a in plan.actions
        ],
    }


def summarize(actions: Sequence[Action]) -> str:
    """Return a one-line count of actions by kind.

    Args:
        actions: some actions.

    Returns:
        E.g. ``3 create-asg, 1 update-asg``, or ``no changes``.
    """
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    if not counts:
        return "no changes"
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def plan_table(plan: Plan, table: TableFn = text_table) -> str:
    """Return a plan as a text table, one row per changed field, and a summary.

    Args:
        plan: the plan.
        table: lays out the rows (default :func:`text_table`).

    Returns:
        The table; ``No changes`` when there is nothing to do or to report.
    """
    head = f"Plan for cluster {plan.cluster}: {summarize(plan.runnable)}"
    if not plan.actions:
        return f"{head}\nNo changes: AWS matches the profiles."
    rows: list[tuple[str, ...]] = []
    for a in plan.actions:
        kind = f"{a.kind} (blocked)" if a.blocked else a.kind
        lines = [(c.field, c.old, c.new) for c in a.changes] or [("", "", "")]
        if a.blocked:
            lines.append(("blocked", "", a.blocked))
        for i, (fld, old, new) in enumerate(lines):
            rows.append(
                (kind, a.target, fld, old, new) if i == 0 else ("", "", fld, old, new)
            )
    text = table(("ACTION", "TARGET", "FIELD", "FROM", "TO"), rows)
    if plan.blocked:
        text.append(f"{len(plan.blocked)} action(s) blocked; see above.")
    return "\n".join([head, *text])


def result_line(result: ActionResult) -> str:
    """Return one action's outcome as one line, e.g. ``done  create-asg x: …``.

    Args:
        result: the action's result.

    Returns:
        The line.
    """
    detail = f": {result.detail}" if result.detail else ""
    return f"{result.status}  {result.action.kind} {result.action.target}{detail}"


def report_table(report: ApplyReport) -> str:
    """Return an apply report as text: one line per action, then a summary.

    Args:
        report: the report.

    Returns:
        The text.
    """
    width = max((len(r.status) for r in report.results), default=0)
    lines = [
        f"{r.status.ljust(width)}  {r.action.kind} {r.action.target}"
        + (f": {r.detail}" if r.detail else "")
        for r in report.results
    ]
    counts = ", ".join(
        f"{report.count(s)} {s}"
        for s in ("done", "already done", "would run", "failed", "not run", "blocked")
        if report.count(s)
    )
    lines.append(
        f"Apply{' (dry run)' if report.dry_run else ''}: {counts or 'nothing to do'}."
    )
    if report.failed is not None:
        lines.append(
            "Stopped at the failure; fix its cause and run apply again "
            "(it continues from what exists now)."
        )
    return "\n".join(lines)
