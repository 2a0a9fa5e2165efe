"""Does every restored table hold exactly the rows the snapshot counted (and is production near it)?"""

from __future__ import annotations

from verifier.catalogue import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming tables whose restored count differs from the snapshot (or, for a backup
    without manifest, that are missing or empty); WARNING for drift beyond the tolerance; None when
    nothing was restored."""
    verification = context.verification
    if verification is None or not verification.tables:
        return None
    mismatched = verification.mismatched_tables
    critical = [table for table in mismatched if table.status is Status.CRITICAL]
    status = max((table.status for table in mismatched), default=Status.OK)
    metrics: dict[str, int | float | str] = {"tables": len(verification.tables), "mismatched": len(critical)}
    details = tuple(f"{table.qualified_name}: {table.note}" for table in mismatched)
    if not verification.exact:
        details += (
            "exact comparison impossible: this backup has no manifest, so it was compared with "
            "production's current counts",
        )
        details += tuple(verification.notes)
    reference = "the snapshot" if verification.exact else "production now"
    if critical:
        names = ", ".join(table.qualified_name for table in critical[:5])
        summary = f"{len(critical)} of {len(verification.tables)} tables differ from {reference}: {names}"
        if len(critical) == 1:
            summary = f"{critical[0].qualified_name}: {critical[0].note}"
    elif mismatched:
        summary = f"{len(mismatched)} table(s) drifted beyond the tolerance: " + ", ".join(
            table.qualified_name for table in mismatched[:5]
        )
    elif verification.exact:
        summary = f"all {len(verification.tables)} tables match the snapshot exactly"
    else:
        summary = f"all {len(verification.tables)} tables within tolerance of production now (no exact comparison)"
    return CheckResult("row_counts", status, summary, details, metrics)
