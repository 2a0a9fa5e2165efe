"""Are there at least `checks.min_count` backups in the repository?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status
from verifier.units import format_bytes, plural


def check(context: CheckContext) -> CheckResult | None:
    """Returns WARNING below the minimum count; None for a single `--backup` file."""
    if context.single_file:
        return None
    count = len(context.backups)
    minimum = context.config.checks.min_count
    total = sum(backup.size_bytes for backup in context.backups)
    metrics: dict[str, int | float | str] = {"count": count, "total_bytes": total}
    legacy = sum(1 for backup in context.backups if backup.legacy)
    note = f" ({legacy:,} without manifest)" if legacy else ""
    backups = f"{count:,} {plural(count, 'backup')}{note}"
    if count < minimum:
        return CheckResult("backup_count", Status.WARNING, f"{backups}, fewer than {minimum:,}", metrics=metrics)
    return CheckResult("backup_count", Status.OK, f"{backups}, {format_bytes(total)}", metrics=metrics)
