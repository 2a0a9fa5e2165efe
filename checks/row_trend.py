"""Did a table lose many rows between the previous backup and the newest one?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.names import qualified
from verifier.report import CheckResult, Metric, Status

NAME = "row_trend"
_LISTED = 10


def check(context: CheckContext) -> CheckResult | None:
    """Returns WARNING naming every table whose snapshot row count dropped by more than
    `checks.trends.row_drop_percent` (and `row_drop_min_rows`) between the two newest backups with a
    manifest, or that disappeared; None for a single file or with fewer than two such backups."""
    if context.single_file:
        return None
    with_counts = [backup for backup in context.backups if backup.manifest is not None]
    if len(with_counts) < 2:
        return None
    previous, newest = with_counts[-2], with_counts[-1]
    assert previous.manifest is not None and newest.manifest is not None
    before = previous.manifest.counts_by_table()
    after = newest.manifest.counts_by_table()
    trends = context.config.checks.trends
    dropped: list[tuple[float, str]] = []
    for (schema, table), rows_before in before.items():
        name = qualified(schema, table)
        rows_after = after.get((schema, table))
        if rows_after is None:
            if rows_before >= max(trends.row_drop_min_rows, 1):  # an empty table that vanished lost no rows
                dropped.append((100.0, f"{name}: gone ({rows_before:,} rows in {previous.name})"))
            continue
        loss = rows_before - rows_after
        if loss >= max(trends.row_drop_min_rows, 1) and loss / rows_before * 100 > trends.row_drop_percent:
            percent = loss / rows_before * 100
            dropped.append((percent, f"{name}: {rows_before:,} → {rows_after:,} rows (-{percent:.0f}%)"))
    metrics: dict[str, Metric] = {"tables_compared": len(before), "tables_dropped": len(dropped)}
    if dropped:
        dropped.sort(key=lambda item: (-item[0], item[1]))  # biggest loss first, then by name
        lines = tuple(line for _, line in dropped)
        names = ", ".join(line.split(":", 1)[0] for line in lines[:_LISTED])
        more = f" and {len(lines) - _LISTED} more" if len(lines) > _LISTED else ""
        return CheckResult(
            NAME,
            Status.WARNING,
            f"{len(lines)} table(s) lost more than {trends.row_drop_percent:g}% of their rows since "
            f"{previous.name}: {names}{more}",
            details=lines,
            metrics=metrics,
        )
    return CheckResult(
        NAME,
        Status.OK,
        f"no table lost more than {trends.row_drop_percent:g}% of its rows since {previous.name}",
        metrics=metrics,
    )
