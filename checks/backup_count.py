"""Are there at least `checks.min_count` backups in the repository, each with a manifest that can be trusted?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status
from verifier.units import format_bytes, plural


def check(context: CheckContext) -> CheckResult | None:
    """Returns WARNING below the minimum count or when a backup's manifest cannot be trusted (missing,
    unreadable, naming a path outside the repository); None for a single `--backup` file."""
    if context.single_file:
        return None
    count = len(context.backups)
    minimum = context.config.checks.min_count
    total = sum(backup.size_bytes for backup in context.backups)
    metrics: dict[str, int | float | str] = {"count": count, "total_bytes": total}
    legacy = sum(1 for backup in context.backups if backup.legacy and backup.problem is None)
    note = f" ({legacy:,} without manifest)" if legacy else ""
    backups = f"{count:,} {plural(count, 'backup')}{note}"
    if count < minimum:
        return CheckResult("backup_count", Status.WARNING, f"{backups}, fewer than {minimum:,}", metrics=metrics)
    untrusted = [backup for backup in context.backups if backup.problem is not None]
    if untrusted:  # a damaged manifest of any backup, not only of the one this run examines
        details = tuple(f"{backup.name}: {backup.problem}" for backup in untrusted)
        return CheckResult(
            "backup_count",
            Status.WARNING,
            f"{backups}, {len(untrusted):,} of them untrusted: {details[0]}",
            details[1:],
            metrics=metrics,
        )
    return CheckResult("backup_count", Status.OK, f"{backups}, {format_bytes(total)}", metrics=metrics)
