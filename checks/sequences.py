"""Does every restored sequence hand out values ahead of the snapshot's, and does production's own?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each sequence the backup holds behind the snapshot's value (or, for a
    backup without a manifest, behind its own column while production's is not); WARNING naming each
    sequence production itself holds behind its column ("inserts fail there too": not the backup's
    fault); OK otherwise; None when nothing was restored or no sequence was judged."""
    verification = context.verification
    if verification is None or not verification.restored:
        return None
    found = verification.finding("sequences")
    problems, warnings = found.problems, found.warnings
    metrics: dict[str, int | float | str] = {
        "sequences": found.compared,
        "problems": len(problems),
        "warnings": len(warnings),
    }
    if problems:
        return CheckResult(
            "sequences", Status.CRITICAL, _summary(problems, "sequence problems"), (*problems, *warnings), metrics
        )
    if warnings:
        return CheckResult(
            "sequences", Status.WARNING, _summary(warnings, "sequences behind their columns"), tuple(warnings), metrics
        )
    if found.compared == 0:
        return None
    if not verification.exact:
        summary = f"all {found.compared:,} owned sequences restored ahead of their columns"
    else:
        summary = f"all {found.compared:,} sequences restored at or after the snapshot's values"
    return CheckResult("sequences", Status.OK, summary, metrics=metrics)


def _summary(lines: list[str], many: str) -> str:
    return lines[0] if len(lines) == 1 else f"{len(lines):,} {many}: {lines[0]}"
