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
    if verification.content_not_compared is not None:
        return CheckResult("contents", Status.OK, f"contents not compared: {verification.content_not_compared}")
    differences = verification.content_differences
    metrics: dict[str, int | float | str] = {
        "tables": verification.content_tables,
        "differing": len(differences),
        "production_seconds": verification.content_production_seconds,
        "restored_seconds": verification.content_seconds,
    }
    modes = "/".join(verification.content_modes) or "full"
    if differences:
        summary = differences[0] if len(differences) == 1 else f"{len(differences):,} tables differ: {differences[0]}"
        return CheckResult("contents", Status.CRITICAL, summary, tuple(differences), metrics)
    return CheckResult(
        "contents",
        Status.OK,
        f"contents of all {verification.content_tables:,} tables match the snapshot ({modes}; hashing took "
        f"{verification.content_production_seconds:.1f}s on production, {verification.content_seconds:.1f}s restored)",
        metrics=metrics,
    )
