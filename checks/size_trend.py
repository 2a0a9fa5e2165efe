"""Did the newest backup shrink a lot compared with the previous one (somebody truncated a table)?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Metric, Status
from verifier.units import format_bytes

NAME = "size_trend"


def check(context: CheckContext) -> CheckResult | None:
    """Returns WARNING when the newest backup is more than `checks.trends.size_drop_percent` smaller
    than the previous one; None for a single file or with fewer than two backups."""
    if context.single_file or len(context.backups) < 2:
        return None
    previous, newest = context.backups[-2], context.backups[-1]
    metrics: dict[str, Metric] = {"size_bytes": newest.size_bytes, "previous_size_bytes": previous.size_bytes}
    if previous.format != newest.format:
        return CheckResult(
            NAME,
            Status.OK,
            f"not compared: {newest.name} is {newest.format}, the previous backup {previous.format}",
            metrics=metrics,
        )
    if previous.size_bytes <= 0:
        return None
    change = (newest.size_bytes - previous.size_bytes) / previous.size_bytes * 100
    metrics["change_percent"] = round(change, 1)
    sizes = f"{format_bytes(newest.size_bytes)} now, {format_bytes(previous.size_bytes)} in {previous.name}"
    limit = context.config.checks.trends.size_drop_percent
    if -change > limit:
        return CheckResult(
            NAME,
            Status.WARNING,
            f"backup is {-change:.0f}% smaller than the previous one (limit {limit:g}%)",
            details=(f"{sizes}: was a table truncated or dropped?",),
            metrics=metrics,
        )
    return CheckResult(NAME, Status.OK, f"size {change:+.1f}% vs the previous backup ({sizes})", metrics=metrics)
