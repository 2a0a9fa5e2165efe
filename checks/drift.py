"""Has production moved on since the backup? Information for the operator, never the verdict."""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns OK with the tables production moved beyond `verify.drift` since the snapshot (a WARNING
    only with `verify.drift.warn`), WARNING naming why production could not be compared; None when
    nothing was restored or the backup has no snapshot (then `row_counts` compares with production)."""
    verification = context.verification
    if verification is None or not verification.exact or not verification.restored:
        return None
    if verification.production_error is not None:
        return CheckResult("drift", Status.WARNING, f"production not compared: {verification.production_error}")
    if not verification.production_compared:
        return None
    drifted = verification.drifted_tables
    metrics: dict[str, int | float | str] = {"tables": len(drifted)}
    how = "exact recount" if not verification.production_estimated else "statistics, small tables recounted"
    if not drifted:
        return CheckResult(
            "drift", Status.OK, f"production is within the drift tolerance of the backup ({how})", metrics=metrics
        )
    names = ", ".join(table.qualified_name for table in drifted[:5])
    noun = "table" if len(drifted) == 1 else "tables"
    status = Status.WARNING if context.config.verify.drift.warn else Status.OK
    return CheckResult(
        "drift",
        status,
        f"production has moved beyond the tolerance in {len(drifted):,} {noun} since the backup ({how}): {names}",
        tuple(f"{table.qualified_name}: {table.drift_note}" for table in drifted),
        metrics,
    )
