"""Does every restored table hold exactly the contents the snapshot hashed? (The verdict.)"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming the tables whose restored checksum differs from the snapshot's; OK with
    the hashing cost on both sides; OK saying why when no checksums were compared; None when nothing
    was restored."""
    verification = context.verification
    if verification is None or not verification.restored:
        return None
    found = verification.finding("contents")
    if found.not_compared is not None:
        return CheckResult("contents", Status.OK, f"contents not compared: {found.not_compared}")
    differences = found.problems
    production_seconds = float(found.measures.get("production_seconds", 0.0))
    restored_seconds = float(found.measures.get("restored_seconds", 0.0))
    metrics: dict[str, int | float | str] = {
        "tables": found.compared,
        "differing": len(differences),
        "production_seconds": production_seconds,
        "restored_seconds": restored_seconds,
    }
    modes = str(found.measures.get("modes") or "full")
    if differences:
        summary = differences[0] if len(differences) == 1 else f"{len(differences):,} tables differ: {differences[0]}"
        return CheckResult("contents", Status.CRITICAL, summary, tuple(differences), metrics)
    return CheckResult(
        "contents",
        Status.OK,
        f"contents of all {found.compared:,} tables match the snapshot ({modes}; hashing took "
        f"{production_seconds:.1f}s on production, {restored_seconds:.1f}s restored)",
        metrics=metrics,
    )
