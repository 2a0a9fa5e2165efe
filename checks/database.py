"""Did the database's own properties come back? Two checks from one unit of evidence
(`verifier.postgres.evidence.database_properties`): `database_properties` (settings, per-role settings,
privileges, comment, owner) and `replication` (publications and subscriptions). Each is the verdict;
a subscription pg_dump left out because it needs a superuser is a named WARNING, not a failed backup."""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def database_properties(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each database setting, per-role setting, privilege, the comment or the
    owner missing or changed after the restore; OK with their number; None when nothing was restored."""
    return _result(context, "database_properties", "database properties", "restored as in {reference}")


def replication(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each publication missing or publishing other tables after the restore (or
    a subscription missing though pg_dump saved it); WARNING naming each subscription pg_dump left out;
    OK with their number; None when nothing was restored or the database has none."""
    return _result(context, "replication", "publications and subscriptions", "restored as in {reference}")


def _result(context: CheckContext, name: str, noun: str, healthy: str) -> CheckResult | None:
    verification = context.verification
    if verification is None or not verification.restored:
        return None
    reference = "the snapshot" if verification.exact else "production now"
    found = verification.finding(name)
    problems, warnings, notes, compared = found.problems, found.warnings, found.notes, found.compared
    metrics: dict[str, int | float | str] = {"compared": compared, "problems": len(problems)}
    if problems:
        summary = problems[0] if len(problems) == 1 else f"{len(problems):,} problems: {problems[0]}"
        if not verification.exact:
            summary += " (compared with production now: the backup has no manifest)"
        return CheckResult(name, Status.CRITICAL, summary, (*problems, *warnings, *notes), metrics)
    if warnings:
        summary = warnings[0] if len(warnings) == 1 else f"{len(warnings):,} warnings: {warnings[0]}"
        return CheckResult(name, Status.WARNING, summary, (*warnings, *notes), metrics)
    if found.not_compared is not None:
        return CheckResult(name, Status.OK, f"{noun} not compared: {found.not_compared}")
    if compared == 0 and not notes:
        return None
    summary = f"all {compared:,} {noun} {healthy.format(reference=reference)}"
    return CheckResult(name, Status.OK, summary, tuple(notes), metrics)
