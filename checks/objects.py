"""Did the objects that row counts never see come back? Three checks, one per kind: large objects,
materialized views, constraints (with foreign keys holding and no invalid index). Each is the verdict."""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def large_objects(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming the large objects missing, extra or changed after the restore; OK with
    their number; None when nothing was restored or there are none."""
    return _objects_result(context, "large_objects", "large objects", "match the snapshot")


def materialized_views(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming the materialized views missing, unpopulated or holding other rows after
    the restore; OK with their number; None when nothing was restored or there are none."""
    return _objects_result(context, "materialized_views", "materialized views", "are populated as in the snapshot")


def constraints(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each constraint missing or no longer valid, each foreign key broken by
    restored rows and each index left invalid; OK naming the constraints NOT VALID in production;
    None when nothing was restored."""
    return _objects_result(context, "constraints", "constraints", "are present and valid, foreign keys hold")


def _objects_result(context: CheckContext, name: str, noun: str, healthy: str) -> CheckResult | None:
    verification = context.verification
    if verification is None or not verification.restored:
        return None
    found = verification.finding(name)
    problems, warnings, notes, compared = found.problems, found.warnings, tuple(found.notes), found.compared
    metrics: dict[str, int | float | str] = {"compared": compared, "problems": len(problems)}
    if problems:
        summary = problems[0] if len(problems) == 1 else f"{len(problems):,} problems: {problems[0]}"
        return CheckResult(name, Status.CRITICAL, summary, (*problems, *warnings, *notes), metrics)
    if warnings:  # what the sandbox cannot reach: neither a failed backup nor proof of a good one
        summary = warnings[0] if len(warnings) == 1 else f"{len(warnings):,} not verifiable: {warnings[0]}"
        return CheckResult(name, Status.WARNING, summary, (*warnings, *notes), metrics)
    if found.not_compared is not None and name != "constraints":
        return CheckResult(name, Status.OK, f"{noun} not compared: {found.not_compared}")
    if compared == 0 and not notes and name != "constraints":
        return None
    if found.not_compared is not None:
        summary = f"foreign keys hold, no index invalid ({noun} not compared: {found.not_compared})"
    else:
        summary = f"all {compared:,} {noun} {healthy}"
    if notes:  # in the summary itself: the console shows no details of an OK result
        more = f" (and {len(notes) - 1:,} more in the details)" if len(notes) > 1 else ""
        summary += f"; {notes[0]}{more}"
    return CheckResult(name, Status.OK, summary, notes, metrics)
