"""A retention plan as a plain-text table: `verifier prune` prints it, the nightly run logs it."""

from __future__ import annotations

from verifier.repository.retention import RetentionPlan
from verifier.units import format_age, format_bytes


def plan_table(plan: RetentionPlan) -> str:
    """Returns the plan as a plain-text table (one backup a line, newest first) and a summary line."""
    header = ("action", "backup", "created", "age", "size", "why")
    rows = [
        (
            decision.action.upper() if not decision.keep else decision.action,
            decision.name,
            decision.created_at.astimezone(plan.timezone).strftime("%Y-%m-%d %H:%M %Z"),
            format_age(plan.now - decision.created_at),
            format_bytes(decision.size_bytes),
            "; ".join(decision.reasons),
        )
        for decision in plan.decisions
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in [header, *rows]
    ]
    return "\n".join([*(line.rstrip() for line in lines), plan.summary()])
