"""Does every restored sequence hand out values ahead of the snapshot's and of the column it feeds?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each sequence restored behind the snapshot's value or behind its own
    column ("inserts into T would fail after a recovery"); OK otherwise; None when nothing was
    restored or the manifest recorded no sequences."""
    verification = context.verification
    if verification is None or not verification.restored or not verification.exact:
        return None
    problems = verification.sequence_problems
    metrics: dict[str, int | float | str] = {"sequences": verification.sequences_compared, "problems": len(problems)}
    if problems:
        summary = problems[0] if len(problems) == 1 else f"{len(problems):,} sequence problems: {problems[0]}"
        return CheckResult("sequences", Status.CRITICAL, summary, tuple(problems), metrics)
    if verification.sequences_compared == 0:
        return None
    return CheckResult(
        "sequences",
        Status.OK,
        f"all {verification.sequences_compared:,} sequences restored at or after the snapshot's values",
        metrics=metrics,
    )
