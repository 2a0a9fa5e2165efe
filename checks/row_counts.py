"""Does every restored table hold exactly the rows the snapshot counted? (The verdict; drift is `drift`.)"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming tables whose restored count differs from the snapshot (or, for a backup
    without manifest, that are missing or empty where production has rows); for such a backup, WARNING
    for differences beyond the drift tolerance; None when nothing was restored."""
    verification = context.verification
    if verification is None or not verification.tables:
        return None
    total = len(verification.tables)
    critical = verification.mismatched_tables
    warned = [table for table in verification.tables if table.status is Status.WARNING]
    metrics: dict[str, int | float | str] = {"tables": total, "mismatched": len(critical)}
    details = tuple(f"{table.qualified_name}: {table.note}" for table in [*critical, *warned])
    reference = "the snapshot" if verification.exact else "production now"
    if not verification.exact:
        details += (
            "exact comparison impossible: this backup has no manifest, so it was compared with "
            "production's current counts",
        )
    if len(critical) == 1:
        summary = f"{critical[0].qualified_name}: {critical[0].note}"
    elif critical:
        names = ", ".join(table.qualified_name for table in critical[:5])
        summary = f"{len(critical):,} of {total:,} tables differ from {reference}: {names}"
    elif warned:
        names = ", ".join(table.qualified_name for table in warned[:5])
        differ = "differs" if len(warned) == 1 else "differ"
        summary = f"{len(warned):,} {_tables(len(warned))} {differ} from production now beyond the tolerance: {names}"
    elif verification.exact:
        summary = "the 1 table matches" if total == 1 else f"all {total:,} tables match"
        summary += " the snapshot exactly"
    else:
        summary = "the 1 table is" if total == 1 else f"all {total:,} tables"
        summary += " within tolerance of production now (no exact comparison)"
    status = Status.CRITICAL if critical else Status.WARNING if warned else Status.OK
    return CheckResult("row_counts", status, summary, details, metrics)


def _tables(count: int) -> str:
    return "table" if count == 1 else "tables"
